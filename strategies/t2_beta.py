"""T2 Approach 2 (Train-to-Test scaling laws, arXiv 2604.01411): a per-question Beta law.

Approach 1 (:mod:`uisbench.strategies.t2`) fits one curve to −log pass@k averaged over questions.
Approach 2 models the questions themselves: question i has a success probability pᵢ ~ Beta(a, b),
so k independent samples solve it with probability 1 − (1 − pᵢ)^k and, averaged over the Beta,

    pass@k = 1 − B(a, b + k) / B(a, b)                       (B: the Beta function)

— a law in k with no free exponent, whose curvature comes from how spread the questions'
difficulties are. The Beta is parameterised by its mean μ = a/(a+b) and concentration
φ = a + b, both functions of the model's Chinchilla loss L(N, D):

    μ = σ(u₀ − u₁·L),     log φ = v₀ + v₁·L,     L(N, D) = E + A/N^α + B/D^β

with the published Chinchilla fit of Hoffmann et al. (2022, Approach 3: E = 1.69, A = 406.4,
B = 410.7, α = 0.34, β = 0.28; N parameters, D tokens). A pool of a few models cannot identify
the five Chinchilla constants as well; the paper likewise takes the pre-training loss as given.
The four (u, v) are fitted by maximum likelihood of the Beta-binomial: every training question's
correct count cᵢ of nᵢ recorded samples of every model, P(c | n) = C(n, c)·B(c + a, n − c + b)/
B(a, b). Approach 2 thus uses every question's count, not only a mean per (model, k).

Where a model's N or D is unknown (hosted models) there is no loss to put in; each model then
gets its own (μ_m, φ_m), fitted the same way (the per-model fallback).

Identifiability, stated in :attr:`BetaFit.warnings` rather than hidden: with one sample per
question the likelihood depends on μ only, so φ — and every pass@k for k > 1 — is not
determined by the data; with fewer distinct losses than the two parameters of μ (or of φ) the
law cannot tell the models apart.

maj@k has no closed form under this law (wrong answers may split their votes). The law's maj@k
is P(more than k/2 of k samples correct) under the Beta-binomial, at odd k: exact when a
question has one wrong answer, a lower bound when wrong answers split.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import minimize
from scipy.special import betaln, expit, gammaln

from uisbench.strategies.features import single_thread

CHINCHILLA = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}
LOG_PHI_BOUNDS = (-6.0, 12.0)


def chinchilla_loss(n_params: np.ndarray, n_tokens: np.ndarray) -> np.ndarray:
    """Hoffmann et al. (2022) eq. 10 with their Approach 3 constants (nats per token)."""
    c = CHINCHILLA
    n, d = np.asarray(n_params, float), np.asarray(n_tokens, float)
    return c["E"] + c["A"] / n ** c["alpha"] + c["B"] / d ** c["beta"]


def beta_pass_at_k(a: np.ndarray, b: np.ndarray, k: np.ndarray) -> np.ndarray:
    """pass@k = 1 − B(a, b + k)/B(a, b), the mean over Beta(a, b) of 1 − (1 − p)^k."""
    a, b, k = np.broadcast_arrays(*(np.asarray(x, float) for x in (a, b, k)))
    return -np.expm1(betaln(a, b + k) - betaln(a, b))


def beta_majority_at_k(a: float, b: float, k: int) -> float:
    """P(X > k/2) for X ~ BetaBinomial(k, a, b): maj@k when the wrong answers never split."""
    j = np.arange(k // 2 + 1, k + 1)
    return float(np.exp(beta_binomial_logpmf(j, np.full(len(j), k), a, b)).sum())


def beta_binomial_logpmf(c: np.ndarray, n: np.ndarray, a: Any, b: Any) -> np.ndarray:
    """log P(c of n | a, b) = log C(n, c) + log B(c + a, n − c + b) − log B(a, b)."""
    log_choose = gammaln(n + 1) - gammaln(c + 1) - gammaln(n - c + 1)
    return log_choose + betaln(c + a, n - c + b) - betaln(a, b)


def _ab(mu: np.ndarray, log_phi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mu = np.clip(mu, 1e-6, 1 - 1e-6)
    phi = np.exp(np.clip(log_phi, *LOG_PHI_BOUNDS))
    return mu * phi, (1.0 - mu) * phi


@dataclass
class BetaFit:
    """A fitted Approach-2 law: (a, b) per model, pass@k and maj@k at any k."""

    kind: str
    ab: dict[str, tuple[float, float]]
    neg_log_lik: float  # per (question, model) count, on the fitted data
    params: dict[str, float]
    warnings: list[str] = field(default_factory=list)

    def at_loss(self, loss: float) -> tuple[float, float]:
        """(a, b) the loss-based law gives a model of Chinchilla loss ``loss`` (one not fitted)."""
        p = self.params
        lc = loss - p["loss_mean"]
        a, b = _ab(expit(p["u0"] - p["u1"] * lc), p["v0"] + p["v1"] * lc)
        return float(a), float(b)

    def metric(self, model: str, k: int, metric: str = "pass", loss: float | None = None) -> float:
        """pass@k or maj@k of ``model``; a model not fitted needs its Chinchilla ``loss``."""
        a, b = self.ab[model] if model in self.ab else self.at_loss(loss)
        if metric == "pass":
            return float(beta_pass_at_k(a, b, k))
        return beta_majority_at_k(a, b, k)


@dataclass
class Counts:
    """Per training question and model: samples held n and correct c (flattened)."""

    model: np.ndarray  # model index per row
    n: np.ndarray
    c: np.ndarray
    models: list[str]

    @classmethod
    def from_arrays(cls, per_model: dict[str, tuple[np.ndarray, np.ndarray]]) -> Counts:
        models = list(per_model)
        rows = [(i, n, c) for i, m in enumerate(models) for n, c in zip(*per_model[m]) if n > 0]
        if not rows:
            return cls(np.empty(0, int), np.empty(0), np.empty(0), models)
        idx, n, c = (np.array(x) for x in zip(*rows))
        return cls(idx.astype(int), n.astype(float), c.astype(float), models)


def _identifiability(counts: Counts, distinct_losses: int | None) -> list[str]:
    out = []
    if len(counts.n) and counts.n.max() <= 1:
        out.append(
            "one sample per question: the Beta's concentration is not identified, so pass@k "
            "for k > 1 is the law's extrapolation, not a fit"
        )
    if distinct_losses is not None and distinct_losses <= 2:
        out.append(
            f"{distinct_losses} distinct Chinchilla losses for 4 law parameters: μ(L) and φ(L) "
            "are lines through at most two points"
        )
    return out


def _nll(counts: Counts, a: np.ndarray, b: np.ndarray) -> float:
    return float(-beta_binomial_logpmf(counts.c, counts.n, a, b).mean())


def _fit(fun, x0s: list[np.ndarray]) -> tuple[np.ndarray, float]:
    best, best_val = x0s[0], np.inf
    with single_thread():
        for x0 in x0s:
            res = minimize(fun, x0, method="L-BFGS-B")
            if res.fun < best_val:
                best, best_val = res.x, float(res.fun)
    return best, best_val


def fit_beta_law(counts: Counts, loss: dict[str, float] | None) -> BetaFit:
    """Maximum-likelihood Approach-2 law; per-model (μ, φ) when ``loss`` is None."""
    if loss is None:
        return _fit_per_model(counts)
    L = np.array([loss[m] for m in counts.models])
    Lc = L - L.mean()  # centred: u₀, v₀ are the law at the pool's mean loss

    def nll(t: np.ndarray) -> float:
        a, b = _ab(expit(t[0] - t[1] * Lc), t[2] + t[3] * Lc)
        return _nll(counts, a[counts.model], b[counts.model])

    acc = counts.c.sum() / max(counts.n.sum(), 1.0)
    logit = float(np.log(np.clip(acc, 0.01, 0.99) / (1 - np.clip(acc, 0.01, 0.99))))
    x0s = [np.array([logit, s, p, 0.0]) for s in (0.0, 2.0, 8.0) for p in (0.0, 2.0)]
    t, val = _fit(nll, x0s)
    a, b = _ab(expit(t[0] - t[1] * Lc), t[2] + t[3] * Lc)
    return BetaFit(
        "T2 approach 2: pass@k = 1 − B(a, b+k)/B(a, b), μ = σ(u₀ − u₁L), log φ = v₀ + v₁L",
        {m: (float(a[i]), float(b[i])) for i, m in enumerate(counts.models)},
        val,
        {"u0": t[0], "u1": t[1], "v0": t[2], "v1": t[3], "loss_mean": float(L.mean())},
        _identifiability(counts, len(set(np.round(L, 9)))),
    )


def _fit_per_model(counts: Counts) -> BetaFit:
    ab, total, params = {}, 0.0, {}
    for i, m in enumerate(counts.models):
        sel = counts.model == i
        sub = Counts(np.zeros(sel.sum(), int), counts.n[sel], counts.c[sel], [m])
        acc = sub.c.sum() / max(sub.n.sum(), 1.0)
        mu0 = float(np.clip(acc, 0.01, 0.99))

        def nll(t: np.ndarray, sub: Counts = sub) -> float:
            a, b = _ab(expit(t[0]), t[1])
            return _nll(sub, a, b)

        t, val = _fit(nll, [np.array([np.log(mu0 / (1 - mu0)), p]) for p in (0.0, 2.0, 5.0)])
        a, b = _ab(expit(t[0]), t[1])
        ab[m] = (float(a), float(b))
        params[f"mu[{m}]"], params[f"log_phi[{m}]"] = float(expit(t[0])), float(t[1])
        total += val * sel.sum()
    return BetaFit(
        "T2 approach 2, per-model Beta (N or D unknown): pass@k = 1 − B(a, b+k)/B(a, b)",
        ab,
        total / max(len(counts.n), 1),
        params,
        _identifiability(counts, None),
    )
