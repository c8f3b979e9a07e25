"""Reference points drawn on every plot: each model alone, a random mix, and the oracle."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from uisbench.errors import UisbenchError
from uisbench.strategies.base import Decisions, RunContext, Strategy, bounded
from uisbench.strategies.costing import cost_unit, draw_by_choice


def require_model(ctx: RunContext, model: str, strategy: str) -> str:
    if not model:
        raise UisbenchError(
            f"strategy {strategy} needs model=NAME (one of {', '.join(ctx.models)})"
        )
    if model not in ctx.models:
        raise UisbenchError(
            f"unknown model {model!r} for strategy {strategy} (pool: {', '.join(ctx.models)})"
        )
    return model


class SingleModel(Strategy):
    """One model, one sample per query: the plain baseline every strategy must beat."""

    name = "single"
    family = "reference"
    description = "Reference point: one fixed model, one sample per query (k=1)."

    @dataclass
    class Params:
        model: str = ""

    @classmethod
    def sweep(cls, models: list[str], max_k: dict[str, int]) -> list[dict[str, Any]]:
        return [{"model": m} for m in models]

    def run(self, ctx: RunContext) -> Iterator[Decisions]:
        model = require_model(ctx, self.params.model, self.name)
        draw = ctx.meter.draw(model, ctx.stream, 1)
        yield Decisions(ctx.stream, draw.handle[:, 0])


class RandomMix(Strategy):
    """Each query goes to a model chosen uniformly at random (seeded): the no-skill router."""

    name = "random"
    family = "reference"
    description = "Reference point: a uniformly random model per query, one sample."

    def run(self, ctx: RunContext) -> Iterator[Decisions]:
        choice = ctx.rng.integers(len(ctx.models), size=len(ctx.stream))
        yield Decisions(ctx.stream, draw_by_choice(ctx.meter, ctx.models, ctx.stream, choice))


class Oracle(Strategy):
    """The cheapest correct (model, number of samples) per query: an upper bound.

    The oracle looks ahead at correctness and prices without paying (``meter.peek``, which the
    parent records: the run is an upper bound) and then pays only
    for the samples it keeps: the first ``j <= k`` samples of the model where sample ``j`` is
    the cheapest correct one. Queries no sample answers go to the cheapest model (and are
    wrong). Cheapest means FLOPs when every model's size is known, else dollars.
    """

    name = "oracle"
    family = "reference"
    description = "Reference point: cheapest correct model and fewest samples (upper bound)."
    upper_bound = True

    @dataclass
    class Params:
        k: int = bounded(1, ge=1)

    @classmethod
    def sweep(cls, models: list[str], max_k: dict[str, int]) -> list[dict[str, Any]]:
        """Every sample the bank holds: the bound over every (model, samples) arm; the site
        draws it as a front under cost caps (``uisbench.results.oracle``)."""
        return [{"k": max(max_k.values(), default=1)}]

    def run(self, ctx: RunContext) -> Iterator[Decisions]:
        q = ctx.stream
        meter = ctx.meter
        unit = cost_unit(ctx.model_meta, "auto", ctx.train)
        best_cost = np.full(len(q), np.inf)
        best = np.full((len(q), 2), -1)  # (model index, samples)
        fallback_cost = np.full(len(q), np.inf)
        fallback = np.zeros(len(q), dtype=int)
        for mi, model in enumerate(ctx.models):
            k = min(self.params.k, ctx.max_samples(model))
            if k < 1:
                continue
            ok, costs = meter.peek(model, q, k, unit)
            for j in range(1, k + 1):
                cost = np.nan_to_num(costs[:, j - 1], nan=np.inf)
                if j == 1:
                    cheaper = cost < fallback_cost
                    fallback_cost[cheaper], fallback[cheaper] = cost[cheaper], mi
                better = ok[:, j - 1] & (cost < best_cost)
                best_cost[better] = cost[better]
                best[better] = (mi, j)
        unsolved = best[:, 0] < 0
        best[unsolved] = np.c_[fallback[unsolved], np.ones(unsolved.sum(), dtype=int)]
        handle = np.full(len(q), -1, dtype=np.int64)
        for mi, model in enumerate(ctx.models):
            for j in np.unique(best[best[:, 0] == mi, 1]):
                sel = (best[:, 0] == mi) & (best[:, 1] == j)
                handle[sel] = meter.draw(model, q[sel], int(j)).handle[:, -1]
        yield Decisions(q, handle)
