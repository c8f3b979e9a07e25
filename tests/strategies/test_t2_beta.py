"""T2 Approach 2 (Beta-binomial law): closed forms checked by hand and by brute force, and a
known law recovered at points the fit never saw (a larger k, a held-out model)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.integrate import quad
from scipy.stats import beta as beta_dist
from scipy.stats import betabinom

from uisbench.strategies.t2_beta import (
    Counts,
    _ab,
    beta_majority_at_k,
    beta_pass_at_k,
    chinchilla_loss,
    fit_beta_law,
)


def test_pass_at_k_by_hand_and_by_integration() -> None:
    # Beta(1, 1) is uniform: E[1 − (1 − p)^k] = 1 − 1/(k + 1) = k/(k + 1).
    for k in (1, 2, 5, 100):
        assert beta_pass_at_k(1.0, 1.0, k) == pytest.approx(k / (k + 1), abs=1e-12)
    # Beta(2, 3), k = 4: numerical integral of 1 − (1 − p)^4 against the density.
    val, _ = quad(lambda p: (1 - (1 - p) ** 4) * beta_dist.pdf(p, 2, 3), 0, 1)
    assert beta_pass_at_k(2.0, 3.0, 4) == pytest.approx(val, abs=1e-10)


def test_majority_is_the_beta_binomial_upper_tail() -> None:
    # k = 3: P(X ≥ 2) under BetaBinomial(3, a, b), from scipy's distribution.
    assert beta_majority_at_k(2.0, 3.0, 3) == pytest.approx(betabinom(3, 2.0, 3.0).sf(1), 1e-12)
    # k = 1: maj@1 is the mean a/(a+b).
    assert beta_majority_at_k(2.0, 3.0, 1) == pytest.approx(0.4, abs=1e-12)


def test_chinchilla_loss_by_hand() -> None:
    # 70B parameters, 1.4T tokens (Chinchilla itself): 1.69 + 406.4/70e9^.34 + 410.7/1.4e12^.28
    want = 1.69 + 406.4 / 70e9**0.34 + 410.7 / 1.4e12**0.28
    assert chinchilla_loss(70e9, 1.4e12) == pytest.approx(want, rel=1e-12)
    assert 1.9 < want < 2.0


def _simulate(rng, losses: dict[str, float], t: np.ndarray, n: int, q: int) -> Counts:
    L = np.array(list(losses.values()))
    Lc = L - L.mean()
    from scipy.special import expit

    a, b = _ab(expit(t[0] - t[1] * Lc), t[2] + t[3] * Lc)
    per = {}
    for i, m in enumerate(losses):
        p = rng.beta(a[i], b[i], q)
        per[m] = (np.full(q, n), rng.binomial(n, p))
    return Counts.from_arrays(per), dict(zip(losses, zip(a, b)))


def test_law_recovered_at_held_out_k_and_model() -> None:
    rng = np.random.default_rng(0)
    sizes = {"m1": (1e9, 1e12), "m2": (3e9, 2e12), "m3": (8e9, 2e12), "m4": (3e10, 4e12)}
    losses = {m: float(chinchilla_loss(*nd)) for m, nd in sizes.items()}
    truth_t = np.array([0.2, 6.0, 0.5, -2.0])
    counts, truth = _simulate(rng, losses, truth_t, n=8, q=3000)
    # fit without m3, then predict m3 (held-out model) and k = 32 (4× the recorded n)
    keep = {m: v for m, v in losses.items() if m != "m3"}
    sel = counts.model != counts.models.index("m3")
    remap = {counts.models.index(m): j for j, m in enumerate(keep)}
    idx = np.array([remap[i] for i in counts.model[sel]])
    sub = Counts(idx, counts.n[sel], counts.c[sel], list(keep))
    fit = fit_beta_law(sub, keep)
    assert not fit.warnings
    from scipy.special import expit

    p = fit.params
    lc = losses["m3"] - p["loss_mean"]
    a3, b3 = _ab(expit(p["u0"] - p["u1"] * lc), p["v0"] + p["v1"] * lc)
    for k in (1, 32):
        want = float(beta_pass_at_k(*truth["m3"], k))
        assert float(beta_pass_at_k(a3, b3, k)) == pytest.approx(want, abs=0.03)
    for m in keep:
        want = float(beta_pass_at_k(*truth[m], 32))
        assert fit.metric(m, 32) == pytest.approx(want, abs=0.03)


def test_one_sample_per_question_is_flagged_and_per_model_fallback() -> None:
    rng = np.random.default_rng(1)
    p = rng.beta(0.6, 0.4, 2000)
    one = Counts.from_arrays({"api": (np.ones(2000), rng.binomial(1, p))})
    fit = fit_beta_law(one, None)
    assert "per-model" in fit.kind and any("not identified" in w for w in fit.warnings)
    assert fit.metric("api", 1) == pytest.approx(0.6, abs=0.03)  # the mean is still fitted
    many = Counts.from_arrays({"api": (np.full(2000, 16), rng.binomial(16, p))})
    fit16 = fit_beta_law(many, None)
    assert not fit16.warnings
    assert fit16.metric("api", 64) == pytest.approx(float(beta_pass_at_k(0.6, 0.4, 64)), abs=0.02)
