"""T2-optimal (Train-to-Test scaling laws; arXiv 2604.01411): choose model and samples jointly.

A smaller model can be sampled more often for the same compute, so model size N, pre-training
tokens D and samples k are chosen together, from a law fitted to what the pool's models score.
Approach 1 of the paper fits one law to the negative log of the metric (7 parameters):

    L(N, D, k) = E + A/N^α + B/D^β + G/k^γ,     L ≈ −log pass@k

by least squares on log L with many L-BFGS-B restarts (scipy): plain least squares stands in
for the paper's Huber loss, as a pool gives a handful of points. The law sees the training
split only: pass@k per (model, k) is the mean over training queries of the unbiased estimator
(Chen et al., 2021)

    pass@k = 1 − C(n−c, k)/C(n, k)

and with ``metric=maj`` the target is maj@k instead (majority-vote accuracy over k of the n
recorded samples, averaged over seeded draws): what a deployable system without a verifier gets.
Where some model's N or D is unknown (e.g. hosted models) the joint law cannot be fitted, so
each model gets its own k term, L_m(k) = E_m + G_m/k^γ_m, which every decision (``extra.fit``)
and the log say.

``approach=2`` is the paper's Approach 2 (:mod:`uisbench.strategies.t2_beta`): a per-question
Beta law whose mean and concentration are functions of the Chinchilla loss, fitted by maximum
likelihood on every training question's correct count, with

    pass@k = 1 − B(a, b + k)/B(a, b)

For a per-query budget C (``budget`` × the mean cost of one sample of the dearest model on the
training split) it runs the (model, k) with the best predicted metric among those whose expected
per-query cost fits in C:

    cost(m, k) = inference(m, k) + 6·N_m·D_m / S

inference charged as the meter charges it (2·N per token, the prompt once; dollars when N is
unknown), training compute amortised over S = ``served`` queries: the paper's joint (N, D, k)
choice over the models the pool holds. S = 0, the default, drops the training term: training
is sunk, as it is for a pool of existing models. With ``metric=maj`` only odd k are candidates
(1, 3, 5, 9, 17, …): ties go to the first sample, so maj@2 = maj@1 at twice the cost, and the
law, monotone in k, would favour it.

What the fit cannot determine is stated with the run (``run_summary``): ``warnings`` (no more
(model, k) points than parameters, a single k, one sample per question), ``extrapolation`` (the
law refitted without the largest k, and without the largest model where it spans models, and
its mean relative error on what was left out) and ``best_on_train`` (the (model, k) with the
best observed training metric in the same budget, and whether the law's choice differs, so the
law's added value shows). The law's relative error on the test split, |predicted − observed| /
observed averaged over (model, k) points, is evaluation only (:meth:`T2Optimal.evaluate`),
logged and stored in every decision's ``extra``. Measured on the shared banks:
bench/RESULTS.md, "Strategy quality", T2-optimal.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from scipy.optimize import minimize

from uisbench.costs import training_flops
from uisbench.errors import UisbenchError
from uisbench.fitcache import FitCache
from uisbench.store.arrays import BankArrays
from uisbench.strategies.aggregators import AGGREGATORS, first_correct, take
from uisbench.strategies.base import Decisions, RunContext, Strategy, bounded, choice
from uisbench.strategies.costing import (
    cost_unit,
    expected_cost,
    log_grid,
    powers_of_two,
    unit_option,
    vote_counts_k,
)
from uisbench.strategies.estimators import pass_at_k, simulate_k
from uisbench.strategies.features import single_thread
from uisbench.strategies.t2_beta import Counts, chinchilla_loss, fit_beta_law

log = logging.getLogger(__name__)
FLOOR = 1e-4  # smallest −log metric fitted (a metric of 1.0 would give log 0)
MAJ_DRAWS = 16
FIT_SEED = 0  # the fit is deterministic: seeds vary the test draws, not the law
MAX_RESTARTS = 256  # multi-start cap: each start is one L-BFGS-B fit (100,000 ran for minutes)


def metric_at_k(bank: BankArrays, model: str, k: int, metric: str, seed: int) -> float:
    """Mean pass@k (unbiased) or maj@k (seeded draws) over the bank's queries with n ≥ k."""
    arr = bank.models[model]
    ok = arr.n_avail >= k
    if not ok.any():
        return float("nan")
    if metric == "pass":
        held = np.arange(arr.correct.shape[1])[None, :] < arr.n_avail[:, None]
        c = (arr.correct & held).sum(axis=1)
        return float(np.mean(pass_at_k(arr.n_avail[ok], c[ok], k)))
    rng = np.random.default_rng([seed, k])
    draws = 1 if k == 1 else MAJ_DRAWS
    correct, _ = simulate_k(arr, k, AGGREGATORS["majority"], rng, draws, np.flatnonzero(ok))
    acc = 0.0
    for per_draw in correct.mean(axis=1).tolist():  # in draw order, as a running sum
        acc += per_draw
    return acc / len(correct)


def law(theta: np.ndarray, n: np.ndarray, d: np.ndarray, k: np.ndarray) -> np.ndarray:
    """L(N, D, k) = E + A/N^α + B/D^β + G/k^γ; constants are stored as logs (positive)."""
    return law_grad(theta, n, d, k)[0]


def law_grad(
    theta: np.ndarray, n: np.ndarray, d: np.ndarray, k: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The law and its gradient in θ = (log E, log A, log B, log G, α, β, γ)."""
    e, a, b, g, alpha, beta, gamma = theta
    tn, td, tk = np.exp(a) / n**alpha, np.exp(b) / d**beta, np.exp(g) / k**gamma
    ee = np.exp(e) * np.ones_like(tn)
    grad = np.stack([ee, tn, td, tk, -tn * np.log(n), -td * np.log(d), -tk * np.log(k)])
    return ee + tn + td + tk, grad


def k_law(theta: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Per-model fallback L_m(k) = E + G/k^γ."""
    return k_law_grad(theta, k)[0]


def k_law_grad(theta: np.ndarray, k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    e, g, gamma = theta
    tk = np.exp(g) / k**gamma
    ee = np.exp(e) * np.ones_like(tk)
    return ee + tk, np.stack([ee, tk, -tk * np.log(k)])


def fit_multistart(fun, y: np.ndarray, inits: np.ndarray, bounds: list) -> tuple[np.ndarray, float]:
    """Least squares on log L from many starts with L-BFGS-B; the best optimum wins.

    ``fun(θ)`` returns (L, ∂L/∂θ); the loss mean((log L − log y)²) gets its exact gradient.
    """
    logy = np.log(y)

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        pred, grad = fun(theta)
        pred = np.maximum(pred, 1e-12)
        r = np.log(pred) - logy
        return float(np.mean(r**2)), (grad @ (2.0 * r / pred)) / len(r)

    best, best_loss = inits[0], np.inf
    with single_thread():
        for x0 in inits:
            res = minimize(loss, x0, jac=True, method="L-BFGS-B", bounds=bounds)
            if res.fun < best_loss:
                best, best_loss = res.x, float(res.fun)
    return best, best_loss


@dataclass
class LawFit:
    kind: str  # "T2 approach 1" or the fallback's description
    predict: Any  # (model, k) -> predicted −log metric
    train_loss: float
    warnings: list[str] = field(default_factory=list)


def identifiability(points: list[tuple[str, int, float]], n_params: int) -> list[str]:
    """Say when a fit cannot determine its law: no more points than parameters, or one k."""
    out = []
    if len(points) <= n_params:
        out.append(
            f"{len(points)} (model, k) points for {n_params} law parameters: the fit "
            "interpolates and its constants are not determined"
        )
    if len({k for _, k, _ in points}) == 1:
        out.append(
            "a single k in the bank: the k term (G, γ) is not determined, so the law cannot "
            "trade samples for model size"
        )
    return out


def fit_t2(
    points: list[tuple[str, int, float]],
    meta: dict[str, dict[str, Any]],
    restarts: int,
    seed: int,
) -> LawFit:
    """Fit the joint law when every model has N and D, else the per-model k-term fallback."""
    rng = np.random.default_rng([seed, 0x72])
    models = sorted({m for m, _, _ in points})
    size = {m: meta[m].get("params_active") or meta[m].get("params_total") for m in meta}
    tokens = {m: meta[m].get("train_tokens") for m in meta}
    if all(size[m] for m in models) and all(tokens[m] for m in models):
        return _fit_joint(points, size, tokens, restarts, rng)
    unknown = [m for m in models if not (size[m] and tokens[m])]
    return _fit_per_model(points, models, unknown, restarts, rng)


def _targets(points: list[tuple[str, int, float]]) -> np.ndarray:
    return np.array([max(v, FLOOR) for _, _, v in points])


def _fit_joint(
    points: list[tuple[str, int, float]],
    size: dict[str, float],
    tokens: dict[str, float],
    restarts: int,
    rng: np.random.Generator,
) -> LawFit:
    """T2 approach 1: one law over (N, D, k), N in billions and D in trillions."""
    n = np.array([size[m] / 1e9 for m, _, _ in points])
    d = np.array([tokens[m] / 1e12 for m, _, _ in points])
    k = np.array([kk for _, kk, _ in points], float)
    lo, hi = np.log(FLOOR), np.log(10.0)
    inits = np.column_stack(
        [
            rng.uniform(lo, 0.0, restarts),
            rng.uniform(lo, hi, (restarts, 3)),
            rng.uniform(0.0, 2.0, (restarts, 3)),
        ]
    )
    bounds = [(lo - 5, hi)] * 4 + [(0.0, 3.0)] * 3
    theta, loss = fit_multistart(lambda t: law_grad(t, n, d, k), _targets(points), inits, bounds)

    def predict(model: str, kk: int) -> float:
        return float(law(theta, size[model] / 1e9, tokens[model] / 1e12, float(kk)))

    kind = "T2 approach 1: L = E + A/N^α + B/D^β + G/k^γ"
    return LawFit(kind, predict, loss, identifiability(points, 7))


def _fit_per_model(
    points: list[tuple[str, int, float]],
    models: list[str],
    unknown: list[str],
    restarts: int,
    rng: np.random.Generator,
) -> LawFit:
    """The fallback when N or D is unknown: L_m(k) = E_m + G_m/k^γ_m for each model."""
    y = _targets(points)
    lo = np.log(FLOOR)
    bounds = [(lo - 5, np.log(10.0)), (lo - 5, np.log(10.0)), (0.0, 3.0)]
    fits: dict[str, np.ndarray] = {}
    total = 0.0
    for m in models:
        sel = [i for i, p in enumerate(points) if p[0] == m]
        km = np.array([points[i][1] for i in sel], float)
        inits = np.column_stack(
            [
                rng.uniform(lo, 0.0, restarts),
                rng.uniform(lo, 1.0, restarts),
                rng.uniform(0.0, 2.0, restarts),
            ]
        )
        fits[m], loss = fit_multistart(lambda t, km=km: k_law_grad(t, km), y[sel], inits, bounds)
        total += loss * len(sel)
    msg = f"per-model fit of the k term E_m + G_m/k^γ_m (N or D unknown for {', '.join(unknown)})"
    log.warning("t2: %s", msg)
    warn = [
        f"{m}: {w}" for m in models for w in identifiability([p for p in points if p[0] == m], 3)
    ]
    predict = lambda model, kk: float(k_law(fits[model], float(kk)))  # noqa: E731
    return LawFit(msg, predict, total / len(y), sorted(set(warn)))


def candidate_ks(n: int, metric: str) -> list[int]:
    """Sample counts T2 considers: powers of two (and the most held) for pass@k; odd counts
    for maj@k (:func:`~uisbench.strategies.costing.vote_counts_k`)."""
    if metric == "pass":
        return sorted(set(powers_of_two(n)) | {n}) if n >= 1 else []
    return vote_counts_k(n)


def sizes_and_tokens(meta: dict[str, dict[str, Any]], models: list[str]):
    size = {m: meta[m].get("params_active") or meta[m].get("params_total") for m in models}
    tokens = {m: meta[m].get("train_tokens") for m in models}
    return size, tokens


def fit_approach2(train: BankArrays, models: list[str], meta: dict, metric: str) -> LawFit:
    """T2 approach 2 (:mod:`.t2_beta`) on the training split's per-question correct counts."""
    per = {}
    for m in models:
        arr = train.models[m]
        held = np.arange(arr.correct.shape[1])[None, :] < arr.n_avail[:, None]
        per[m] = (arr.n_avail, (arr.correct & held).sum(axis=1))
    size, tokens = sizes_and_tokens(meta, models)
    known = all(size.values()) and all(tokens.values())
    loss = {m: float(chinchilla_loss(size[m], tokens[m])) for m in models} if known else None
    with single_thread():
        beta = fit_beta_law(Counts.from_arrays(per), loss)

    all_size, all_tokens = sizes_and_tokens(meta, list(meta))

    def predict(model: str, k: int) -> float:
        held_out = None if model in models else chinchilla_loss(all_size[model], all_tokens[model])
        return -float(np.log(max(beta.metric(model, k, metric, held_out), 1e-12)))

    return LawFit(beta.kind, predict, beta.neg_log_lik, list(beta.warnings))


class T2Optimal(Strategy):
    """T2-optimal: the (model, k) the fitted train-to-test law predicts best within a budget."""

    name = "t2"
    family = "t2"
    description = "T2-optimal: fit the T2 scaling law on train, best (model, k) per budget."
    needs_answers = True

    @dataclass
    class Params:
        budget: float = bounded(
            0.3, gt=0
        )  # per-query budget, × the dearest model's one-sample cost (train)
        metric: str = choice("maj", "pass")  # maj: deployable; pass: oracle verifier (a bound)
        approach: int = bounded(1, ge=1, le=2)  # Approach 1 (law on −log metric) or 2 (Beta)
        served: float = bounded(0.0, ge=0)  # queries 6·N·D is amortised over; 0: sunk
        restarts: int = bounded(32, ge=1, le=MAX_RESTARTS)  # L-BFGS-B starts (time grows with it)
        unit: str = unit_option()

    @classmethod
    def sweep(cls, models: list[str], max_k: dict[str, int]) -> list[dict[str, Any]]:
        # Budget × the dearest model's one-sample cost: from far below the cheapest model's
        # sample to the dearest model with every sample the bank holds, log-spaced.
        top = max(max_k.values(), default=1)
        return [{"budget": b} for b in log_grid(0.002, max(1.0, float(top)), 10)]

    def _points(
        self, cache: FitCache, bank: BankArrays, models: list[str], seed: int = FIT_SEED
    ) -> list[tuple[str, int, float]]:
        """−log metric per (model, k) of :func:`candidate_ks`; once per bank's content."""
        key = ("t2-points", tuple(models), self.params.metric, seed)
        return cache.get(bank, key, lambda: self._compute_points(bank, models, seed))

    def _compute_points(
        self, bank: BankArrays, models: list[str], seed: int
    ) -> list[tuple[str, int, float]]:
        pts = []
        for m in models:
            n = int(bank.models[m].n_avail.max()) if bank.n_queries else 0
            for k in candidate_ks(n, self.params.metric):
                v = metric_at_k(bank, m, k, self.params.metric, seed)
                if np.isfinite(v):
                    pts.append((m, k, -np.log(max(v, 1e-12))))
        return pts

    def _fit_law(
        self, cache: FitCache, train: BankArrays, models: list[str], meta: dict, points
    ) -> LawFit:
        """Approach 1 on ``points`` or Approach 2 on ``train``'s counts; once per training
        split's content and these (a budget sweep reuses it)."""
        p = self.params

        def fit() -> LawFit:
            if p.approach == 2:
                law = fit_approach2(train, models, meta, p.metric)
            else:
                law = fit_t2(points, meta, p.restarts, FIT_SEED)
            for w in law.warnings:  # once per fitted law, not once per run
                log.warning("t2 %s: %s", law.kind, w)
            return law

        key = ("t2-law", p.approach, p.metric, tuple(points), tuple(models), p.restarts)
        return cache.get(train, key, fit)

    def fit(self, train: BankArrays, ctx: RunContext) -> None:
        if train.n_queries == 0:
            raise UisbenchError("t2 needs a training split to fit the scaling law on")
        self.unit = cost_unit(ctx.model_meta, self.params.unit, train)
        points = self._points(ctx.cache, train, ctx.models)
        if not points:
            raise UisbenchError("t2: the training split gives no (model, k) point to fit")
        self.law = self._fit_law(ctx.cache, train, ctx.models, ctx.model_meta, points)
        self.train_rel_error = _rel_error(points, self.law)
        self.extrapolation = extrapolation_check(self, ctx, train, points)
        self.observed = {(m, k): float(np.exp(-v)) for m, k, v in points}
        train_share = self._training_share(ctx)
        self.candidates = [
            (m, k, expected_cost(train, m, k, self.unit) + train_share[m])
            for m in ctx.models
            for k in candidate_ks(ctx.max_samples(m), self.params.metric)
        ]
        ref = max(expected_cost(train, m, 1, self.unit) for m in ctx.models)
        self.budget_abs = self.params.budget * ref

    def _training_share(self, ctx: RunContext) -> dict[str, float]:
        """6·N·D / served per query for each model (0 when training is sunk)."""
        served = self.params.served
        if not served:
            return {m: 0.0 for m in ctx.models}
        size, tokens = sizes_and_tokens(ctx.model_meta, ctx.models)
        if self.unit != "flops" or not (all(size.values()) and all(tokens.values())):
            raise UisbenchError(
                "t2: served > 0 amortises training FLOPs 6·N·D, which needs every model's N and "
                "D and the FLOPs unit; this pool lacks them (use served=0)"
            )
        return {m: training_flops(size[m], tokens[m]) / served for m in ctx.models}

    def choose(self, score=None) -> tuple[str, int, float, bool]:
        """(model, k, expected cost, over budget): the best predicted metric that fits the budget.

        ``score(model, k)`` (lower is better) defaults to the law's −log metric. When nothing
        fits, the cheapest candidate runs and the decision says it is over budget.
        """
        score = score or self.law.predict
        feasible = [c for c in self.candidates if c[2] <= self.budget_abs]
        pool = feasible or [min(self.candidates, key=lambda c: c[2])]
        model, k, cost = min(pool, key=lambda c: (score(c[0], c[1]), c[2]))
        return model, k, cost, not feasible

    def best_on_train(self) -> tuple[str, int]:
        """The plain baseline: the (model, k) with the best observed training metric in budget."""
        model, k, _, _ = self.choose(lambda m, kk: -self.observed.get((m, kk), -np.inf))
        return model, k

    def run(self, ctx: RunContext) -> Iterator[Decisions]:
        model, k, cost, over = self.choose()
        base = self.best_on_train()
        log.info(
            "t2 %s: chose %s k=%d (%s %.3g per query, budget %.3g; best on train: %s k=%d); "
            "fit relative error train %.3f",
            *(self.law.kind, model, k, self.unit, cost, self.budget_abs, *base),
            self.train_rel_error,
        )
        draw = ctx.meter.draw(model, ctx.stream, k)
        if self.params.metric == "pass":
            col = first_correct(ctx.meter.oracle(draw))
        else:
            col = AGGREGATORS["majority"](draw)
        info = {
            "model": model,
            "k": k,
            "fit": self.law.kind,
            "unit": self.unit,
            "budget": self.budget_abs,
            "over_budget": over,
            "predicted": float(np.exp(-self.law.predict(model, k))),
            "best_on_train": f"{base[0]}×{base[1]}",
            "law_differs": (model, k) != base,
            "fit_rel_error_train": self.train_rel_error,
        }
        self._summary = {
            **{key: info[key] for key in ("model", "k", "fit", "best_on_train", "law_differs")},
            "warnings": self.law.warnings,
            "fit_rel_error_train": self.train_rel_error,
            "extrapolation": self.extrapolation,
            "metric": self.params.metric,
            # The fitted law against what it was fitted on (the site plots them).
            "law_points": [
                {
                    "model": m,
                    "k": kk,
                    "observed": obs,
                    "predicted": float(np.exp(-self.law.predict(m, kk))),
                }
                for (m, kk), obs in sorted(self.observed.items())
            ],
        }
        yield Decisions(ctx.stream, take(draw.handle, col), extra=[info] * len(ctx.stream))

    def evaluate(self, truth: BankArrays, ctx: RunContext) -> list[dict[str, Any]]:
        """The fitted law's relative error on the test queries (after the run, full bank)."""
        test_points = self._points(ctx.cache, truth.subset(np.sort(ctx.stream)), ctx.models)
        rel = _rel_error(test_points, self.law)
        log.info("t2 %s: fit relative error on the test queries %.3f", self.law.kind, rel)
        return [{"fit_rel_error_test": rel}] * len(ctx.stream)

    def run_summary(self) -> dict[str, Any]:
        """The choice, the plain best-on-train choice, fit warnings and extrapolation errors."""
        return getattr(self, "_summary", {})


def extrapolation_check(
    strat: T2Optimal, ctx: RunContext, train: BankArrays, points: list
) -> dict[str, Any]:
    """Refit without the largest k (and without the largest model, where the law spans
    models) on the training split, predict what was left out, report the mean relative error
    of the metric. ``None`` where nothing can be left out (a single k, a per-model law)."""
    out: dict[str, Any] = {}
    models, meta = ctx.models, ctx.model_meta
    top_k = max(k for _, k, _ in points)
    rest = [p for p in points if p[1] != top_k]
    if top_k > min(k for _, k, _ in points):
        sub = _without_k(train, top_k) if strat.params.approach == 2 else train
        fit = strat._fit_law(ctx.cache, sub, models, meta, rest)
        out["without_largest_k"] = {
            "k": top_k,
            "rel_error": _rel_error([p for p in points if p[1] == top_k], fit),
        }
    size, tokens = sizes_and_tokens(meta, models)
    if len(models) > 2 and all(size.values()) and all(tokens.values()):
        big = max(models, key=lambda m: size[m])
        keep = [m for m in models if m != big]
        fit = strat._fit_law(ctx.cache, train, keep, meta, [p for p in points if p[0] != big])
        held = [p for p in points if p[0] == big]
        out["without_largest_model"] = {"model": big, "rel_error": _rel_error(held, fit)}
    return out


def _without_k(train: BankArrays, k: int) -> BankArrays:
    """The training split with at most k − 1 samples per question (Approach 2's counts)."""
    models = {
        m: replace(arr, n_avail=np.minimum(arr.n_avail, k - 1)) for m, arr in train.models.items()
    }
    return replace(train, models=models)


def _rel_error(points: list[tuple[str, int, float]], fit: LawFit) -> float:
    """Mean |predicted − observed| / observed of the metric (exp(−L)) over (model, k) points."""
    if not points:
        return float("nan")
    obs = np.exp(-np.array([v for _, _, v in points]))
    pred = np.exp(-np.array([fit.predict(m, k) for m, k, _ in points]))
    return float(np.mean(np.abs(pred - obs) / np.maximum(obs, 1e-12)))
