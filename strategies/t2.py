"""T2-optimal (Train-to-Test scaling laws; arXiv 2604.01411): choose model and samples jointly.

Approach 1 of the paper fits one law to the negative log of pass@k over model size N,
pre-training tokens D and samples k (7 parameters):

    L(N, D, k) = E + A/N^α + B/D^β + G/k^γ,     L ≈ −log pass@k

by minimising the squared error of log L (Huber-free least squares, as a small-data stand-in
for the paper's Huber loss) with many L-BFGS-B restarts (scipy). Here it is fitted on the
training split only: pass@k per (model, k) is the mean over training queries of the unbiased
estimator 1 − C(n−c, k)/C(n, k) (Chen et al., 2021); with ``metric=maj`` the target is maj@k
instead (majority-vote accuracy over k of the n recorded samples, averaged over seeded draws),
which is what a deployable system without a verifier gets.

When some model's N or D is unknown (e.g. hosted models), the joint law cannot be fitted; the
strategy then falls back to a per-model fit of the k term, L_m(k) = E_m + G_m/k^γ_m, and says
so in every decision (``extra.fit``) and in the log.

For a per-query budget C (``budget`` × the mean cost of one sample of the dearest model on the
training split), it runs the (model, k) with the best predicted metric among those whose
expected per-query inference cost (2·N per token, prompt once; dollars when N is unknown) fits
in C. Training compute 6·N·D is sunk for a fixed pool and does not enter the choice. The fit's
relative error on the test split — |predicted − observed| / observed of the metric, averaged
over (model, k) points, observed from the bank for evaluation only — is logged and stored in
every decision's ``extra``.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import minimize

from uisbench.errors import UisbenchError
from uisbench.store.arrays import BankArrays
from uisbench.strategies.aggregators import AGGREGATORS, first_correct, take
from uisbench.strategies.base import Decisions, RunContext, Strategy, bounded
from uisbench.strategies.costing import cost_unit, expected_cost, log_grid, powers_of_two
from uisbench.strategies.estimators import pass_at_k, simulate_k
from uisbench.strategies.features import single_thread

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


_POINTS: dict[tuple, list[tuple[str, int, float]]] = {}
_FITS: dict[tuple, LawFit] = {}  # one fit per (points, restarts, pool): a budget sweep reuses it


def fit_t2(
    points: list[tuple[str, int, float]],
    meta: dict[str, dict[str, Any]],
    restarts: int,
    seed: int,
) -> LawFit:
    """Fit the joint law when every model has N and D, else the per-model k-term fallback."""
    rng = np.random.default_rng([seed, 0x72])
    models = sorted({m for m, _, _ in points})
    size = {m: meta[m].get("params_active") or meta[m].get("params_total") for m in models}
    tokens = {m: meta[m].get("train_tokens") for m in models}
    if all(size.values()) and all(tokens.values()):
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

    return LawFit("T2 approach 1: L = E + A/N^α + B/D^β + G/k^γ", predict, loss)


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
    return LawFit(msg, lambda model, kk: float(k_law(fits[model], float(kk))), total / len(y))


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
        metric: str = "maj"  # "maj" (deployable) or "pass" (oracle verifier: upper bound)
        restarts: int = bounded(32, ge=1, le=MAX_RESTARTS)  # L-BFGS-B starts (time grows with it)
        unit: str = "auto"

        def validate(self) -> None:
            if self.budget <= 0:
                raise UisbenchError("t2: budget must be > 0")
            if self.metric not in ("maj", "pass"):
                raise UisbenchError("t2: metric must be maj or pass")
            if self.restarts < 1:
                raise UisbenchError("t2: restarts must be >= 1")

    @classmethod
    def sweep(cls, models: list[str], max_k: dict[str, int]) -> list[dict[str, Any]]:
        # Budget × the dearest model's one-sample cost: from far below the cheapest model's
        # sample to the dearest model with every sample the bank holds, log-spaced.
        top = max(max_k.values(), default=1)
        return [{"budget": b} for b in log_grid(0.002, max(1.0, float(top)), 10)]

    def _points(self, bank: BankArrays, models: list[str]) -> list[tuple[str, int, float]]:
        """−log metric per (model, k), k = powers of two and the most held; memoised."""
        key = (
            bank.bank,
            hashlib.sha1(bank.query_ids.tobytes()).hexdigest(),
            tuple(models),
            self.params.metric,
        )
        if key not in _POINTS:
            _POINTS[key] = self._compute_points(bank, models)
        return _POINTS[key]

    def _compute_points(self, bank: BankArrays, models: list[str]) -> list[tuple[str, int, float]]:
        pts = []
        for m in models:
            n = int(bank.models[m].n_avail.max()) if bank.n_queries else 0
            for k in sorted(set(powers_of_two(n)) | ({n} if n else set())):
                v = metric_at_k(bank, m, k, self.params.metric, FIT_SEED)
                if np.isfinite(v):
                    pts.append((m, k, -np.log(max(v, 1e-12))))
        return pts

    def fit(self, train: BankArrays, ctx: RunContext) -> None:
        if train.n_queries == 0:
            raise UisbenchError("t2 needs a training split to fit the scaling law on")
        self.unit = cost_unit(ctx.model_meta, self.params.unit, train)
        points = self._points(train, ctx.models)
        if not points:
            raise UisbenchError("t2: the training split gives no (model, k) point to fit")
        key = (tuple(points), self.params.restarts, repr(sorted(ctx.model_meta.items())))
        if key not in _FITS:
            _FITS[key] = fit_t2(points, ctx.model_meta, self.params.restarts, FIT_SEED)
        self.law = _FITS[key]
        self.train_rel_error = _rel_error(points, self.law)
        self.candidates = [
            (m, k, expected_cost(train, m, k, self.unit))
            for m in ctx.models
            for k in powers_of_two(ctx.max_samples(m))
        ]
        ref = max(expected_cost(train, m, 1, self.unit) for m in ctx.models)
        self.budget_abs = self.params.budget * ref

    def choose(self) -> tuple[str, int, float, bool]:
        """(model, k, expected cost, over budget): the best predicted metric that fits the budget.

        When nothing fits, the cheapest candidate runs and the decision says it is over budget.
        """
        feasible = [c for c in self.candidates if c[2] <= self.budget_abs]
        pool = feasible or [min(self.candidates, key=lambda c: c[2])]
        model, k, cost = min(pool, key=lambda c: (self.law.predict(c[0], c[1]), c[2]))
        return model, k, cost, not feasible

    def run(self, ctx: RunContext) -> Iterator[Decisions]:
        model, k, cost, over = self.choose()
        log.info(
            "t2 %s: chose %s k=%d (%s %.3g per query, budget %.3g); fit relative error train %.3f",
            *(self.law.kind, model, k, self.unit, cost, self.budget_abs, self.train_rel_error),
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
            "fit_rel_error_train": self.train_rel_error,
        }
        yield Decisions(ctx.stream, take(draw.handle, col), extra=[info] * len(ctx.stream))

    def evaluate(self, truth: BankArrays, ctx: RunContext) -> list[dict[str, Any]]:
        """The fitted law's relative error on the test queries (after the run, full bank)."""
        test_points = self._points(truth.subset(np.sort(ctx.stream)), ctx.models)
        rel = _rel_error(test_points, self.law)
        log.info("t2 %s: fit relative error on the test queries %.3f", self.law.kind, rel)
        return [{"fit_rel_error_test": rel}] * len(ctx.stream)


def _rel_error(points: list[tuple[str, int, float]], fit: LawFit) -> float:
    """Mean |predicted − observed| / observed of the metric (exp(−L)) over (model, k) points."""
    if not points:
        return float("nan")
    obs = np.exp(-np.array([v for _, _, v in points]))
    pred = np.exp(-np.array([fit.predict(m, k) for m, k, _ in points]))
    return float(np.mean(np.abs(pred - obs) / np.maximum(obs, 1e-12)))
