"""UniScale (Unified Inference Scaling; arXiv 2605.30898, ICML 2026): one bandit over routing and
test-time scaling.

Each arm is a joint configuration *(model, k samples, aggregation)* — majority vote, or best-of-k
by log-probability where the bank keeps log-probs. Arms are chosen by LinUCB (Li et al., 2010,
Algorithm 1, disjoint arms) on the query's features x (the sentence embedding of
:mod:`uisbench.strategies.features`, projected on the training split's top ``dim`` principal
components, plus a constant):

    a_t = argmax_a  θ̂_aᵀx_t + α·sqrt(x_tᵀ A_a⁻¹ x_t),   θ̂_a = A_a⁻¹ b_a

and after the reward r_t is revealed, A_a⁻¹ is updated by Sherman–Morrison,
A⁻¹ ← A⁻¹ − (A⁻¹x)(A⁻¹x)ᵀ / (1 + xᵀA⁻¹x), in O(d²), with b_a ← b_a + r_t·x_t. The reward is
UniScale's weighted sum

    r = w₁·correct + w₂·score + w₃·(1 − cost / c_max)

with ``correct`` from ``meter.feedback`` (revealed only after the answer is committed), ``score``
the bank's sample score where one exists (0 otherwise), and cost the query's charged cost in
FLOPs — or in dollars when some model's parameter count is unknown (FLOPs cannot be computed
then; every decision records the unit). c_max is the dearest arm's mean training-split cost.
The bandit learns online over the test stream in its seeded order. With ``batch`` = B > 1 it
chooses B consecutive queries from one snapshot of (A⁻¹, b) and then applies their B
Sherman–Morrison updates in order — LinUCB with feedback delayed by < B queries, as a serving
system that receives feedback asynchronously would run it; ``batch=1`` is Algorithm 1 exactly
(and about 10× slower in replay, where the per-call overhead of the meter dominates).
``warm_start`` first fits
every arm on the training split with full information (all arms' rewards are visible there).
Sweeping w₃ (``cost_weight``) traces the cost–accuracy front.

Regret curves: each decision's ``extra`` holds the arm, and, for evaluation only (computed from
the bank's recorded outcomes, never used to choose), the expected reward of the best fixed arm
in hindsight and of the per-query oracle arm, so cumulative regret against both can be plotted.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from uisbench.errors import UisbenchError
from uisbench.meter import Meter
from uisbench.sampling import seeded_rng
from uisbench.store.arrays import BankArrays
from uisbench.strategies.aggregators import AGGREGATORS, take
from uisbench.strategies.base import Decisions, RunContext, Strategy, bounded
from uisbench.strategies.costing import (
    cost_unit,
    expected_cost,
    log_grid,
    powers_of_two,
    request_cost,
)
from uisbench.strategies.estimators import simulate_k
from uisbench.strategies.features import KINDS, query_features, single_thread, train_features

log = logging.getLogger(__name__)
CHUNK = 256
EVAL_DRAWS = 8  # seeded draws per (query, arm) when estimating expected rewards for regret


@dataclass(frozen=True)
class Arm:
    model: str
    k: int
    agg: str  # a key of AGGREGATORS: "majority" | "logprob"

    @property
    def label(self) -> str:
        return f"{self.model}×{self.k}:{self.agg}"


_SIM: dict[tuple, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}


def simulate_arm(
    bank: BankArrays, arm: Arm, unit: str, seed: int, draws: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Expected (correct, score, cost) per query of ``arm`` over seeded random k-subsets.

    NaN where the bank holds fewer than k samples for a query. Memoised: a cost-weight sweep
    with one seed reuses the same simulation (the reward weights are applied afterwards).
    """
    key = (bank.bank, hashlib.sha1(bank.query_ids.tobytes()).hexdigest(), arm, unit, seed, draws)
    if key not in _SIM:
        if len(_SIM) > 4096:
            _SIM.clear()
        rng = seeded_rng(seed, arm.label)
        _SIM[key] = _simulate(bank, arm, unit, rng, draws)
    return _SIM[key]


def _simulate(
    bank: BankArrays, arm: Arm, unit: str, rng: np.random.Generator, draws: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    correct, score = simulate_k(bank.models[arm.model], arm.k, AGGREGATORS[arm.agg], rng, draws)
    cost = request_cost(bank, arm.model, arm.k, unit)
    nan = np.where(bank.models[arm.model].n_avail >= arm.k, 1.0, np.nan)
    return correct.sum(axis=0) / draws * nan, score.sum(axis=0) / draws * nan, cost * nan


def sherman_morrison(A_inv: np.ndarray, x: np.ndarray) -> None:
    """In place: (A + x xᵀ)⁻¹ from A⁻¹ in O(d²) (Sherman & Morrison, 1950)."""
    v = A_inv @ x
    A_inv -= np.outer(v, v) / (1.0 + float(x @ v))


def principal_components(x: np.ndarray, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """(mean, top ``dim`` principal directions) of the rows of ``x``, memoised per input."""
    key = (hashlib.sha1(np.ascontiguousarray(x).tobytes()).hexdigest(), dim)
    if key not in _PCA:
        mu = x.mean(axis=0)
        with single_thread():
            _, _, vt = np.linalg.svd(x - mu, full_matrices=False)
        _PCA[key] = (mu, vt[:dim])
    return _PCA[key]


_PCA: dict[tuple[str, int], tuple[np.ndarray, np.ndarray]] = {}


class UniScale(Strategy):
    """LinUCB over (model × k × aggregation) arms with UniScale's cost-weighted reward."""

    name = "uniscale"
    family = "uniscale"
    description = "UniScale: LinUCB bandit over model × k × aggregation, online, cost-weighted."
    needs_answers = True

    @dataclass
    class Params:
        cost_weight: float = 0.3  # w3
        w_correct: float = 1.0  # w1
        w_score: float = 0.0  # w2 (the bank's sample score, where it has one)
        alpha: float = bounded(0.5, ge=0)  # exploration width
        dim: int = bounded(16, ge=0, le=4096)  # principal components of the query features
        max_k: int = bounded(16, ge=1)
        warm_start: bool = True
        batch: int = bounded(
            16, ge=1
        )  # queries chosen per A⁻¹ snapshot; 1 = strictly sequential LinUCB
        features: str = "auto"
        unit: str = "auto"

        def validate(self) -> None:
            if self.cost_weight < 0 or self.w_correct < 0 or self.w_score < 0:
                raise UisbenchError("uniscale reward weights must be >= 0")
            if self.alpha < 0 or self.dim < 0 or self.max_k < 1 or self.batch < 1:
                raise UisbenchError("uniscale needs alpha >= 0, dim >= 0, max_k >= 1, batch >= 1")
            if self.features not in KINDS:
                raise UisbenchError(f"unknown features={self.features!r}")

    @classmethod
    def sweep(cls, models: list[str], max_k: dict[str, int]) -> list[dict[str, Any]]:
        # w3 = 0 buys accuracy only; log-spaced up to where the cheapest arm wins everywhere.
        return [{"cost_weight": w} for w in (0.0, *log_grid(0.01, 3.0, 9))]

    # ------------------------------------------------------------------ arms and fitting
    def _arms(self, train: BankArrays, ctx: RunContext) -> list[Arm]:
        arms = []
        for m in ctx.models:
            has_lp = bool(np.isfinite(train.models[m].logprob).any()) if train.n_queries else False
            for k in powers_of_two(min(ctx.max_samples(m), self.params.max_k)):
                arms.append(Arm(m, k, "majority"))
                if k > 1 and has_lp:
                    arms.append(Arm(m, k, "logprob"))
        if not arms:
            raise UisbenchError("uniscale: no arm can run (the bank holds no samples)")
        return arms

    def reward(self, correct: np.ndarray, score: np.ndarray, cost: np.ndarray) -> np.ndarray:
        p = self.params
        ncost = np.clip(cost / self.c_max, 0.0, 1.0)
        return p.w_correct * correct + p.w_score * score + p.cost_weight * (1.0 - ncost)

    def _context(self, feats: np.ndarray) -> np.ndarray:
        if self.components.shape[0] == 0:
            return np.ones((len(feats), 1))
        z = (feats - self.mu) @ self.components.T
        return np.hstack([z, np.ones((len(z), 1))])

    def fit(self, train: BankArrays, ctx: RunContext) -> None:
        p = self.params
        self.unit = cost_unit(ctx.model_meta, p.unit, train)
        self.arms = self._arms(train, ctx)
        if train.n_queries == 0:  # costs are learnt on train only, never on the test stream
            raise UisbenchError("uniscale needs a training split to learn its arms' costs")
        bank_for_cost = train
        self.arm_cost = np.array(
            [expected_cost(bank_for_cost, a.model, a.k, self.unit) for a in self.arms]
        )
        self.c_max = float(self.arm_cost.max()) or 1.0
        xt = None
        if train.n_queries >= 2 and p.dim > 0:
            xt = train_features(train.prompts, p.features).astype(float)
            self.mu, self.components = principal_components(xt, p.dim)
        else:
            self.mu, self.components = np.zeros(1), np.zeros((0, 1))
        d = self.components.shape[0] + 1
        n_arms = len(self.arms)
        A = np.repeat(np.eye(d)[None], n_arms, axis=0)
        b = np.zeros((n_arms, d))
        if p.warm_start and xt is not None:
            x = self._context(xt)
            for i, arm in enumerate(self.arms):
                c, s, cost = simulate_arm(train, arm, self.unit, ctx.seed, 1)
                ok = np.isfinite(c)
                r = self.reward(c[ok], s[ok], cost[ok])
                A[i] += x[ok].T @ x[ok]
                b[i] += x[ok].T @ r
        with single_thread():
            self.A_inv = np.linalg.inv(A)
        self.b = b

    # ------------------------------------------------------------------ online loop
    def run(self, ctx: RunContext) -> Iterator[Decisions]:
        meter = ctx.meter
        feats = query_features(meter, ctx.stream, self.params.features).astype(float)
        with single_thread():
            x_all = self._context(feats)
        ledger = getattr(meter.ledger, self.unit)
        A_inv, b = self.A_inv.copy(), self.b.copy()
        self.rewards = np.zeros(len(ctx.stream))  # kept for the regret log of :meth:`evaluate`
        for lo in range(0, len(ctx.stream), CHUNK):
            qs = ctx.stream[lo : lo + CHUNK]
            with single_thread():
                handles, rewards, chosen = self._chunk(
                    meter, ledger, qs, x_all[lo : lo + CHUNK], A_inv, b
                )
            self.rewards[lo : lo + len(qs)] = rewards
            extra = [{"arm": self.arms[int(a)].label, "unit": self.unit} for a in chosen.tolist()]
            yield Decisions(qs, handles, reward=rewards, extra=extra)

    def evaluate(self, truth: BankArrays, ctx: RunContext) -> list[dict[str, Any]]:
        """Per decision, the expected reward of the best fixed arm in hindsight and of the
        per-query oracle arm (regret curves), from the full bank after the run."""
        at = self._hindsight(truth, ctx)
        figures = [at(i) for i in range(len(ctx.stream))]
        got = float(self.rewards.sum())
        log.info(
            "uniscale %s: cumulative regret over %d queries %.2f vs the best fixed arm, "
            "%.2f vs the oracle arm",
            *(self.label(), len(ctx.stream)),
            *(sum(f[key] for f in figures) - got for key in ("best_fixed_reward", "oracle_reward")),
        )
        return figures

    def _chunk(
        self,
        meter: Meter,
        ledger: np.ndarray,
        qs: np.ndarray,
        xs: np.ndarray,
        A_inv: np.ndarray,
        b: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(handles, rewards, chosen arms) for one chunk of the stream, B queries per snapshot.

        ``xs``: the chunk's context rows; ``A_inv`` and ``b`` are updated in place.
        """
        B = self.params.batch
        blocks = [
            self._block(meter, ledger, qs[lo : lo + B], xs[lo : lo + B], A_inv, b)
            for lo in range(0, len(qs), B)
        ]
        handles, rewards, chosen = (np.concatenate(part) for part in zip(*blocks))
        return handles, rewards, chosen

    def _block(
        self,
        meter: Meter,
        ledger: np.ndarray,
        q: np.ndarray,
        x: np.ndarray,
        A_inv: np.ndarray,
        b: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Choose arms for queries ``q`` from one (A⁻¹, b) snapshot, play them, learn."""
        theta = np.einsum("aij,aj->ai", A_inv, b)  # (arms, d)
        width = np.einsum("bi,aij,bj->ba", x, A_inv, x)  # xᵀA⁻¹x per (query, arm)
        a = np.argmax(x @ theta.T + self.params.alpha * np.sqrt(np.maximum(width, 0.0)), axis=1)
        before = ledger[q].copy()
        h, score = self._play(meter, q, a)
        correct = meter.feedback(h).astype(float)  # revealed after committing
        r = self.reward(correct, score, ledger[q] - before)
        for j in range(len(q)):  # Sherman–Morrison, one O(d²) update per query
            sherman_morrison(A_inv[a[j]], x[j])
            b[a[j]] += r[j] * x[j]
        return h, r, a

    def _play(self, meter: Meter, q: np.ndarray, a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Draw each query's arm and aggregate: (chosen handles, their scores)."""
        h = np.full(len(q), -1, dtype=np.int64)
        score = np.zeros(len(q))
        for ai in np.unique(a).tolist():
            sel = a == ai
            arm = self.arms[ai]
            draw = meter.draw(arm.model, q[sel], arm.k)
            col = AGGREGATORS[arm.agg](draw)
            h[sel] = take(draw.handle, col)
            if self.params.w_score:
                score[sel] = np.nan_to_num(take(draw.score, col).astype(float))
        return h, score

    def _hindsight(self, truth: BankArrays, ctx: RunContext):
        """Expected rewards of every arm on the test stream, for regret curves only."""
        q = ctx.stream
        R = np.full((len(q), len(self.arms)), np.nan)
        sub = truth.subset(q)
        for i, arm in enumerate(self.arms):
            draws = 1 if arm.k == 1 else EVAL_DRAWS
            c, s, cost = simulate_arm(sub, arm, self.unit, ctx.seed, draws)
            R[:, i] = self.reward(c, s, cost)
        R = np.nan_to_num(R, nan=-np.inf)
        best_fixed = int(np.argmax(np.where(np.isfinite(R), R, 0.0).sum(axis=0)))
        fixed, oracle = R[:, best_fixed], R.max(axis=1)
        label = self.arms[best_fixed].label

        def at(i: int) -> dict[str, Any]:
            return {
                "best_fixed_arm": label,
                "best_fixed_reward": float(fixed[i]),
                "oracle_reward": float(oracle[i]),
            }

        return at
