"""A FrugalGPT cascade: chain and thresholds fitted on the training split to a target cost.

FrugalGPT (Chen, Zaharia & Zou, 2023, §3.2, eq. 1) learns an LLM cascade — an ordered list of
models and, for every model but the last, a threshold on a scoring function's confidence below
which the query is passed on — by maximising accuracy subject to an average-cost budget:

    max_{L, τ}  E[r(a, y)]   s.t.  E[c(L, τ, q)] ≤ b.

Here the chain is any subset of the pool in increasing training-split cost (FrugalGPT's
"permutation" restricted to cheap-to-dear order, which its Figure 3 solutions follow) of at
most ``max_len`` models; each non-final stage's threshold is a quantile of that model's
training confidence (it passes on the ``e`` least confident training queries, e on a grid of
``1/grid`` steps). Every (chain, thresholds) is evaluated exactly on the training split — the
accuracy and mean cost the cascade would have had there — and the most accurate one within the
budget is run (the cheapest one when none fits, flagged ``over_budget``). The confidence is the
scoring function: the answer's log-probability where the bank has them, else the agreement of
k samples (the share voting for the plurality answer), as in ``cascade``
(:class:`uisbench.strategies.routing.Cascade`), whose test-time loop this reuses. FrugalGPT
trains a DistilBERT scorer; the bank's own confidence signals stand in for it.

The budget is ``budget`` × the dearest model's mean one-sample cost on the training split.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from uisbench.errors import UisbenchError
from uisbench.sampling import k_subsets
from uisbench.store.arrays import BankArrays
from uisbench.strategies.aggregators import agreement, take
from uisbench.strategies.base import RunContext, bounded
from uisbench.strategies.costing import cost_unit, log_grid, request_cost, unit_option
from uisbench.strategies.routing import (
    Cascade,
    SignalChecked,
    agreement_k_option,
    signal_option,
)

FIT_SEED = 0  # the fit is deterministic: seeds vary the test draws, not the chain


@dataclass
class Stage:
    """One model's simulated request on every training query."""

    conf: np.ndarray
    correct: np.ndarray
    cost: np.ndarray


@dataclass
class Plan:
    chain: tuple[str, ...]
    escalate: tuple[float, ...]  # share of training queries passed on, per non-final stage
    accuracy: float
    cost: float


def simulate_stage(train: BankArrays, model: str, signal: str, k: int, unit: str) -> Stage:
    """Confidence, correctness and cost of a k-sample request of ``model`` per training query."""
    arr = train.models[model]
    cost = np.nan_to_num(request_cost(train, model, k, unit), nan=np.inf)
    if signal == "logprob":
        conf = np.nan_to_num(arr.logprob[:, 0].astype(float), nan=-np.inf)
        return Stage(conf, arr.correct[:, 0].astype(bool), cost)
    rng = np.random.default_rng([FIT_SEED, k])
    slot = k_subsets(rng, arr.n_avail, arr.answer.shape[1], k)
    col, conf = agreement(np.take_along_axis(arr.answer, slot, axis=1))
    pick = np.maximum(take(slot, col), 0)
    correct = (col >= 0) & arr.correct[np.arange(len(col)), pick]
    return Stage(np.where(arr.n_avail >= k, conf, -np.inf), correct, cost)


def evaluate(stages: list[Stage], tau: tuple[float, ...]) -> tuple[float, float]:
    """Training accuracy and mean cost of a cascade over ``stages`` with thresholds ``tau``."""
    open_ = np.ones(len(stages[0].conf), bool)
    correct = cost = 0.0
    for i, st in enumerate(stages):
        cost += float(st.cost[open_].sum())
        stop = open_ if i == len(stages) - 1 else open_ & (st.conf >= tau[i])
        correct += float(st.correct[stop].sum())
        open_ = open_ & ~stop
    n = len(open_)
    return correct / n, cost / n


def candidate_plans(
    stages: dict[str, Stage], order: list[str], max_len: int, grid: int
) -> list[Plan]:
    """Every chain (cheap to dear) of ≤ ``max_len`` models × every threshold on the grid."""
    shares = [i / grid for i in range(grid)]  # 0 = never escalate
    plans = []
    for length in range(1, max_len + 1):
        for chain in itertools.combinations(order, length):
            st = [stages[m] for m in chain]
            for esc in itertools.product(shares, repeat=length - 1):
                tau = tuple(
                    -np.inf if e == 0 else float(np.quantile(s.conf[np.isfinite(s.conf)], e))
                    for s, e in zip(st, esc)
                )
                acc, cost = evaluate(st, tau)
                plans.append(Plan(chain, esc, acc, cost))
    return plans


#: Candidate plans a fit may score: 100 × the default's on five models (725).
MAX_PLANS = 72_500


class FrugalCascade(Cascade):
    """FrugalGPT: the most accurate cascade (chain and thresholds) within a cost budget."""

    name = "frugal-cascade"
    family = "routing"
    description = "Routing: FrugalGPT cascade, chain and thresholds fitted to a cost budget."

    @dataclass
    class Params(SignalChecked):
        budget: float = bounded(0.3, gt=0)  # × the dearest model's mean one-sample cost (train)
        # Bounded by what finishes: the fit scores Σ_l C(models, l)·grid^(l−1) plans (at most
        # MAX_PLANS); a chain longer than 8 models or a grid finer than 1 % of the training
        # queries buys nothing FrugalGPT's 3-model chains need.
        max_len: int = bounded(3, ge=1, le=8)
        grid: int = bounded(8, ge=1, le=100)
        signal: str = signal_option()
        k: int = agreement_k_option()
        unit: str = unit_option()

    @classmethod
    def cascade_sweep(cls, models: list[str]) -> list[dict[str, Any]]:
        # × the dearest model's one-sample cost: log-spaced from below the cheapest model's
        return [{"budget": b} for b in log_grid(0.002, 1.0, 10)]

    def fit(self, train: BankArrays, ctx: RunContext) -> None:
        p = self.params
        if train.n_queries == 0:
            raise UisbenchError("frugal-cascade needs a training split to fit the cascade on")
        unit = cost_unit(ctx.model_meta, p.unit, train)
        self._choose_signal(train, ctx.models, ctx)
        plans = self._plans(train, ctx, unit)
        dearest = max(float(np.nanmean(request_cost(train, m, 1, unit))) for m in ctx.models)
        budget = p.budget * dearest
        feasible = [pl for pl in plans if pl.cost <= budget]
        self.over_budget = not feasible
        best = (
            max(feasible, key=lambda pl: (pl.accuracy, -pl.cost))
            if feasible
            else min(plans, key=lambda pl: pl.cost)
        )
        self.plan, self.budget_abs, self.chain = best, budget, list(best.chain)
        # (quantile, -inf): no tie-break, the thresholds its plans were scored with on train
        self.tau = {
            m: (-np.inf if e == 0 else float(np.quantile(self._finite_conf(train, m), e)), -np.inf)
            for m, e in zip(best.chain, best.escalate)
        }

    def _finite_conf(self, train: BankArrays, model: str) -> np.ndarray:
        conf = self._stages[model].conf
        return conf[np.isfinite(conf)]

    def _plans(self, train: BankArrays, ctx: RunContext, unit: str) -> list[Plan]:
        """Every candidate plan, fitted once per training split (``ctx.cache``): a budget
        sweep reuses them."""
        p = self.params
        models = ctx.models
        self._stages = {m: simulate_stage(train, m, self.signal, self.k, unit) for m in models}
        n_plans = sum(
            math.comb(len(models), n) * p.grid ** (n - 1)
            for n in range(1, min(p.max_len, len(models)) + 1)
        )
        if n_plans > MAX_PLANS:
            raise UisbenchError(
                f"frugal-cascade: {n_plans} candidate plans with max_len={p.max_len}, "
                f"grid={p.grid} over {len(models)} models; at most {MAX_PLANS} can be "
                "fitted in reasonable time (lower grid or max_len)"
            )

        def plans() -> list[Plan]:
            order = sorted(models, key=lambda m: float(np.mean(self._stages[m].cost)))
            return candidate_plans(self._stages, order, p.max_len, p.grid)

        key = ("frugal-plans", tuple(models), unit, self.signal, self.k, p.max_len, p.grid)
        return ctx.cache.get(train, key, plans)

    def run(self, ctx: RunContext):
        for chunk in super().run(ctx):
            for e in chunk.extra or []:
                e.update(
                    chain="→".join(self.plan.chain),
                    escalate=list(self.plan.escalate),
                    budget=self.budget_abs,
                    over_budget=self.over_budget,
                    train_accuracy=self.plan.accuracy,
                    train_cost=self.plan.cost,
                )
            yield chunk
