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

**APGR** (RouteLLM, Ong et al. 2024, §4): PGR = (r − r_weak)/(r_strong − r_weak) averaged over the
share of the weak→strong cost gap spent. For a two-model router the cost spent is exactly
``c_weak + p·(c_strong − c_weak)`` with p its share of strong calls, so integrating over
normalised cost is RouteLLM's APGR; for a strategy with many models or samples it is the natural
generalisation. The strategy's curve is its non-decreasing hull with the weak model's point
added (sending every query to the weak model is always possible: RouteLLM's curves start there).
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


def apgr(
    cost: np.ndarray,
    quality: np.ndarray,
    weak: tuple[float, float],
    strong: tuple[float, float],
) -> float:
    """RouteLLM's average performance gap recovered between ``weak`` and ``strong``
    (each a ``(cost, accuracy)`` pair). NaN when the strong model is not both dearer and
    better than the weak one, or the strategy has no finite point."""
    (cw, qw), (cs, qs) = weak, strong
    _, c, q = _finite(cost, quality)
    if len(c) == 0 or not (np.isfinite([cw, qw, cs, qs]).all() and cs > cw and qs > qw):
        return float("nan")
    hc, hq = nondecreasing_hull(np.append(c, cw), np.append(q, qw))
    mean_quality = _area(hc, hq, cw, cs) / (cs - cw)
    return float((mean_quality - qw) / (qs - qw))


def cost_to_match(cost: np.ndarray, quality: np.ndarray, target: float) -> float:
    """Cheapest configuration whose accuracy reaches ``target`` (NaN if none does)."""
    _, c, q = _finite(cost, quality)
    ok = q >= target - 1e-12
    return float(np.min(c[ok])) if ok.any() else float("nan")
