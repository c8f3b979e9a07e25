"""Which weights did training confirm? One test per weight against the initialisation.

Family 5 of uisbench (arXiv 2601.15871, "Why inference in large models becomes decomposable
after training"): a dependency that training never moved significantly away from what the
initialisation would give is unsupported, and may be removed. The unit tested here is one
weight ``w[i, j]`` of a linear map: the dependency of output ``i`` on input ``j`` through that map
(a finer unit than a whole row or head, and exactly the edge of the bipartite graph that
:mod:`uisbench.decompose.graph` splits into components).

Two null hypotheses, one statistic shape ``z = |x| / s`` with a two-sided normal p-value
``p = 2·(1 − Φ(z)) = erfc(z / √2)``:

* **init distribution** (no initial weights saved): H0 ``w ~ N(0, σ²)`` with ``σ`` the config's
  ``initializer_range``; ``x = w``, ``s = σ``. On a model trained for trillions of tokens most
  weights may be far from that distribution; the benchmark measures how far.
* **saved init** (``w0`` known, e.g. a model trained by uisbench or Pythia's step-0 checkpoint):
  H0 "unchanged from initialisation up to optimiser noise"; ``x = w − w0`` and ``s`` the robust
  spread of the deviations of that map, ``1.4826 · MAD(w − w0)`` (consistent for a normal null,
  and unaffected while fewer than half of the weights were really trained: the paper's premise).
  When more than half of the deviations are exactly zero, MAD is 0 and the test becomes exact:
  an unchanged weight has p = 1, a changed one p = 0.

False discoveries are controlled per linear map (each map is one family of tests) with the
Benjamini–Hochberg step-up procedure at level ``q`` (Benjamini & Hochberg 1995, eq. 1): with
p-values sorted ``p(1) ≤ … ≤ p(m)``, reject ``p(1..k)`` for the largest ``k`` with
``p(k) ≤ k·q/m``. A weight is *kept* when it is rejected (a discovery); every other weight is
*removed*. Because BH depends on ``q`` only through that one cut, :func:`bh_thresholds` returns
for a whole sweep of levels the score threshold each level implies, from one sort per map.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from scipy.special import erfc

#: 1 / Φ⁻¹(3/4): makes the median absolute deviation a consistent estimate of a normal σ.
MAD_TO_SIGMA = 1.482602218505602


@dataclass(frozen=True)
class Null:
    """The null hypothesis of one model: the init distribution (``sigma``) or saved ``init``."""

    sigma: float | None = None
    init: dict[str, torch.Tensor] | None = None

    def __post_init__(self) -> None:
        if (self.sigma is None) == (self.init is None):
            raise ValueError("give exactly one of sigma (init distribution) or init (weights)")
        if self.sigma is not None and not self.sigma > 0:
            raise ValueError(f"init distribution sigma must be positive, got {self.sigma}")

    @property
    def kind(self) -> str:
        return "init-distribution" if self.sigma is not None else "saved-init"

    def scale(self, name: str, weight: torch.Tensor) -> float:
        """``s`` of the statistic for the map ``name`` (see the module docstring)."""
        if self.sigma is not None:
            return float(self.sigma)
        dev = (weight.detach().float() - self._init(name)).flatten()
        mad = (dev - dev.median()).abs().median()
        return max(float(mad) * MAD_TO_SIGMA, float(torch.finfo(torch.float32).tiny))

    def scores(self, name: str, weight: torch.Tensor, scale: float) -> torch.Tensor:
        """``|x| / s`` per weight, the same shape as ``weight``."""
        x = weight.detach().float()
        if self.init is not None:
            x = x - self._init(name)
        return x.abs() / scale  # never in place: x may share the model's storage

    def _init(self, name: str) -> torch.Tensor:
        if self.init is None or name not in self.init:
            raise KeyError(f"no initial weights for {name}")
        return self.init[name].detach().float().to(device="cpu")


def two_sided_p(scores: np.ndarray | torch.Tensor) -> np.ndarray:
    """``p = 2·(1 − Φ(z)) = erfc(z/√2)`` in float64 (accurate far into the tail, 0 past z ≈ 38)."""
    z = np.asarray(scores, dtype=np.float64)
    return erfc(z / math.sqrt(2.0))


def bh_adjusted_sorted(scores: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Scores sorted high to low and their BH-adjusted p-values (non-decreasing).

    The adjusted value of rank ``k`` is ``min_{j ≥ k} p(j)·m/j``: rank ``k`` is rejected at level
    ``q`` exactly when it is ``≤ q`` (the step-up rule in one monotone array).
    """
    s = torch.sort(scores.flatten(), descending=True).values.numpy().astype(np.float64)
    m = len(s)
    ratio = two_sided_p(s) * m / np.arange(1, m + 1)
    adjusted = np.minimum.accumulate(ratio[::-1])[::-1]
    return s, adjusted


def bh_thresholds(scores: torch.Tensor, levels: list[float]) -> np.ndarray:
    """Per level ``q``: the smallest kept score (keep ``score ≥ t``), ``inf`` when none is kept."""
    s, adjusted = bh_adjusted_sorted(scores)
    rejected = np.searchsorted(adjusted, np.asarray(levels, dtype=np.float64), side="right")
    return np.where(rejected > 0, s[np.maximum(rejected - 1, 0)], np.inf)


def bh_reject(p: np.ndarray, q: float) -> np.ndarray:
    """Plain Benjamini–Hochberg on p-values (the reference the threshold form is tested against)."""
    p = np.asarray(p, dtype=np.float64)
    m = len(p)
    order = np.argsort(p, kind="stable")
    below = p[order] <= q * np.arange(1, m + 1) / m
    k = int(np.nonzero(below)[0].max()) + 1 if below.any() else 0
    out = np.zeros(m, dtype=bool)
    out[order[:k]] = True
    return out
