"""A family's accuracy at a budget, with the configuration chosen on other queries.

A family's non-decreasing convex hull at budget B is the best random mixture of at most two of
its configurations whose mean cost is at most B (a linear programme over the mixing weights:
one constraint besides the simplex, so an optimal vertex has at most two non-zero weights).
Taken on the queries it is then scored on, that maximum over dozens of configurations is biased
upwards: the winner of many noisy comparisons is the one that was lucky on these queries.

Cross-fitting removes the bias. The test queries are halved at random (seeded); the mixture is
chosen on one half and scored on the other, then the other way round, and this is repeated over
many halvings. Every query is scored in exactly half of the selections, always by a mixture
chosen without it, so averaging its scores gives one *cross-fitted* accuracy per query that can
be paired with another configuration's on the same query. Costs are the configurations' mean
costs over all test queries (cost is metered, not an outcome to select on, and varies far less
between queries than correctness).

Everything is vectorised over the selections: one matrix product gives every configuration's
accuracy on every selection half, and the best mixture is a maximum over (pairs of)
configurations evaluated for all selections at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

HALVINGS = 200  # random halvings of the test queries (each scored both ways)
MAX_CELLS = 1 << 22  # selections × low × high pairs evaluated per block (bounds memory)


@dataclass
class Mix:
    """Per selection: the mixture ``lam`` of configuration ``low`` and ``1 − lam`` of ``high``
    (``low == high`` and ``lam == 1`` for a single configuration) and its accuracy there."""

    low: np.ndarray
    high: np.ndarray
    lam: np.ndarray
    value: np.ndarray


def best_mix(cost: np.ndarray, acc: np.ndarray, budget: float) -> Mix | None:
    """The most accurate mixture of at most two configurations with mean cost ≤ ``budget``, for
    each row of ``acc`` (selections × configurations); None if every configuration costs more.

    Equals :func:`uisbench.results.pareto.hull_value` of the row's non-decreasing hull at the
    budget. A single configuration is preferred to a mixture of equal accuracy.
    """
    cost = np.asarray(cost, dtype=float)
    acc = np.atleast_2d(np.asarray(acc, dtype=float))
    lo, hi = np.flatnonzero(cost <= budget), np.flatnonzero(cost > budget)
    if len(lo) == 0:
        return None
    rows = np.arange(len(acc))
    k = np.argmax(acc[:, lo], axis=1)
    low, value = lo[k], acc[rows, lo[k]]
    high, lam = low.copy(), np.ones(len(acc))
    if len(hi):
        cl, ch = cost[lo][:, None], cost[hi][None, :]
        w = (ch - budget) / (ch - cl)  # weight on the cheaper configuration: mean cost = budget
        block = max(1, MAX_CELLS // (len(lo) * len(hi)))
        for s in range(0, len(acc), block):
            a = acc[s : s + block]
            mixed = a[:, lo, None] * w + a[:, None, hi] * (1.0 - w)
            flat = mixed.reshape(len(a), -1)
            best = np.argmax(flat, axis=1)
            v = flat[np.arange(len(a)), best]
            better = v > value[s : s + block] + 1e-12
            i, j = np.divmod(best, len(hi))
            sel = np.flatnonzero(better) + s
            low[sel], high[sel] = lo[i[better]], hi[j[better]]
            lam[sel], value[sel] = w[i[better], j[better]], v[better]
    return Mix(low, high, lam, value)


def halvings(n_queries: int, n: int = HALVINGS, seed: int = 0) -> np.ndarray:
    """Selection masks (2n × queries): rows 2r and 2r+1 are the two halves of halving r."""
    rng = np.random.default_rng(seed)
    first = rng.random((n, n_queries)).argsort(axis=1) < n_queries // 2
    return np.stack([first, ~first], axis=1).reshape(2 * n, n_queries)


def half_accuracy(acc: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Accuracy of every configuration (rows of ``acc``) on every selection half (selections ×
    configurations): one matrix product, shared by every family and budget."""
    sel = masks.astype(float)
    return (sel @ acc.T) / sel.sum(axis=1, keepdims=True)


def crossfit(
    acc: np.ndarray,
    cost: np.ndarray,
    budget: float,
    masks: np.ndarray,
    half_acc: np.ndarray | None = None,
) -> np.ndarray | None:
    """Cross-fitted accuracy per query (configurations × queries ``acc``, no missing values):
    each selection's best mixture under ``budget`` chosen on its mask's queries and scored on
    the others, averaged per query over the selections that score it. None if unaffordable.
    ``half_acc``: :func:`half_accuracy` of ``acc`` where the caller has it."""
    half_acc = half_accuracy(acc, masks) if half_acc is None else half_acc
    mix = best_mix(cost, half_acc, budget)
    if mix is None:
        return None
    lam = mix.lam[:, None]
    scored = lam * acc[mix.low] + (1.0 - lam) * acc[mix.high]
    held_out = ~masks
    return np.where(held_out, scored, 0.0).sum(axis=0) / held_out.sum(axis=0)


def in_sample(acc: np.ndarray, cost: np.ndarray, budget: float) -> np.ndarray | None:
    """The per-query accuracy of the mixture chosen on all the queries it is scored on (the
    optimistic figure cross-fitting replaces; kept to show the difference)."""
    mix = best_mix(cost, acc.mean(axis=1)[None, :], budget)
    if mix is None:
        return None
    lam = float(mix.lam[0])
    return lam * acc[mix.low[0]] + (1.0 - lam) * acc[mix.high[0]]
