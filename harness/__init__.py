"""uisbench: a benchmark harness and leaderboard for inference-cost strategies.

The public API is re-exported here; the CLI (``uisbench``) is a thin layer over it.
"""

from uisbench.bank import BankArrays, import_file, load_arrays
from uisbench.db import open_engine
from uisbench.errors import UisbenchError
from uisbench.meter import Draw, Meter
from uisbench.runner import Runner, RunResult
from uisbench.strategy import (
    Decisions,
    RunContext,
    Strategy,
    available_strategies,
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
    "available_strategies",
    "import_file",
    "load_arrays",
    "make_strategy",
    "open_engine",
]
