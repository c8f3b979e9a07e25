"""uisbench: a benchmark harness and leaderboard for inference-cost strategies.

The public API for a notebook is re-exported here; the CLI (``uisbench``) is a thin layer
over it. Load a bank (``open_engine``, ``import_file``), run strategies into the database
(``Runner``) or replay them in memory (``replay_in_memory``, ``replay_seeds_in_memory``).
What a strategy plugin is written with is exported by :mod:`uisbench.strategies`.
"""

from uisbench.errors import UisbenchError
from uisbench.meter import Draw, Meter
from uisbench.run_loop import InMemoryRun, replay_in_memory, replay_seeds_in_memory
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
    "InMemoryRun",
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
    "replay_in_memory",
    "replay_seeds_in_memory",
]
