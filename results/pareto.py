"""Accuracy-vs-cost geometry: Pareto fronts, RouterBench's AIQ, RouteLLM's APGR, cost to match.

Every function takes plain arrays of per-configuration mean cost per query (any unit: FLOPs,
dollars, tokens) and accuracy, so the same code serves every strategy family and any number of
configurations. Points with a non-finite cost or accuracy are ignored.

**AIQ** (RouterBench, Hu et al. 2024, §3) is the area under a strategy's *non-decreasing convex
hull* of quality vs cost, divided by the cost range:
``AIQ = 1/(c_max − c_min) ∫_{c_min}^{c_max} R̃(c) dc``. The hull is the least concave,
non-decreasing curve above every point: any cost between two configurations is reachable by
mixing them at random per query, and spending more can always be wasted, so quality never has to
fall. Below a strategy's cheapest configuration it achieves nothing (R̃ = 0 there, as in
RouterBench's code, where the area starts at the cheapest point); past its dearest point R̃ stays
flat up to ``c_max``. RouterBench's reference code (``get_non_descreasing_convex_hull_of`` and
``calc_AIQ``) builds the same hull by testing every point against every pair of points —
O(n³) — and divides by the largest cost, i.e. takes ``c_min = 0``; pass ``c_min=0`` to reproduce
that figure. Here the hull is Andrew's monotone chain (O(n log n) for the sort, O(n) after), cut
at its highest point and extended flat. ``c_min``/``c_max`` must be shared by all strategies
compared (RouterBench extends every hull to the largest cost over all routers), otherwise AIQs
are not comparable.

**AIQ over log cost** (:func:`aiq_log`): the same hull averaged over ``ln c`` instead of ``c``.
Linear AIQ weighs each FLOP alike, so on a ladder of model sizes the region between the small
models (a few percent of the range) barely counts and the ranking is nearly "accuracy at the dear
end"; over log cost each factor of ten in budget counts alike.

**APGR and CPT** (RouteLLM, Ong et al. 2024, §4): PGR = (r − r_weak)/(r_strong − r_weak). APGR is
the average PGR over the share of the weak→strong cost gap spent, s = (c − c_weak)/(c_strong −
c_weak) ∈ [0, 1], along the strategy's **own** cost–quality curve (its configurations in cost
order, joined by straight lines, starting at the weak model as RouteLLM's curves do, flat after
its dearest point) — not its hull. CPT(x) is the smallest s at which that curve reaches PGR ≥ x.
For a two-model router s is exactly its share of strong calls, so both are RouteLLM's; for a
strategy with many models or samples they are the natural generalisation.
"""

from __future__ import annotations

import numpy as np


def _finite(cost: np.ndarray, quality: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    cost = np.asarray(cost, dtype=float)
    quality = np.asarray(quality, dtype=float)
    keep = np.isfinite(cost) & np.isfinite(quality)
    return np.flatnonzero(keep), cost[keep], quality[keep]


def pareto_front(cost: np.ndarray, quality: np.ndarray) -> np.ndarray:
    """Indices of the points no other point beats (no cheaper-or-equal point is as good and
    strictly better in one), ordered by increasing cost. O(n log n)."""
    idx, c, q = _finite(cost, quality)
    if len(c) == 0:
        return idx
    order = np.lexsort((-q, c))  # by cost, then best quality first
    keep = []
    best = -np.inf
    for i in order.tolist():
        if q[i] > best:
            keep.append(i)
            best = q[i]
    return idx[np.asarray(keep, dtype=np.int64)]


def nondecreasing_hull(cost: np.ndarray, quality: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vertices (cost, quality) of the non-decreasing convex hull, by increasing cost.

    Upper hull by Andrew's monotone chain over the best quality at each distinct cost, cut at
    the first point of maximal quality (after it the hull is flat, see :func:`hull_value`).
    """
    _, c, q = _finite(cost, quality)
    if len(c) == 0:
        return np.empty(0), np.empty(0)
    order = np.lexsort((-q, c))
    c, q = c[order], q[order]
    first = np.ones(len(c), dtype=bool)
    first[1:] = c[1:] != c[:-1]  # keep the best quality at each distinct cost
    c, q = c[first], q[first]
    hull: list[int] = []
    for i in range(len(c)):
        while len(hull) >= 2:
            a, b = hull[-2], hull[-1]
            # b is not above segment a→i: drop it (cross product ≥ 0 means a right turn fails)
            if (c[b] - c[a]) * (q[i] - q[a]) - (q[b] - q[a]) * (c[i] - c[a]) >= 0:
                hull.pop()
            else:
                break
        hull.append(i)
    h = np.asarray(hull)
    hc, hq = c[h], q[h]
    top = int(np.argmax(hq))  # first maximum: the hull is increasing up to it
    return hc[: top + 1], hq[: top + 1]


def hull_value(hc: np.ndarray, hq: np.ndarray, at: np.ndarray) -> np.ndarray:
    """The hull curve at costs ``at``: 0 below its cheapest vertex, flat past its dearest."""
    at = np.asarray(at, dtype=float)
    if len(hc) == 0:
        return np.zeros_like(at)
    out = np.interp(at, hc, hq)
    return np.where(at < hc[0], 0.0, out)


def _area(hc: np.ndarray, hq: np.ndarray, lo: float, hi: float) -> float:
    """∫_lo^hi of the hull curve (piecewise linear, 0 before its first vertex)."""
    if len(hc) == 0 or hi <= lo:
        return 0.0
    start = max(lo, hc[0])
    if start >= hi:
        return 0.0
    inner = hc[(hc > start) & (hc < hi)]
    xs = np.concatenate(([start], inner, [hi]))
    ys = hull_value(hc, hq, xs)
    return float(np.sum((xs[1:] - xs[:-1]) * (ys[1:] + ys[:-1]) / 2.0))


def aiq(
    cost: np.ndarray, quality: np.ndarray, c_min: float | None = None, c_max: float | None = None
) -> float:
    """RouterBench's AIQ of one strategy's configurations over ``[c_min, c_max]``.

    The range defaults to the strategy's own; pass the range over every strategy compared.
    NaN when there is no finite point or the range is empty.
    """
    _, c, q = _finite(cost, quality)
    if len(c) == 0:
        return float("nan")
    lo = float(np.min(c)) if c_min is None else float(c_min)
    hi = float(np.max(c)) if c_max is None else float(c_max)
    if not hi > lo:
        return float("nan")
    hc, hq = nondecreasing_hull(c, q)
    return _area(hc, hq, lo, hi) / (hi - lo)


def aiq_log(
    cost: np.ndarray, quality: np.ndarray, c_min: float | None = None, c_max: float | None = None
) -> float:
    """AIQ over log cost: ``1/ln(c_max/c_min) ∫ R̃(c) d ln c`` of the same hull as :func:`aiq`.

    On a hull segment R̃ = a + b·c, so the integral is exact: ``a·ln(c2/c1) + b·(c2 − c1)``.
    NaN when there is no finite point or the range is empty or not positive.
    """
    _, c, q = _finite(cost, quality)
    if len(c) == 0:
        return float("nan")
    lo = float(np.min(c)) if c_min is None else float(c_min)
    hi = float(np.max(c)) if c_max is None else float(c_max)
    if not (lo > 0 and hi > lo):
        return float("nan")
    hc, hq = nondecreasing_hull(c, q)
    start = max(lo, hc[0])
    if start >= hi:
        return 0.0
    xs = np.concatenate(([start], hc[(hc > start) & (hc < hi)], [hi]))
    ys = hull_value(hc, hq, xs)
    x1, x2, y1, y2 = xs[:-1], xs[1:], ys[:-1], ys[1:]
    b = (y2 - y1) / (x2 - x1)
    a = y1 - b * x1
    return float(np.sum(a * np.log(x2 / x1) + b * (x2 - x1)) / np.log(hi / lo))


def gain_curve(
    cost: np.ndarray,
    quality: np.ndarray,
    weak: tuple[float, float],
    strong: tuple[float, float],
) -> tuple[np.ndarray, np.ndarray] | None:
    """The strategy's own curve as (share of the cost gap s, PGR), by increasing s, starting
    at the weak model (0, 0); None when the strong model is not both dearer and better."""
    (cw, qw), (cs, qs) = weak, strong
    _, c, q = _finite(cost, quality)
    if len(c) == 0 or not (np.isfinite([cw, qw, cs, qs]).all() and cs > cw and qs > qw):
        return None
    s = (np.append(cw, c) - cw) / (cs - cw)
    pgr = (np.append(qw, q) - qw) / (qs - qw)
    order = np.argsort(s, kind="stable")
    return s[order], pgr[order]


def apgr(
    cost: np.ndarray,
    quality: np.ndarray,
    weak: tuple[float, float],
    strong: tuple[float, float],
) -> float:
    """RouteLLM's average performance gap recovered on ``[weak, strong]`` (each a
    ``(cost, accuracy)`` pair), along the strategy's own curve (:func:`gain_curve`). NaN when
    the strong model is not both dearer and better, or the strategy has no finite point."""
    curve = gain_curve(cost, quality, weak, strong)
    if curve is None:
        return float("nan")
    s, pgr = curve
    xs = np.unique(np.concatenate(([0.0, 1.0], s[(s > 0) & (s < 1)])))
    ys = np.interp(xs, s, pgr)  # flat past the dearest point; joins points in cost order
    return float(np.sum(np.diff(xs) * (ys[1:] + ys[:-1]) / 2.0))


def cpt(
    cost: np.ndarray,
    quality: np.ndarray,
    weak: tuple[float, float],
    strong: tuple[float, float],
    target: float,
) -> float:
    """RouteLLM's call-performance threshold CPT(target): the smallest share of the weak→strong
    cost gap at which the strategy's own curve reaches PGR ≥ ``target`` (interpolated between
    its configurations); NaN if it never does or the gap is undefined. May be below 0 when a
    configuration cheaper than the weak model already reaches it."""
    curve = gain_curve(cost, quality, weak, strong)
    if curve is None:
        return float("nan")
    s, pgr = curve
    hit = np.flatnonzero(pgr >= target - 1e-12)
    if len(hit) == 0:
        return float("nan")
    i = int(hit[0])
    if i == 0 or pgr[i] == pgr[i - 1]:
        return float(s[i])
    frac = (target - pgr[i - 1]) / (pgr[i] - pgr[i - 1])
    return float(s[i - 1] + frac * (s[i] - s[i - 1]))


def oracle_front(
    oracle_cost: np.ndarray, solved: np.ndarray, fallback_cost: np.ndarray, caps: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The oracle as a front: under each cost cap, every query gets its cheapest correct arm if
    that costs at most the cap, else the cheapest arm (and is wrong).

    ``oracle_cost``/``solved``: per query, the cheapest correct arm's cost and whether one
    exists (the oracle run's decisions); ``fallback_cost``: per query, the cheapest arm's cost.
    Returns (mean cost per query, accuracy) at each cap.
    """
    oc = np.asarray(oracle_cost, dtype=float)[None, :]
    ok = np.asarray(solved, dtype=bool)[None, :] & (oc <= np.asarray(caps, float)[:, None])
    cost = np.where(ok, oc, np.asarray(fallback_cost, dtype=float)[None, :])
    return cost.mean(axis=1), ok.mean(axis=1)


def cost_to_match(cost: np.ndarray, quality: np.ndarray, target: float) -> float:
    """Cheapest configuration whose accuracy reaches ``target`` (NaN if none does)."""
    _, c, q = _finite(cost, quality)
    ok = q >= target - 1e-12
    return float(np.min(c[ok])) if ok.any() else float("nan")
