"""What a task needs beyond the base install: lm-eval and its ``datasets`` (the 'live' extra).

Every task is an lm-eval task (:mod:`uisbench.tasks`), so recording samples and re-scoring an
lm-eval results folder both need them; without them, one line names the extra to install
instead of a ``ModuleNotFoundError`` deep inside.
"""

from __future__ import annotations

import importlib.util

from uisbench.errors import UisbenchError

#: Modules a task needs, whatever the backend (a served endpoint needs no torch; the
#: transformers backend names its own).
LIVE_MODULES = ("lm_eval", "datasets")

#: How to install the live extra from a clone (uisbench is not on PyPI).
LIVE_INSTALL = "from the uisbench clone, bash scripts/setup.sh --full (or pip install -e '.[live]')"


def require_live_extra(what: str = "live generation") -> None:
    """Raise one line naming the 'live' extra when a module of :data:`LIVE_MODULES` is missing;
    ``what`` says what needed it."""
    missing = [m for m in LIVE_MODULES if not _importable(m)]
    if missing:
        raise UisbenchError(
            f"{what} needs the 'live' extra ({', '.join(missing)} not installed): {LIVE_INSTALL}"
        )


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError, AttributeError):  # e.g. sys.modules[module] is None
        return False
