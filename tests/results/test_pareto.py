"""Pareto front, AIQ, APGR and cost-to-match against hand-worked cases and brute force."""

from __future__ import annotations

import time

import numpy as np
import pytest

from uisbench.results.pareto import (
    aiq,
    aiq_log,
    apgr,
    cost_to_match,
    cpt,
    hull_value,
    nondecreasing_hull,
    oracle_front,
    pareto_front,
)


def _brute_hull(c: np.ndarray, q: np.ndarray, x: float) -> float:
    """Non-decreasing concave majorant at x by trying every pair of points (cubic overall)."""
    best = 0.0 if x < c.min() else -np.inf
    for i in range(len(c)):
        if c[i] > x:
            continue
        best = max(best, q[i])
        for j in range(len(c)):
            if c[j] <= c[i]:
                continue
            y = min(x, c[j])
            best = max(best, q[i] + (q[j] - q[i]) * (y - c[i]) / (c[j] - c[i]))
    return best


def _brute_aiq(c: np.ndarray, q: np.ndarray, lo: float, hi: float) -> float:
    start = max(lo, c.min())
    xs = np.unique(np.concatenate(([start, hi], c[(c > start) & (c < hi)])))
    ys = np.array([_brute_hull(c, q, x) for x in xs])
    return float(np.sum(np.diff(xs) * (ys[1:] + ys[:-1]) / 2) / (hi - lo))


def test_hand_worked_aiq() -> None:
    # Hull (1,.5)→(2,.9) then flat to 3: area .7 + .9 = 1.6 over a range of 2.
    assert aiq([1, 2, 3], [0.5, 0.9, 0.7]) == pytest.approx(0.8)
    # (2,.3) lies under the chord (1,.2)→(3,.8): area 1.0 over 2.
    assert aiq([1, 2, 3], [0.2, 0.3, 0.8]) == pytest.approx(0.5)
    # A single point in a shared range: zero before it, flat after.
    assert aiq([2], [0.6], c_min=0, c_max=4) == pytest.approx(0.6 * 2 / 4)
    # RouterBench's code divides by the largest cost (c_min = 0).
    assert aiq([1, 3], [0.4, 0.8], c_min=0) == pytest.approx(1.2 / 3)


def test_hull_vertices_and_value() -> None:
    hc, hq = nondecreasing_hull(
        np.array([3, 1, 2, 2, 5, 4]), np.array([0.7, 0.2, 0.3, 0.6, 0.65, 0.9])
    )
    assert hc.tolist() == [1, 2, 4]
    assert hq.tolist() == [0.2, 0.6, 0.9]
    v = hull_value(hc, hq, np.array([0.5, 1.5, 3.0, 10.0]))
    assert v.tolist() == pytest.approx([0.0, 0.4, 0.75, 0.9])


@pytest.mark.parametrize("seed", range(12))
def test_aiq_matches_cubic_brute_force(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 25))
    c = np.round(rng.lognormal(0, 1.5, n), 2)  # rounding makes ties in cost
    q = rng.uniform(0, 1, n)
    lo, hi = 0.0, float(c.max()) * 1.5
    assert aiq(c, q, lo, hi) == pytest.approx(_brute_aiq(c, q, lo, hi), abs=1e-12)
    if c.max() > c.min():
        assert aiq(c, q) == pytest.approx(_brute_aiq(c, q, c.min(), c.max()), abs=1e-12)


def test_nan_points_are_ignored_and_empty_is_nan() -> None:
    assert aiq([1, np.nan, 3], [0.5, 0.99, 0.7]) == pytest.approx(aiq([1, 3], [0.5, 0.7]))
    assert np.isnan(aiq([np.nan], [0.5]))
    assert np.isnan(aiq([2.0], [0.5]))  # no range


def test_pareto_front() -> None:
    c = np.array([1, 2, 2, 3, 4, np.nan, 0.5])
    q = np.array([0.5, 0.4, 0.7, 0.7, 0.9, 1.0, 0.5])
    # 0.5@0.5 dominates 0.5@1; 0.7@2 dominates 0.4@2 and 0.7@3; NaN cost is skipped.
    assert pareto_front(c, q).tolist() == [6, 2, 4]


@pytest.mark.parametrize("seed", range(5))
def test_pareto_matches_definition(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    c = rng.integers(0, 10, 40).astype(float)
    q = rng.integers(0, 10, 40) / 10
    front = set(pareto_front(c, q).tolist())
    for i in range(len(c)):
        dominated = any(
            c[j] <= c[i] and q[j] >= q[i] and (c[j] < c[i] or q[j] > q[i]) for j in range(len(c))
        )
        # Among exact duplicates exactly one representative is kept.
        dup_kept = any(j in front and c[j] == c[i] and q[j] == q[i] for j in range(len(c)))
        if dominated:
            assert i not in front
        else:
            assert i in front or dup_kept


def test_apgr() -> None:
    weak, strong = (1.0, 0.4), (3.0, 0.8)
    # A random mix of weak and strong recovers half the gap on average (RouteLLM's baseline).
    assert apgr([1, 2, 3], [0.4, 0.6, 0.8], weak, strong) == pytest.approx(0.5)
    # Matching the strong model at half the extra cost: mean quality .7 → PGR .75.
    assert apgr([2.0], [0.8], weak, strong) == pytest.approx(0.75)
    # Undefined when the strong model is not dearer and better.
    assert np.isnan(apgr([2.0], [0.8], weak, (0.5, 0.9)))


def test_apgr_follows_the_strategys_own_curve_not_its_hull() -> None:
    weak, strong = (1.0, 0.4), (3.0, 0.8)
    # (2, .5) lies under the chord weak→(3, .8); the hull would skip it (APGR .5), the own
    # curve dips: PGR 0 → .25 at s=.5 → 1 at s=1, area .0625 + .3125 = .375.
    assert apgr([2.0, 3.0], [0.5, 0.8], weak, strong) == pytest.approx(0.375)


def test_cpt() -> None:
    weak, strong = (1.0, 0.4), (3.0, 0.8)
    # Own curve (s, PGR): (0, 0) → (.5, .25) → (1, 1): PGR .5 at s = .5 + .5·(.25/.75).
    assert cpt([2.0, 3.0], [0.5, 0.8], weak, strong, 0.5) == pytest.approx(0.5 + 0.5 / 3)
    assert cpt([2.0, 3.0], [0.5, 0.8], weak, strong, 0.2) == pytest.approx(0.4)
    assert np.isnan(cpt([2.0], [0.5], weak, strong, 0.8))


def test_aiq_over_log_cost() -> None:
    # Hull (1, .2) → (100, .8): R = .2 + .6·(c − 1)/99; ∫ R d ln c over [1, 100] / ln 100.
    a, b = 0.2 - 0.6 / 99, 0.6 / 99
    want = (a * np.log(100) + b * 99) / np.log(100)
    assert aiq_log([1, 100], [0.2, 0.8]) == pytest.approx(want)
    # A flat hull is its own value; below its cheapest point it earns 0.
    assert aiq_log([10], [0.5], c_min=1, c_max=100) == pytest.approx(0.5 * 0.5)
    # Brute force: trapezoid on a fine log grid.
    rng = np.random.default_rng(3)
    c, q = rng.lognormal(0, 2, 30), rng.uniform(0, 1, 30)
    hc, hq = nondecreasing_hull(c, q)
    grid = np.geomspace(c.min(), c.max(), 200_001)
    ys = hull_value(hc, hq, grid)
    brute = np.sum(np.diff(np.log(grid)) * (ys[1:] + ys[:-1]) / 2) / np.log(c.max() / c.min())
    assert aiq_log(c, q) == pytest.approx(brute, abs=1e-6)


def test_oracle_front_under_cost_caps() -> None:
    # Three queries: solved at cost 1 and 5, one unsolved; the cheapest arm costs 1 each.
    cost, acc = oracle_front([1.0, 5.0, 1.0], [True, True, False], [1.0, 1.0, 1.0], [0.5, 1, 5])
    assert acc.tolist() == pytest.approx([0, 1 / 3, 2 / 3])
    assert cost.tolist() == pytest.approx([1.0, 1.0, 7 / 3])


def test_cost_to_match() -> None:
    assert cost_to_match([5, 2, 3], [0.9, 0.8, 0.85], 0.85) == 3
    assert np.isnan(cost_to_match([5, 2], [0.5, 0.6], 0.9))


def brute_hull(cost: np.ndarray, quality: np.ndarray, at: float) -> float:
    """The non-decreasing hull at ``at`` by its definition: the best mixture of any two points
    whose mean cost is at most ``at`` (0 below the cheapest point); every pair is tried."""
    lo, hi = cost <= at, cost > at
    if not lo.any():
        return 0.0
    ci, cj = cost[lo][:, None], cost[hi][None, :]
    lam = (cj - at) / (cj - ci)
    mixed = lam * quality[lo][:, None] + (1 - lam) * quality[hi][None, :]
    return float(max(quality[lo].max(), mixed.max(initial=-np.inf)))


def test_aiq_against_the_hull_by_definition() -> None:
    rng = np.random.default_rng(0)
    c, q = rng.lognormal(0, 1, 60), rng.uniform(0, 1, 60)
    grid = np.linspace(c.min() * 0.5, c.max() * 1.2, 4001)
    values = np.array([brute_hull(c, q, x) for x in grid])
    assert hull_value(*nondecreasing_hull(c, q), grid) == pytest.approx(values, abs=1e-12)
    lo, hi = grid[0], grid[-1]  # the trapezoid rule's error on this grid is below 1e-4
    area = np.sum(np.diff(grid) * (values[1:] + values[:-1]) / 2) / (hi - lo)
    assert aiq(c, q, lo, hi) == pytest.approx(area, abs=2e-4)


def test_hull_is_not_cubic() -> None:
    """Ten times the points take about ten times as long (n log n: 11.5×; measured 10.7–11.3×
    at load average 11); quadratic would be 100×."""
    rng = np.random.default_rng(0)
    took = []
    for n in (5_000, 50_000):
        c, q = rng.lognormal(0, 2, n), rng.uniform(0, 1, n)
        best = np.inf
        for _ in range(3):
            t0 = time.perf_counter()
            aiq(c, q)
            best = min(best, time.perf_counter() - t0)
        took.append(best)
    assert took[1] / took[0] < 30, took


def _summary_row(
    label: str,
    strategy: str,
    acc: float,
    flops: float,
    dollars: float,
    upper: bool = False,
    family: str = "tts",
) -> dict:
    return {
        "bank": "b",
        "task": "t",
        "config_label": label,
        "strategy": strategy,
        "family": "reference" if strategy in ("single", "oracle") else family,
        "upper_bound": upper,
        "accuracy": acc,
        "ci_low": acc - 0.05,
        "ci_high": acc + 0.05,
        "n_queries": 100,
        "n_seeds": 1,
        "samples_per_query": 1.0,
        "flops": flops,
        "dollars": dollars,
        "input_tokens": 10.0,
        "output_tokens": 5.0,
        "latency_s": 0.1,
    }


def test_board_ranks_by_aiq_and_falls_back_to_dollars_when_flops_are_unknown() -> None:
    import pandas as pd

    from uisbench.results.leaderboard import build_board

    rows = [
        _summary_row("single:model=a", "single", 0.5, 1.0, 1.0),
        _summary_row("single:model=b", "single", 0.8, 10.0, 10.0),
        _summary_row("majority:model=a,k=4", "majority", 0.7, 4.0, 4.0),
        _summary_row("router:lam=0", "router", 0.55, 1.0, 1.0, family="routing"),
        _summary_row("router:lam=1", "router", 0.8, 3.0, 3.0, family="routing"),
        _summary_row("oracle", "oracle", 0.95, 2.0, 2.0, upper=True),
    ]
    board = build_board("t", "b", False, pd.DataFrame(rows))
    assert board.unit == "flops"
    # AIQ over [1, 10]: router (1,.55)→(3,.8) then flat = 6.95/9 beats the single models'
    # chord (1,.5)→(10,.8) = 5.85/9; majority starts late at 4: 4.2/9. The oracle is unranked.
    table = board.strategies.set_index("strategy")
    assert table["rank"].to_dict() == pytest.approx(
        {"router": 1, "majority": 3, "single": 2, "oracle": np.nan}, nan_ok=True
    )
    # The router matches the best single model (0.8) at 3 instead of 10.
    assert table.loc["router", "match_flops"] == 3.0
    assert table.loc["router", "match_ratio_flops"] == pytest.approx(0.3)
    assert table.loc["single", "aiq_flops"] == pytest.approx(5.85 / 9)
    assert table.loc["router", "aiq_flops"] == pytest.approx(6.95 / 9)
    # One configuration without FLOPs: its strategy has no FLOPs AIQ and the task ranks by $.
    rows[2]["flops"] = np.nan
    board = build_board("t", "b", False, pd.DataFrame(rows))
    assert board.unit == "dollars" and board.notes
    assert np.isnan(board.strategies.set_index("strategy").loc["majority", "aiq_flops"])
