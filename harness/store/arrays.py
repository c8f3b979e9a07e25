"""A bank loaded for replay: dense ``(queries × samples)`` matrices per model.

Strategies work with numpy over the whole task instead of looping per sample. This module is
the data model and needs numpy alone (a strategy's process imports it, not pandas or
SQLAlchemy); :mod:`uisbench.store.loading` is the only place that turns sample rows into
these matrices.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np


@dataclass
class ModelArrays:
    """One model's samples for the task's queries; padded to the largest sample count."""

    n_avail: np.ndarray  # (Q,) samples held per query
    answer: np.ndarray  # (Q, S) int32 answer code per query, -1 = no answer
    correct: np.ndarray  # (Q, S) bool
    input_tokens: np.ndarray  # (Q, S) float (nan unknown)
    output_tokens: np.ndarray  # (Q, S) float
    cost_usd: np.ndarray  # (Q, S) float
    latency_s: np.ndarray  # (Q, S) float
    logprob: np.ndarray  # (Q, S) float
    score: np.ndarray  # (Q, S) float
    sample_id: np.ndarray  # (Q, S) int64 database id, -1 padding


@dataclass
class BankArrays:
    """A bank restricted to one task: queries in a fixed order, one :class:`ModelArrays` each."""

    bank: str
    bank_id: int
    synthetic: bool
    query_ids: np.ndarray  # (Q,) database ids, ascending
    query_keys: list[str]
    splits: np.ndarray  # (Q,) object: "train"/"test"/None (source split)
    models: dict[str, ModelArrays]
    model_meta: dict[str, dict[str, Any]]
    answer_labels: np.ndarray  # answer code → text (codes shared across models)
    prompts: list[str] | None = None
    digest: str = field(default="")  # content of the bank as loaded: see content_digest
    #: Metadata of the routers' own models (``models`` rows named ``embed:KIND``, e.g. from a
    #: models file), by name: what their compute is charged at.
    embedders: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def n_queries(self) -> int:
        return len(self.query_ids)

    def subset(self, positions: np.ndarray) -> BankArrays:
        """The same bank restricted to some query positions (a copy)."""
        pos = np.asarray(positions, dtype=np.int64)
        models = {
            name: ModelArrays(
                **{f: getattr(m, f)[pos] for f in m.__dataclass_fields__}  # type: ignore[attr-defined]
            )
            for name, m in self.models.items()
        }
        return replace(
            self,
            query_ids=self.query_ids[pos],
            query_keys=[self.query_keys[i] for i in pos.tolist()],
            splits=self.splits[pos],
            models=models,
            prompts=[self.prompts[i] for i in pos.tolist()] if self.prompts else None,
        )


#: Fields of a model's samples that make up a bank's content (database ids do not).
_CONTENT_FIELDS = (
    "n_avail correct input_tokens output_tokens cost_usd latency_s logprob score".split()
)


def content_digest(bank: BankArrays) -> str:
    """SHA-256 (16 hex digits) of what a replay can see: queries, their splits and prompts,
    and every model's samples (counts, answers, correctness, costs). A run's identity includes
    it, so a bank grown or changed under the same name gets new runs (DESIGN: honesty rules).
    """
    h = hashlib.sha256()
    for text in (*bank.query_keys, *map(str, bank.splits), *(bank.prompts or [])):
        h.update(text.encode("utf-8", "surrogatepass") + b"\0")
    labels = np.append(bank.answer_labels.astype(object), None)  # code -1 → None
    for name in sorted(bank.models):
        m = bank.models[name]
        h.update(name.encode() + b"\0")
        for f in _CONTENT_FIELDS:
            h.update(np.ascontiguousarray(getattr(m, f)).tobytes())
        h.update("\0".join(map(str, labels[m.answer.ravel()])).encode("utf-8", "surrogatepass"))
    return h.hexdigest()[:16]
