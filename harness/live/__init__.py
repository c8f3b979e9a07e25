"""Live generation: model pools, the backends that sample from them, and recording into a bank."""

from uisbench.live.recording import RecordRequest, RecordStats, record

__all__ = ["RecordRequest", "RecordStats", "record"]
