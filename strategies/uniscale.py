"""UniScale (Unified Inference Scaling; arXiv 2605.30898, ICML 2026): one bandit over routing and
test-time scaling.

Routing chooses a model and test-time scaling a sample budget; UniScale makes them one decision,
so a cheap model sampled often and a dear model sampled once compete for the same query. Each
arm is a joint configuration *(model, k samples, aggregation)*: majority vote over an odd k
(1, 3, 5, 9, 17, …: with ties going to the first sample an even k buys cost without votes), or
best-of-k by log-probability (k = 2, 4, 8, …) where the bank keeps log-probs.

Arms are chosen by LinUCB (Li et al., 2010, Algorithm 1, disjoint arms) on the query's features
x (the sentence embedding of :mod:`uisbench.strategies.features`, projected on the training
split's top ``dim`` principal components, plus a constant; ``dim`` = 0 is one UCB per arm and
embeds nothing):

    a_t = argmax_a  θ̂_aᵀx_t + α·sqrt(x_tᵀ A_a⁻¹ x_t),   θ̂_a = A_a⁻¹ b_a

Once the reward r_t is revealed, A_a⁻¹ is updated by Sherman–Morrison in O(d²) instead of
inverted anew, and b_a ← b_a + r_t·x_t:

    A⁻¹ ← A⁻¹ − (A⁻¹x)(A⁻¹x)ᵀ / (1 + xᵀA⁻¹x)

The reward is UniScale's weighted sum

    r = w₁·correct + w₂·score + w₃·(1 − normalised cost)

with ``correct`` from ``meter.feedback`` (revealed only after the answer is committed), ``score``
the bank's sample score where one exists (0 otherwise), and the query's charged cost in FLOPs,
or in dollars when some model's parameter count is unknown (every decision records the unit).
The paper normalises linearly, cost / c_max; when a pool's costs span decades that squashes
every cheap arm into a sliver of the reward, so ``norm`` also offers log-cost and rank
normalisation (:mod:`.uniscale_tuning`). Whatever the normalisation, a reward linear in it can
only settle on the vertices of the arms' accuracy-vs-normalised-cost hull. ``norm``, α and
``dim`` default to ``auto``: chosen by replaying this bandit on the training split (never the
test split), and stated in the run's summary.

The bandit learns online over the test stream in its seeded order. With ``batch`` = B > 1 it
chooses B consecutive queries from one snapshot of (A⁻¹, b) and then applies their B
Sherman–Morrison updates in order: LinUCB with feedback delayed by < B queries, as a serving
system that receives feedback asynchronously would run it; ``batch=1`` is Algorithm 1 exactly.
``warm_start`` first fits every arm on the training split with full information (all arms'
rewards are visible there). Sweeping w₃ (``cost_weight``: 0 and 15 log-spaced values from 0.01
to 3) traces the cost–accuracy front.

Run summary (:meth:`UniScale.run_summary`, stored under the run's ``summary.strategy`` and shown
on its site page): ``settings`` (norm, α, dim and how they were chosen), ``pulls`` (decisions per
arm) and ``learning_curve`` (``queries``, and the running ``mean_reward`` and ``accuracy`` after
that many queries). Regret references (the expected reward of the best fixed arm in hindsight
and of the per-query oracle arm) are evaluation-only figures computed after the decisions
(:meth:`UniScale.evaluate`) and merged into each decision's ``extra``. How its fronts compare
with the paper's claim on the shared banks: bench/RESULTS.md, "Strategy quality", UniScale.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from uisbench.errors import UisbenchError
from uisbench.fitcache import FitCache
from uisbench.meter import Meter
from uisbench.sampling import seeded_rng
from uisbench.store.arrays import BankArrays
from uisbench.strategies.aggregators import AGGREGATORS, take
from uisbench.strategies.base import Decisions, RunContext, Strategy, bounded, choice
from uisbench.strategies.costing import (
    cost_unit,
    expected_cost,
    log_grid,
    powers_of_two,
    request_cost,
    unit_option,
    vote_counts_k,
)
from uisbench.strategies.estimators import simulate_k
from uisbench.strategies.features import KINDS, query_features, single_thread, train_features
from uisbench.strategies.uniscale_tuning import (
    ALPHAS,
    DIMS,
    NORMS,
    Outcomes,
    choose_norm,
    linucb_choose,
    linucb_update,
    normalised_cost,
    one_se_choice,
    replay_on_train,
    warm_start,
)

log = logging.getLogger(__name__)
# w3 = 0 buys accuracy only; log-spaced up to where the cheapest arm wins everywhere.
COST_WEIGHTS = (0.0, *log_grid(0.01, 3.0, 15))
TUNE_ALPHA, TUNE_DIM = 0.5, 8  # the settings under which the normalisation is chosen
CURVE_POINTS = 20  # points of the learning curve stored in the run summary
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


def simulate_arm(
    cache: FitCache, bank: BankArrays, arm: Arm, unit: str, seed: int, draws: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Expected (correct, score, cost) per query of ``arm`` over seeded random k-subsets.

    NaN where the bank holds fewer than k samples for a query. Kept in ``cache`` (the run's
    fit cache, keyed by the bank's content): a cost-weight sweep with one seed reuses the same
    simulation (the reward weights are applied afterwards).
    """

    def simulate() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return _simulate(bank, arm, unit, seeded_rng(seed, arm.label), draws)

    return cache.get(bank, ("uniscale-arm", arm, unit, seed, draws), simulate)


def _simulate(
    bank: BankArrays, arm: Arm, unit: str, rng: np.random.Generator, draws: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    correct, score = simulate_k(bank.models[arm.model], arm.k, AGGREGATORS[arm.agg], rng, draws)
    cost = request_cost(bank, arm.model, arm.k, unit)
    nan = np.where(bank.models[arm.model].n_avail >= arm.k, 1.0, np.nan)
    return correct.sum(axis=0) / draws * nan, score.sum(axis=0) / draws * nan, cost * nan


def principal_components(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean, principal directions by decreasing variance) of the rows of ``x``."""
    mu = x.mean(axis=0)
    with single_thread():
        _, _, vt = np.linalg.svd(x - mu, full_matrices=False)
    return mu, vt


class UniScale(Strategy):
    """LinUCB over (model × k × aggregation) arms with UniScale's cost-weighted reward."""

    name = "uniscale"
    family = "uniscale"
    description = "UniScale: LinUCB bandit over model × k × aggregation, online, cost-weighted."
    needs_answers = True

    @dataclass
    class Params:
        # Rewards are w1·correct + w2·score − w3·cost (cost normalised to [0, 1]): weights up
        # to 1e6 give any useful ratio and keep rewards finite (1e308 overflowed to inf − inf).
        cost_weight: float = bounded(0.3, ge=0, le=1e6)  # w3
        w_correct: float = bounded(1.0, ge=0, le=1e6)  # w1
        w_score: float = bounded(0.0, ge=0, le=1e6)  # w2 (the bank's sample score, if any)
        alpha: float | None = bounded(None, ge=0, le=1e6)  # exploration width; None: on train
        dim: int | None = bounded(None, ge=0, le=4096)  # principal components; None: likewise
        norm: str = choice("auto", *NORMS)  # cost normalisation; auto: chosen on train
        max_k: int = bounded(16, ge=1)
        warm_start: bool = True
        batch: int = bounded(
            16, ge=1
        )  # queries chosen per A⁻¹ snapshot; 1 = strictly sequential LinUCB
        features: str = choice("auto", *KINDS)
        unit: str = unit_option()

    @classmethod
    def sweep(cls, models: list[str], max_k: dict[str, int]) -> list[dict[str, Any]]:
        return [{"cost_weight": w} for w in COST_WEIGHTS]

    # ------------------------------------------------------------------ arms and fitting
    def _arms(self, train: BankArrays, ctx: RunContext) -> list[Arm]:
        arms = []
        for m in ctx.models:
            has_lp = bool(np.isfinite(train.models[m].logprob).any()) if train.n_queries else False
            limit = min(ctx.max_samples(m), self.params.max_k)
            arms += [Arm(m, k, "majority") for k in vote_counts_k(limit)]  # odd k: no ties
            if has_lp:
                arms += [Arm(m, k, "logprob") for k in powers_of_two(limit) if k > 1]
        if not arms:
            raise UisbenchError("uniscale: no arm can run (the bank holds no samples)")
        return arms

    def reward(self, correct: np.ndarray, score: np.ndarray, cost: np.ndarray) -> np.ndarray:
        p = self.params
        ncost = normalised_cost(cost, self.arm_cost, self.norm)
        return p.w_correct * correct + p.w_score * score + p.cost_weight * (1.0 - ncost)

    def _context(self, feats: np.ndarray, dim: int | None = None) -> np.ndarray:
        """Features projected on the top ``dim`` principal components, plus a constant."""
        dim = self.dim if dim is None else dim
        if self._train_x is None or dim == 0:
            return np.ones((len(feats), 1))
        mu, comps = self._pca
        z = (feats - mu) @ comps[:dim].T
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
        self._train_x = None
        if train.n_queries >= 2:
            self._train_x = train_features(train.prompts, p.features).astype(float)
            self._pca = principal_components(self._train_x)
        self._choose_settings(train, ctx.cache)
        x = self._context(self._train_x) if self._train_x is not None else None
        d = 1 if x is None else x.shape[1]
        A_inv = np.repeat(np.eye(d)[None], len(self.arms), axis=0)
        b = np.zeros((len(self.arms), d))
        if p.warm_start and x is not None:
            out = self._outcomes(ctx.cache, train, ctx.seed)
            with single_thread():
                A_inv, b = warm_start(x, self.reward(out.correct, out.score, out.cost))
        self.A_inv, self.b = A_inv, b

    # ------------------------------------------------------------------ settings on train
    def _outcomes(self, cache: FitCache, train: BankArrays, seed: int) -> Outcomes:
        sims = [simulate_arm(cache, train, arm, self.unit, seed, 1) for arm in self.arms]
        c, s, cost = (np.column_stack(x) for x in zip(*sims))
        return Outcomes(c, s, cost, self.arm_cost)

    def _choose_settings(self, train: BankArrays, cache: FitCache) -> None:
        """Normalisation, α and dim: the given ones, or chosen by replay on the training split
        (:mod:`.uniscale_tuning`); kept in ``cache`` so a sweep over cost weights and seeds
        tunes once."""
        p = self.params
        self.norm, self.alpha, self.dim = p.norm, p.alpha, p.dim
        self.tuning: dict[str, Any] = {}
        can_tune = self._train_x is not None and train.n_queries >= 8
        if not can_tune:
            self.norm = "linear" if p.norm == "auto" else p.norm
            self.alpha = TUNE_ALPHA if p.alpha is None else p.alpha
            self.dim = 0 if self._train_x is None else (p.dim if p.dim is not None else TUNE_DIM)
            return
        out = self._outcomes(cache, train, 0)
        key = (
            "uniscale-settings",
            tuple(a.label for a in self.arms),
            self.unit,
            p.features,
            p.w_correct,
            p.w_score,
            p.batch,
        )
        if p.norm == "auto":
            found = cache.get(train, (*key, "norm"), lambda: self._tune_norm(out))
            self.norm, self.tuning["norm_area"] = found
        if p.alpha is None or p.dim is None:
            k2 = (*key, self.norm, p.cost_weight, p.alpha, p.dim)
            found = cache.get(train, k2, lambda: self._tune_alpha_dim(out))
            self.alpha, self.dim, self.tuning["train_reward"] = found
        self.tuning["how"] = (
            "replay on the training split: warm start on one half, LinUCB online on the other"
        )

    def _play_on_train(self, out: Outcomes, w3: float, norm: str, alpha: float, dim: int):
        def context(d: int) -> np.ndarray:
            return self._context(self._train_x, d)

        weights = (self.params.w_correct, self.params.w_score, w3)
        with single_thread():
            return replay_on_train(out, context, weights, norm, alpha, dim, self.params.batch)

    def _tune_norm(self, out: Outcomes) -> tuple[str, dict[str, float]]:
        runs = {
            norm: [
                self._play_on_train(out, w, norm, TUNE_ALPHA, TUNE_DIM)[2:0:-1]
                for w in COST_WEIGHTS
            ]
            for norm in NORMS
        }
        return choose_norm(runs)

    def _tune_alpha_dim(self, out: Outcomes) -> tuple[float, int, float]:
        p = self.params
        alphas = ALPHAS if p.alpha is None else (p.alpha,)
        dims = DIMS if p.dim is None else (p.dim,)
        per_query = {
            (a, d): self._play_on_train(out, p.cost_weight, self.norm, a, d)[3]
            for a in alphas
            for d in dims
        }
        alpha, dim = one_se_choice(per_query)
        return alpha, dim, float(np.nanmean(per_query[alpha, dim]))

    # ------------------------------------------------------------------ online loop
    def _stream_context(self, ctx: RunContext) -> np.ndarray:
        """Context rows of the test stream. With dim = 0 the bandit reads no query features,
        so none are computed and their embedding is not paid for."""
        if self._train_x is None or self.dim == 0:
            return np.ones((len(ctx.stream), 1))
        feats = query_features(ctx.meter, ctx.stream, self.params.features).astype(float)
        with single_thread():
            return self._context(feats)

    def run(self, ctx: RunContext) -> Iterator[Decisions]:
        meter = ctx.meter
        x_all = self._stream_context(ctx)
        ledger = getattr(meter.ledger, self.unit)
        A_inv, b = self.A_inv.copy(), self.b.copy()
        self.rewards = np.zeros(len(ctx.stream))  # kept for the regret log of :meth:`evaluate`
        history: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        for lo in range(0, len(ctx.stream), CHUNK):
            qs = ctx.stream[lo : lo + CHUNK]
            with single_thread():
                handles, rewards, chosen, correct = self._chunk(
                    meter, ledger, qs, x_all[lo : lo + CHUNK], A_inv, b
                )
            self.rewards[lo : lo + len(qs)] = rewards
            history.append((chosen, rewards, correct))
            self._summary = self._learning_summary(history)
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
        """(handles, rewards, chosen arms, correct) for one chunk, B queries per snapshot.

        ``xs``: the chunk's context rows; ``A_inv`` and ``b`` are updated in place.
        """
        B = self.params.batch
        blocks = [
            self._block(meter, ledger, qs[lo : lo + B], xs[lo : lo + B], A_inv, b)
            for lo in range(0, len(qs), B)
        ]
        handles, rewards, chosen, correct = (np.concatenate(part) for part in zip(*blocks))
        return handles, rewards, chosen, correct

    def _block(
        self,
        meter: Meter,
        ledger: np.ndarray,
        q: np.ndarray,
        x: np.ndarray,
        A_inv: np.ndarray,
        b: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Choose arms for queries ``q`` from one (A⁻¹, b) snapshot, play them, learn."""
        a = linucb_choose(A_inv, b, x, self.alpha)
        before = ledger[q].copy()
        h, score = self._play(meter, q, a)
        meter.decide(q, h)  # committed now: feedback answers only for committed decisions
        correct = meter.feedback(h).astype(float)
        r = self.reward(correct, score, ledger[q] - before)
        linucb_update(A_inv, b, a, x, r)  # Sherman–Morrison, one O(d²) update per query
        return h, r, a, correct

    def _learning_summary(self, history: list) -> dict[str, Any]:
        """Per-arm pull counts and the learning curve so far (stored in the run's summary)."""
        chosen, rewards, correct = (np.concatenate(x) for x in zip(*history))
        n = len(chosen)
        at = np.unique(np.linspace(1, n, min(CURVE_POINTS, n)).round().astype(int))
        pulls = np.bincount(chosen, minlength=len(self.arms))
        return {
            "settings": {"norm": self.norm, "alpha": self.alpha, "dim": self.dim, **self.tuning},
            "pulls": {a.label: int(c) for a, c in zip(self.arms, pulls) if c},
            "learning_curve": {
                "queries": at.tolist(),
                "mean_reward": (np.cumsum(rewards)[at - 1] / at).round(5).tolist(),
                "accuracy": (np.cumsum(correct)[at - 1] / at).round(5).tolist(),
            },
        }

    def run_summary(self) -> dict[str, Any]:
        """Settings, pull counts and learning curve of the last run (see the module docstring)."""
        return getattr(self, "_summary", {})

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
            c, s, cost = simulate_arm(ctx.cache, sub, arm, self.unit, ctx.seed, draws)
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
