"""uisbench: a benchmark harness and leaderboard for inference-cost strategies.

The public API is re-exported here; the CLI (``uisbench``) is a thin layer over it.
"""

from uisbench.errors import UisbenchError
from uisbench.meter import Draw, Meter
from uisbench.runner import Runner, RunResult
from uisbench.store.arrays import BankArrays, load_arrays
from uisbench.store.bank import import_file
from uisbench.store.engine import open_engine
from uisbench.strategies.base import (
    STRATEGIES,
    Decisions,
    RunContext,
    Strategy,
    make_strategy,
)

__all__ = [
    "BankArrays",
    "Decisions",
    "Draw",
    "Meter",
    "RunContext",
    "RunResult",
    "Runner",
    "Strategy",
    "UisbenchError",
    "STRATEGIES",
    "import_file",
    "load_arrays",
    "make_strategy",
    "open_engine",
]
