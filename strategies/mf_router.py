"""RouteLLM's matrix-factorisation router, generalised from a strong/weak pair to N models.

RouteLLM (Ong et al., 2024, §4.1, "Matrix factorization") scores a (model, query) pair by a
bilinear form of a learned model embedding and a projection of the query's embedding,

    δ(m, q) = w₂ᵀ (v_m ⊙ (W₁ x_q + c)),

and routes on σ(δ(strong, q) − δ(weak, q)), trained on preference labels. With N models and
correctness labels (every model's outcome on every training query is in the bank) the natural
generalisation, used here, predicts each model's correctness directly:

    P(m correct | q) = σ(δ(m, q) + b_m)

(w₂ is kept as in RouteLLM although v_m could absorb it). The parameters are fitted on the
training split by full-batch Adam on the binary cross-entropy against each query's share of
correct samples, with L2 weight decay chosen by 3-fold cross-validation on the training split
(held-out cross-entropy, grid ``L2_GRID``; a few hundred training queries overfit a 384-d projection
without it, and too much decay flattens it: on the unit bank accuracy moves from 0.80 to 0.90 to
0.73 as the decay goes 1e-3, 1e-2, 3e-2). The query features are those of every router
(:mod:`uisbench.strategies.features`: MiniLM, or hashed words). The predicted correctness then
enters RouterBench's λ-routing like the kNN and logistic routers' (see ``_QualityRouter``).

Being a low-rank model of the (query × model) outcome matrix, it shares strength across models:
a query that is hard for one model moves the prediction for all, which per-model classifiers
(``lr-router``) cannot do with a few hundred training queries.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import expit

from uisbench.errors import UisbenchError
from uisbench.store.arrays import BankArrays
from uisbench.strategies.base import RunContext, bounded
from uisbench.strategies.routing import _QualityRouter


@dataclass
class MFParams:
    """The fitted factorisation: projection (W₁, c), model embeddings V, w₂, biases b."""

    W1: np.ndarray  # (h, d)
    c: np.ndarray  # (h,)
    V: np.ndarray  # (models, h)
    w2: np.ndarray  # (h,)
    b: np.ndarray  # (models,)

    def logits(self, x: np.ndarray) -> np.ndarray:
        z = x @ self.W1.T + self.c  # (n, h)
        return (z * self.w2) @ self.V.T + self.b  # δ(m, q) + b_m, (n, models)

    def as_list(self) -> list[np.ndarray]:
        return [self.W1, self.c, self.V, self.w2, self.b]


def _grads(p: MFParams, x: np.ndarray, y: np.ndarray, l2: float) -> list[np.ndarray]:
    """Gradients of mean BCE(σ(logits), y) + l2/2·‖W₁, V, w₂‖² in every parameter."""
    z = x @ p.W1.T + p.c
    g = (expit((z * p.w2) @ p.V.T + p.b) - y) / y.size  # ∂loss/∂logit
    gzw = g @ p.V  # ∂/∂(z ⊙ w₂), (n, h)
    gz = gzw * p.w2
    return [
        gz.T @ x + l2 * p.W1,
        gz.sum(axis=0),
        g.T @ (z * p.w2) + l2 * p.V,
        (gzw * z).sum(axis=0) + l2 * p.w2,
        g.sum(axis=0),
    ]


def fit_mf(
    x: np.ndarray, y: np.ndarray, dim: int, l2: float, steps: int, lr: float, seed: int
) -> MFParams:
    """Full-batch Adam (Kingma & Ba, 2015) from a seeded small random start."""
    rng = np.random.default_rng(seed)
    n_models = y.shape[1]
    mean = np.clip(y.mean(axis=0), 1e-3, 1 - 1e-3)
    p = MFParams(
        W1=rng.normal(0, 1 / np.sqrt(x.shape[1]), (dim, x.shape[1])),
        c=np.zeros(dim),
        V=rng.normal(0, 1 / np.sqrt(dim), (n_models, dim)),
        w2=np.ones(dim),
        b=np.log(mean / (1 - mean)),
    )
    params = p.as_list()
    m = [np.zeros_like(a) for a in params]
    v = [np.zeros_like(a) for a in params]
    b1, b2, eps = 0.9, 0.999, 1e-8
    for t in range(1, steps + 1):
        for i, g in enumerate(_grads(p, x, y, l2)):
            m[i] = b1 * m[i] + (1 - b1) * g
            v[i] = b2 * v[i] + (1 - b2) * g * g
            params[i] -= lr * (m[i] / (1 - b1**t)) / (np.sqrt(v[i] / (1 - b2**t)) + eps)
    return p


L2_GRID = (1e-3, 3e-3, 1e-2, 3e-2)
#: The most dim × steps a fit may cost: 16 times the default's (see MFRouter.Params).
MAX_WORK = 16 * 16 * 400


def cross_entropy(p: MFParams, x: np.ndarray, y: np.ndarray) -> float:
    prob = np.clip(expit(p.logits(x)), 1e-9, 1 - 1e-9)
    return float(-(y * np.log(prob) + (1 - y) * np.log(1 - prob)).mean())


def choose_l2(x: np.ndarray, y: np.ndarray, dim: int, steps: int, lr: float) -> float:
    """The weight decay of ``L2_GRID`` with the least 3-fold held-out cross-entropy."""
    folds = np.random.default_rng(0).permutation(len(x)) % 3  # seeded random folds
    if len(x) < 6:
        return L2_GRID[len(L2_GRID) // 2]
    score = [
        np.mean(
            [
                cross_entropy(
                    fit_mf(x[folds != f], y[folds != f], dim, l2, steps, lr, 0),
                    x[folds == f],
                    y[folds == f],
                )
                for f in range(3)
            ]
        )
        for l2 in L2_GRID
    ]
    return float(L2_GRID[int(np.argmin(score))])


class MFRouter(_QualityRouter):
    """RouteLLM's matrix-factorisation router over N models, then RouterBench λ-routing."""

    name = "mf-router"
    description = "Routing: RouteLLM matrix factorisation (query × model embeddings), N models."

    @dataclass
    class Params(_QualityRouter.Params):
        # Bounded by what finishes: 13 full-batch fits (3-fold choice of l2 over 4 values, then
        # one) cost ∝ dim × steps; the default takes seconds, MAX_WORK (16×) about a minute on
        # a small bank. RouteLLM's MF router uses dim 128. Larger lr or l2 only overflow Adam.
        dim: int = bounded(16, ge=1, le=256)  # h, the shared embedding width
        l2: float | None = bounded(None, ge=0, le=1e3)  # None: chosen by cross-validation
        steps: int = bounded(400, ge=1, le=4000)
        lr: float = bounded(0.02, gt=0, le=10)

        def validate(self) -> None:  # features and unit: their choices, checked when parsed
            if self.dim * self.steps > MAX_WORK:
                raise UisbenchError(
                    f"strategy mf-router: dim × steps = {self.dim * self.steps} must be <= "
                    f"{MAX_WORK} (16 times the default 16 × 400, so that the fit finishes)"
                )

    def _fit(self, x: np.ndarray, y: np.ndarray, train: BankArrays, ctx: RunContext) -> None:
        p = self.params
        x = x.astype(float)

        def fit() -> tuple[MFParams, float]:
            l2 = p.l2 if p.l2 is not None else choose_l2(x, y, p.dim, p.steps, p.lr)
            return fit_mf(x, y, p.dim, l2, p.steps, p.lr, seed=0), l2

        # a λ sweep fits once: x and y are functions of the training split and these
        key = ("mf", p.features, tuple(ctx.models), p.dim, p.l2, p.steps, p.lr)
        self.mf, self.l2 = ctx.cache.get(train, key, fit)

    def predict(self, x: np.ndarray) -> np.ndarray:
        return expit(self.mf.logits(x.astype(float)))
