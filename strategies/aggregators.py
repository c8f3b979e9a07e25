"""Vectorised answer aggregation over ``(queries, samples)`` matrices of answer codes."""

from __future__ import annotations

import numpy as np

ROW_BLOCK = 4096  # rows per block keeps the (rows, n, n) comparison under ~20 MB at n = 64


def vote_counts(answer: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """For each sample, the (weighted) number of samples in its row with the same answer.

    Samples without an answer (code -1) get 0 and never count for others.
    """
    m, n = answer.shape
    out = np.zeros((m, n), dtype=float)
    valid = answer >= 0
    w = valid.astype(float) if weights is None else np.where(valid, weights, 0.0)
    for lo in range(0, m, ROW_BLOCK):
        a = answer[lo : lo + ROW_BLOCK]
        eq = a[:, :, None] == a[:, None, :]
        out[lo : lo + ROW_BLOCK] = np.einsum("rij,rj->ri", eq, w[lo : lo + ROW_BLOCK])
    out[~valid] = 0.0
    return out


def majority_column(answer: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Column of the winning answer per row, ties going to the earliest drawn; -1 if none.

    This is self-consistency's plurality vote (Wang et al., 2023) when ``weights`` is None.
    """
    m, n = answer.shape
    if n == 0:
        return np.full(m, -1, dtype=np.int64)
    counts = vote_counts(answer, weights)
    best = counts.max(axis=1, keepdims=True)
    is_best = (counts == best) & (counts > 0)
    col = np.argmax(is_best, axis=1)  # first (earliest) column among the tied leaders
    col[~is_best.any(axis=1)] = -1
    return col


def take(handle: np.ndarray, col: np.ndarray) -> np.ndarray:
    """Handles of the chosen columns, -1 where no column was chosen."""
    out = np.take_along_axis(handle, np.maximum(col, 0)[:, None], axis=1)[:, 0]
    return np.where(col >= 0, out, -1)
