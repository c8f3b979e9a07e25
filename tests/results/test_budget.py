"""Budget-matched comparison: paired bootstrap intervals and rank claims."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from uisbench.results.budget import budget_table, curve_intervals, resample


def table(rows: dict[str, np.ndarray]) -> pd.DataFrame:
    return pd.DataFrame(rows).T.astype(float)


def test_resample_is_paired_and_matches_brute_force():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 2, 50).astype(float)
    per_query = table({"x": a, "y": a})  # identical configurations
    res = resample(per_query, n_boot=200, seed=1)
    assert res.observed.tolist() == pytest.approx([a.mean(), a.mean()])
    assert np.array_equal(res.boot[:, 0], res.boot[:, 1])  # the same queries for both
    # One resample by hand: the weights are multinomial counts over queries.
    w = np.random.default_rng(1).multinomial(50, np.full(50, 1 / 50), size=200)[0]
    assert res.boot[0, 0] == pytest.approx(w @ a / 50)


def test_claims_only_where_the_paired_interval_excludes_zero():
    rng = np.random.default_rng(2)
    n = 400
    small = (rng.random(n) < 0.4).astype(float)
    big = np.maximum(small, (rng.random(n) < 0.5).astype(float))  # right wherever small is
    router = np.where(rng.random(n) < 0.5, big, small)  # the big model on half the queries
    same = small.copy()  # a family no better than the small model
    per_query = table({"s": small, "b": big, "r": router, "t": same})
    res = resample(per_query, n_boot=300)
    cost = pd.Series({"s": 1.0, "b": 10.0, "r": 1.0, "t": 1.0})
    out = budget_table(res, cost, {"routing": ["r"], "tts": ["t"]}, ["s", "b"]).set_index(
        ["budget_of", "group"]
    )
    # At the small model's budget the router is better by construction, and it is claimed.
    gain = out.loc[("s", "routing")]
    assert gain["gain"] == pytest.approx(router.mean() - small.mean())
    assert gain["gain_low"] > 0 and gain["best"] and gain["claim"].startswith("best")
    assert out.loc[("s", "tts"), "gain"] == 0.0
    # At the big model's budget both hulls are flat at their accuracy: the router is still
    # ahead of tts, but behind the big model, and that gap is significant.
    assert out.loc[("b", "routing"), "gain_high"] < 0


def test_curve_intervals_bracket_the_observed_figures():
    rng = np.random.default_rng(4)
    n = 300
    weak = (rng.random(n) < 0.3).astype(float)
    strong = np.maximum(weak, (rng.random(n) < 0.6).astype(float))
    mix = np.where(np.arange(n) % 2 == 0, strong, weak)
    res = resample(table({"w": weak, "s": strong, "m": mix}), n_boot=200)
    cost = pd.Series({"w": 1.0, "s": 3.0, "m": 2.0})
    out = curve_intervals(res, cost, ["m", "s"], "w", "s")
    for name in ("apgr", "cpt50", "cpt80"):
        assert out[f"{name}_low"] <= out[name] <= out[f"{name}_high"]
    assert out["match"] == 3.0  # only the strong configuration matches the strong model
