"""``cheapest-enough``: the cheapest model whose accuracy on the training split is within a
share ``target`` of the best model's, then a plurality vote over ``k`` of its samples.

It shows the idioms of docs/PLUGINS.md: options declared with ``bounded()`` and ``choice()``,
fitting on the training split only, costs from the cost helpers (never the bank's
``cost_usd``, NaN where no cost was recorded), the sample limit of the test queries, drawing
through the meter and aggregating with ``take(draw.handle, AGGREGATORS["majority"](draw))``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from uisbench.store.arrays import BankArrays
from uisbench.strategies import (
    AGGREGATORS,
    Decisions,
    RunContext,
    Strategy,
    bounded,
    choice,
    cost_unit,
    expected_cost,
    mean_correct,
    take,
)


class CheapestEnough(Strategy):
    name = "cheapest-enough"
    family = "routing"
    description = "Example plugin: the cheapest model within a share of the best on train; a vote."
    needs_answers = True  # it votes on the samples' answers

    @dataclass
    class Params:
        target: float = bounded(0.9, gt=0, le=1)  # × the best model's training accuracy
        k: int = bounded(3, ge=1)  # samples voted on (fewer where the bank holds fewer)
        unit: str = choice("auto", "flops", "dollars", "param_calls")

    @classmethod
    def sweep(cls, models: list[str], max_k: dict[str, int]) -> list[dict[str, Any]]:
        return [{"target": t} for t in (0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 1.0)]

    def fit(self, train: BankArrays, ctx: RunContext) -> None:
        p = self.params
        self.unit = cost_unit(ctx.model_meta, p.unit, train)
        self.accuracy = {m: float(np.nanmean(mean_correct(train, m))) for m in ctx.models}
        best = max(self.accuracy.values())
        enough = [m for m in ctx.models if self.accuracy[m] >= p.target * best]
        cost = {m: expected_cost(train, m, p.k, self.unit) for m in enough}
        self.model = min(enough, key=lambda m: (cost[m], m))

    def run(self, ctx: RunContext) -> Iterator[Decisions]:
        k = min(self.params.k, ctx.max_samples(self.model))  # samples held for every query
        draw = ctx.meter.draw(self.model, ctx.stream, k)
        yield Decisions(ctx.stream, take(draw.handle, AGGREGATORS["majority"](draw)))

    def run_summary(self) -> dict[str, Any]:
        return {"model": self.model, "unit": self.unit, "train_accuracy": self.accuracy}
