"""Estimators of what k samples of a model achieve, from the n samples a bank recorded.

* pass@k, unbiased and closed-form (Chen et al., 2021, Codex paper, eq. 1):
  pass@k = 1 − C(n−c, k) / C(n, k), the chance that at least one of k samples drawn without
  replacement from the n recorded ones is correct. Computed in the numerically stable product
  form 1 − ∏_{i=n−c+1}^{n} (1 − k / i), which never forms huge binomials, for every query at
  once (one masked product over a ``(queries, max c)`` grid).
* Any other aggregator (maj@k, best-of-k by log-prob) has no closed form; :func:`simulate_k`
  estimates it by Monte Carlo over seeded k-subsets (:mod:`uisbench.sampling`).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from uisbench.sampling import sample_orders
from uisbench.store.arrays import ModelArrays
from uisbench.strategies.aggregators import Aggregator, SampleView, take

#: Cells (draws × queries × samples) of random keys drawn at once by :func:`simulate_k`.
SIMULATE_CELLS = 1 << 22


def _check(n: np.ndarray, c: np.ndarray, k: np.ndarray) -> None:
    if (k > n).any():
        i = np.flatnonzero((k > n).ravel())[0]
        raise ValueError(f"pass@k needs k <= n (got k={k.ravel()[i]}, n={n.ravel()[i]})")
    bad = (c < 0) | (c > n)
    if bad.any():
        i = np.flatnonzero(bad.ravel())[0]
        raise ValueError(f"correct count c={c.ravel()[i]} outside 0..n={n.ravel()[i]}")


def pass_at_k(n: ArrayLike, c: ArrayLike, k: int | ArrayLike) -> np.ndarray | float:
    """Unbiased pass@k per query; arguments broadcast (numpy arrays or scalars).

    Returns a float for scalar inputs, else an array of the broadcast shape. Raises
    ``ValueError`` where k > n or c is not in 0..n.
    """
    n_arr, c_arr, k_arr = (
        a.astype(np.int64) for a in np.broadcast_arrays(np.asarray(n), np.asarray(c), np.asarray(k))
    )
    _check(n_arr, c_arr, k_arr)
    n_arr, c_arr, k_arr = n_arr[..., None], c_arr[..., None], k_arr[..., None]
    j = np.arange(int(c_arr.max(initial=0)))
    i = n_arr - c_arr + 1 + j  # the c factors i = n−c+1 … n, in ascending order
    factor = np.where(j < c_arr, 1.0 - k_arr / np.maximum(i, 1), 1.0)
    out = np.where(n_arr - c_arr < k_arr, 1.0, 1.0 - np.prod(factor, axis=-1, keepdims=True))
    out = out[..., 0]
    return float(out) if out.ndim == 0 else out


def mean_pass_at_k(n: ArrayLike, c: ArrayLike, k: int) -> float:
    """pass@k averaged over queries (the usual headline figure)."""
    return float(np.mean(pass_at_k(n, c, k)))


def simulate_k(
    arr: ModelArrays,
    k: int,
    aggregate: Aggregator,
    rng: np.random.Generator,
    draws: int,
    rows: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Correctness and score of ``aggregate`` over k samples, in ``draws`` seeded draws.

    Each draw takes k of every query's held samples without replacement and aggregates them.
    ``rows``: the query positions to simulate (default: all). Returns two ``(draws, rows)``
    arrays (correct as 0/1, score with NaN as 0); their mean over draws estimates the
    aggregator's accuracy at k (maj@k for ``majority``). Queries that hold fewer than k
    samples get meaningless values; callers mask them.
    """
    rows = np.arange(len(arr.n_avail)) if rows is None else np.asarray(rows)
    answer, logprob = arr.answer[rows], arr.logprob[rows]
    n, width = answer.shape
    correct = np.zeros((draws, n))
    score = np.zeros((draws, n))
    # Several draws at a time, stacked as rows (an aggregator decides row by row): the same
    # draws as one after another, without a Python loop per draw on small banks.
    per_block = max(1, SIMULATE_CELLS // max(n * width, 1))
    for lo in range(0, draws, per_block):
        d = min(per_block, draws - lo)
        slot = sample_orders(rng, arr.n_avail[rows], width, d)[:, :, :k].reshape(d * n, -1)
        r = np.tile(np.arange(n), d)
        col = aggregate(
            SampleView(
                np.take_along_axis(answer[r], slot, axis=1),
                np.take_along_axis(logprob[r], slot, axis=1),
            )
        )
        pick = np.maximum(take(slot, col), 0)
        chosen = col >= 0
        correct[lo : lo + d] = np.where(chosen, arr.correct[rows[r], pick], False).reshape(d, n)
        picked = np.nan_to_num(arr.score[rows[r], pick].astype(float))
        score[lo : lo + d] = np.where(chosen, picked, 0.0).reshape(d, n)
    return correct, score
