"""Built-in strategies and the kit a strategy plugin is written with.

A plugin author needs one import line::

    from uisbench.strategies import Strategy, RunContext, Decisions, AGGREGATORS, take

and a router only chooses a model per query: subclass :class:`Router` and write ``choose``.

The built-in strategies register as plugins under the ``uisbench.strategies`` entry points
(pyproject.toml), like any other; :data:`STRATEGIES` finds them by name.
"""

from uisbench.meter import Draw
from uisbench.sampling import k_subsets, sample_order, seeded_rng
from uisbench.strategies.aggregators import (
    AGGREGATORS,
    SampleView,
    agreement,
    best_logprob,
    first_correct,
    majority,
    majority_column,
    take,
    vote_counts,
)
from uisbench.strategies.base import (
    STRATEGIES,
    Decisions,
    RunContext,
    Strategy,
    bounded,
    choice,
    make_strategy,
)
from uisbench.strategies.costing import (
    cost_unit,
    draw_by_choice,
    expected_cost,
    mean_correct,
    powers_of_two,
    request_cost,
)
from uisbench.strategies.estimators import mean_pass_at_k, pass_at_k, simulate_k
from uisbench.strategies.features import query_features, train_features
from uisbench.strategies.routing import Router, Routes

__all__ = [
    "bounded",
    "choice",
    "AGGREGATORS",
    "STRATEGIES",
    "Decisions",
    "Draw",
    "Router",
    "Routes",
    "RunContext",
    "SampleView",
    "Strategy",
    "agreement",
    "best_logprob",
    "cost_unit",
    "draw_by_choice",
    "expected_cost",
    "first_correct",
    "k_subsets",
    "majority",
    "majority_column",
    "make_strategy",
    "mean_correct",
    "mean_pass_at_k",
    "pass_at_k",
    "powers_of_two",
    "query_features",
    "request_cost",
    "sample_order",
    "seeded_rng",
    "simulate_k",
    "take",
    "train_features",
    "vote_counts",
]
