"""Budget-matched verdicts: selection off the scored queries, Holm-corrected claims, reach."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from uisbench.results.budget import (
    REACH_TOLERANCE,
    budget_table,
    curve_intervals,
    holm,
    resample,
    sign_flip_p,
)
from uisbench.results.crossfit import best_mix, crossfit, halvings
from uisbench.results.pareto import hull_value, nondecreasing_hull


def table(rows: dict[str, np.ndarray]) -> pd.DataFrame:
    return pd.DataFrame(rows).T.astype(float)


def brute_mix(cost: np.ndarray, acc: np.ndarray, budget: float) -> float:
    """The best mixture of at most two configurations within the budget, by enumeration."""
    best = -np.inf
    for i, j in itertools.product(range(len(cost)), repeat=2):
        if cost[i] <= budget:
            best = max(best, acc[i])
            if cost[j] > budget:
                lam = (cost[j] - budget) / (cost[j] - cost[i])
                best = max(best, lam * acc[i] + (1 - lam) * acc[j])
    return best


def test_best_mix_is_the_hull_value_and_the_brute_force_optimum():
    rng = np.random.default_rng(0)
    for _ in range(30):
        n = int(rng.integers(1, 12))
        cost, acc = rng.lognormal(0, 1, n), rng.random((5, n))
        for budget in np.quantile(cost, [0.0, 0.3, 0.7, 1.0]) * rng.uniform(0.95, 1.3):
            mix = best_mix(cost, acc, budget)
            if cost.min() > budget:
                assert mix is None
                continue
            for row, a in enumerate(acc):
                want = brute_mix(cost, a, budget)
                hull = hull_value(*nondecreasing_hull(cost, a), np.array([budget]))[0]
                assert mix.value[row] == pytest.approx(want, abs=1e-12)
                assert hull == pytest.approx(want, abs=1e-12)
                # The returned mixture spends at most the budget and scores its value.
                lo, hi, lam = mix.low[row], mix.high[row], mix.lam[row]
                assert lam * cost[lo] + (1 - lam) * cost[hi] <= budget * (1 + 1e-12)
                assert lam * a[lo] + (1 - lam) * a[hi] == pytest.approx(want, abs=1e-12)


def test_holm_against_hand_computed_values():
    # Sorted: 0.005·4 = 0.02, 0.01·3 = 0.03, 0.03·2 = 0.06, 0.04·1 = 0.04 → monotone: 0.06.
    assert holm(np.array([0.01, 0.04, 0.03, 0.005])) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm(np.array([0.5, 0.9])) == pytest.approx([1.0, 1.0])  # capped at 1
    assert holm(np.array([0.2])) == pytest.approx([0.2])


def test_sign_flip_p_matches_exact_enumeration():
    rng = np.random.default_rng(1)
    d = np.round(rng.normal(0.3, 1, (3, 12)), 2)
    signs = np.array(list(itertools.product([-1.0, 1.0], repeat=12)))
    exact = ((signs * np.abs(d)[:, None, :]).sum(axis=2) >= d.sum(axis=1)[:, None] - 1e-9).mean(1)
    got = sign_flip_p(np.abs(d) * np.sign(d), n_flips=40_000, seed=2)
    assert got == pytest.approx(exact, abs=0.01)  # Monte-Carlo error ≈ 0.0025 at 40k flips
    assert sign_flip_p(np.zeros((1, 12)))[0] == 1.0


def null_family(rng, n_q: int, n_cfg: int, p: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """A single model and ``n_cfg`` configurations of one cost, all right with probability p."""
    return (rng.random(n_q) < p).astype(float), (rng.random((n_cfg, n_q)) < p).astype(float)


def frame(single: np.ndarray, family: np.ndarray, costs: list[float]) -> tuple:
    labels = [f"f{i}" for i in range(len(family))]
    per_query = table({"single": single, **dict(zip(labels, family))})
    cost = pd.Series([1.0, *costs], index=["single", *labels])
    return per_query, cost, {"fam": labels}


def test_crossfitting_removes_the_winners_curse():
    """Sixty configurations right with probability 0.5, like the single model: chosen on the
    scored queries the family's accuracy is the largest of sixty noises (measured over 12
    planted banks: 0.558); cross-fitted it is the true 0.5 (measured 0.5001, per-bank spread
    0.013, so a standard error of 0.004 for the mean). A false "best" claim may happen at the
    test's level (5 %): at most 2 of 12 (probability of 3 or more: 2 %)."""
    rng = np.random.default_rng(3)
    in_sample, crossfitted, claims = [], [], 0
    for _ in range(12):
        single, fam = null_family(rng, 400, 60)
        per_query, cost, groups = frame(single, fam, [1.0] * 60)
        row = budget_table(per_query, cost, groups, ["single"]).iloc[0]
        in_sample.append(row["accuracy_in_sample"])
        crossfitted.append(row["accuracy"])
        claims += bool(row["best"])
    assert np.mean(in_sample) - 0.5 > 0.04
    assert abs(np.mean(crossfitted) - 0.5) < 0.012
    assert claims <= 2


def test_a_planted_better_configuration_is_found_and_claimed():
    rng = np.random.default_rng(4)
    single, fam = null_family(rng, 600, 40)
    fam[17] = (rng.random(600) < 0.65).astype(float)  # one configuration 15 points better
    per_query, cost, groups = frame(single, fam, [1.0] * 40)
    row = budget_table(per_query, cost, groups, ["single"]).iloc[0]
    truth = fam[17].mean() - single.mean()
    assert row["gain"] == pytest.approx(truth, abs=0.03)  # the halves almost always pick it
    assert row["gain_low"] > 0 and row["best"] and row["claim"].startswith("best")


def test_crossfit_scores_each_query_only_with_selections_made_without_it():
    """A configuration that is right exactly on the selection half would win in sample; the
    cross-fitted score must come from the held-out half only. Brute force over the halvings."""
    rng = np.random.default_rng(5)
    acc = (rng.random((6, 30)) < 0.5).astype(float)
    cost = np.array([1.0, 1.0, 2.0, 2.0, 3.0, 0.5])
    masks = halvings(30, n=7, seed=1)
    got = crossfit(acc, cost, 2.5, masks)
    total, seen = np.zeros(30), np.zeros(30)
    for m in masks:
        sel = acc[:, m].mean(axis=1)
        best = -1.0, None
        for i, j in itertools.product(range(6), repeat=2):  # the best pair on the selection half
            if cost[i] <= 2.5 and cost[j] >= cost[i]:
                lam = 1.0 if cost[j] <= 2.5 else (cost[j] - 2.5) / (cost[j] - cost[i])
                v = lam * sel[i] + (1 - lam) * sel[j]
                if v > best[0] + 1e-12:
                    best = v, (i, j, lam)
        i, j, lam = best[1]
        total[~m] += lam * acc[i, ~m] + (1 - lam) * acc[j, ~m]
        seen[~m] += 1
    assert got == pytest.approx(total / seen)


def test_reach_within_the_stated_tolerance():
    """A family whose cheapest configuration costs 0.7 % more than the single model (it drew
    other samples) reaches that budget and is scored at its own cost; 5 % more does not."""
    rng = np.random.default_rng(6)
    single, fam = null_family(rng, 200, 2)
    per_query, cost, groups = frame(single, fam, [1.007, 3.0])
    row = budget_table(per_query, cost, groups, ["single"]).iloc[0]
    assert row["reach"] == "within tolerance" and row["spend"] == 1.007
    assert row["accuracy"] == pytest.approx(fam[0].mean())  # the cheapest alone, no mixing
    assert "+0.7%" in row["claim"]
    assert REACH_TOLERANCE == 0.02
    per_query, cost, groups = frame(single, fam, [1.05, 3.0])
    row = budget_table(per_query, cost, groups, ["single"]).iloc[0]
    assert row["reach"] == "no" and np.isnan(row["accuracy"]) and "+5.0%" in row["claim"]


def test_claims_are_corrected_for_every_budget_and_family():
    """At each of three budgets one family is right on k more queries than the model and its
    twin, and wrong on none: the exact one-sided sign-flip p-value is 2^-k. With k = 5 (p =
    1/32) each claim would pass at 0.05 alone, but Holm over 3 budgets × 2 families multiplies
    the smallest by 6 and none survives; with k = 10 (p = 1/1024) all three do."""
    rng = np.random.default_rng(7)
    n = 300

    def board(k: int) -> pd.DataFrame:
        rows, cost = {}, {}
        for b in range(3):
            base = (rng.random(n) < 0.2 + 0.3 * b).astype(float)  # dearer is better
            better = base.copy()
            better[rng.choice(np.flatnonzero(base == 0), k, replace=False)] = 1.0
            for name, x in (("s", base), ("a", better), ("t", base)):
                rows[f"{name}{b}"], cost[f"{name}{b}"] = x, 10.0**b
        groups = {"fam_a": ["a0", "a1", "a2"], "fam_t": ["t0", "t1", "t2"]}
        return budget_table(table(rows), pd.Series(cost), groups, ["s0", "s1", "s2"])

    weak = board(5)
    a = weak[weak["group"] == "fam_a"]
    assert a["p_best"].to_numpy() == pytest.approx([1 / 32] * 3, abs=0.006)
    assert a["p_best_holm"].to_numpy() == pytest.approx([6 / 32] * 3, abs=0.04)
    assert not weak["best"].any()
    assert a["claim"].str.startswith("not shown best").all()
    strong = board(10)
    a = strong[strong["group"] == "fam_a"]
    assert a["best"].all() and (a["p_best_holm"] <= 0.05).all()
    assert not strong.loc[strong["group"] == "fam_t", "best"].any()


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


def test_curve_metrics_on_many_rows_equal_pareto_row_by_row():
    """The vectorised APGR, CPT and cost to match against :mod:`.pareto`'s functions, on rows
    with tied costs, curves that never reach a target and a strong model no better than weak."""
    from uisbench.results.budget import _curve_metrics_one, curve_metrics

    rng = np.random.default_rng(8)
    for _ in range(20):
        n = int(rng.integers(1, 9))
        c = np.round(rng.uniform(0.5, 4.0, n), 1)  # ties are likely
        q = rng.uniform(0, 1, (30, n))
        qw, qs = rng.uniform(0, 0.6, 30), rng.uniform(0.3, 1, 30)
        cw, cs = 1.0, float(rng.choice([0.8, 3.0]))
        got = curve_metrics(c, q, cw, cs, qw, qs)
        want = np.array([_curve_metrics_one(c, q[r], cw, cs, qw[r], qs[r]) for r in range(30)])
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)


def test_no_common_queries_gives_no_verdicts():
    """Configurations that hold disjoint queries cannot be paired: an empty table, no error."""
    per_query = pd.DataFrame(
        [[1.0, np.nan], [np.nan, 0.0]], index=["single", "f0"], columns=[10, 11]
    )
    cost = pd.Series({"single": 1.0, "f0": 1.0})
    assert budget_table(per_query, cost, {"fam": ["f0"]}, ["single"]).empty
