"""What a strategy sees of the test queries: a :class:`BlindView`, never the bank.

The meter's truth (every sample's answer, log-probs, tokens, costs and correctness) stays with
the parent-side :class:`~uisbench.meter.Meter`. A strategy reads, of the test queries, only:
their positions (the stream), prompts (for features), the models' metadata and how many samples
each model holds per query (``models[m].n_avail``). A sample's content reaches it only by
drawing (and paying for) it through the meter client; correctness only through
``meter.feedback()`` for answers it already committed, or ``meter.oracle()``/``meter.peek()``,
which the parent records as an upper bound. Evaluation-only figures that need the truth (regret
against the best fixed arm, a scaling law's test error) are computed after the decisions,
through :meth:`uisbench.strategies.Strategy.evaluate`. The training split (``ctx.train``) keeps
its correctness: strategies fit on it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NoReturn

import numpy as np

from uisbench.errors import UisbenchError
from uisbench.store.arrays import BankArrays

HIDDEN_MESSAGE = (
    "the test split's samples are hidden from strategies: a sample's content comes only with "
    "meter.draw() (and is paid for), its correctness only through meter.feedback() after "
    "meter.decide() committed it, or meter.oracle() (which marks the run an upper bound); "
    "figures for evaluation only belong in Strategy.evaluate(), run after the decisions"
)


class HiddenError(UisbenchError, AttributeError):
    """What asking the view for anything hidden raises (an AttributeError too, so that
    ``getattr(view, name, default)`` and ``hasattr`` behave)."""


def _hidden(name: str) -> NoReturn:
    if name.startswith("__"):
        raise AttributeError(name)  # copy, pickle and friends probe for protocols
    raise HiddenError(f"{name}: {HIDDEN_MESSAGE}")


@dataclass(frozen=True)
class ModelView:
    """Of one model's test samples, only how many the bank holds per query."""

    n_avail: np.ndarray  # (Q,) read-only

    def __getattr__(self, name: str) -> NoReturn:  # correct, answer, logprob, cost_usd, ...
        _hidden(name)


@dataclass(frozen=True)
class BlindView:
    """What a strategy may read of the bank it is replayed on (see the module docstring).

    Positions index the whole bank, as ``ctx.stream`` does; anything else asked of it (answers,
    correctness, costs, query ids, answer labels) is refused with one clear error.
    """

    bank: str
    n_queries: int
    models: dict[str, ModelView]
    model_meta: dict[str, dict[str, Any]]
    prompts: list[str] | None = field(default=None)
    #: Prices of query embedders (``embed:KIND`` entries of the models table): public, like
    #: model metadata.
    embedders: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __getattr__(self, name: str) -> NoReturn:
        _hidden(name)


def blind_view(bank: BankArrays) -> BlindView:
    """The view of ``bank`` a strategy gets: prompts, metadata, samples held per query."""
    models = {}
    for m, a in bank.models.items():
        n = np.array(a.n_avail, dtype=np.int64)
        n.setflags(write=False)
        models[m] = ModelView(n)
    meta = {m: dict(v) for m, v in bank.model_meta.items()}
    prompts = list(bank.prompts) if bank.prompts is not None else None
    embedders = {k: dict(v) for k, v in bank.embedders.items()}
    return BlindView(bank.bank, bank.n_queries, models, meta, prompts, embedders)
