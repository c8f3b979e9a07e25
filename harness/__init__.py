"""uisbench: a benchmark harness and leaderboard for inference-cost strategies.

The public API for a notebook is re-exported here; the CLI (``uisbench``) is a thin layer
over it. Load a bank (``open_engine``, ``import_file``), run strategies into the database
(``Runner``) or replay them in memory (``replay_in_memory``, ``replay_seeds_in_memory``).
What a strategy plugin is written with is exported by :mod:`uisbench.strategies`.

The names are imported on first use (PEP 562): a strategy's process imports uisbench's
packages without SQLAlchemy, pandas or the runner, so that forking one child per run stays
cheap (each imported library adds mappings that every fork copies).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from uisbench.errors import UisbenchError

#: Public name -> the module that defines it.
_EXPORTS = {
    "BankArrays": "uisbench.store.arrays",
    "Decisions": "uisbench.strategies.base",
    "Draw": "uisbench.meter",
    "InMemoryRun": "uisbench.run_loop",
    "Meter": "uisbench.meter",
    "RunContext": "uisbench.strategies.base",
    "RunResult": "uisbench.runner",
    "Runner": "uisbench.runner",
    "Strategy": "uisbench.strategies.base",
    "STRATEGIES": "uisbench.strategies.base",
    "import_file": "uisbench.store.bank",
    "load_arrays": "uisbench.store.loading",
    "make_strategy": "uisbench.strategies.base",
    "open_engine": "uisbench.store.engine",
    "replay_in_memory": "uisbench.run_loop",
    "replay_seeds_in_memory": "uisbench.run_loop",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'uisbench' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})


if TYPE_CHECKING:
    from uisbench.meter import Draw, Meter
    from uisbench.run_loop import InMemoryRun, replay_in_memory, replay_seeds_in_memory
    from uisbench.runner import Runner, RunResult
    from uisbench.store.arrays import BankArrays
    from uisbench.store.bank import import_file
    from uisbench.store.engine import open_engine
    from uisbench.store.loading import load_arrays
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
