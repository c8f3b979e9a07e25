"""Unbiased closed-form estimators over n recorded samples (Chen et al., 2021, Codex paper).

pass@k = 1 - C(n-c, k) / C(n, k): the chance that at least one of k samples drawn without
replacement from the n recorded ones is correct. Computed in the numerically stable product form
1 - prod_{i=n-c+1}^{n} (1 - k / i), which never forms huge binomials.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike


def _pass_at_k_one(n: int, c: int, k: int) -> float:
    if k > n:
        raise ValueError(f"pass@k needs k <= n (got k={k}, n={n})")
    if c < 0 or c > n:
        raise ValueError(f"correct count c={c} outside 0..n={n}")
    if n - c < k:
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def pass_at_k(n: ArrayLike, c: ArrayLike, k: int | ArrayLike) -> np.ndarray | float:
    """Unbiased pass@k per query; arguments broadcast (numpy arrays or scalars).

    Returns a float for scalar inputs, else an array of the broadcast shape.
    """
    n_arr, c_arr, k_arr = np.broadcast_arrays(np.asarray(n), np.asarray(c), np.asarray(k))
    out = np.fromiter(
        (
            _pass_at_k_one(int(a), int(b), int(kk))
            for a, b, kk in zip(n_arr.ravel(), c_arr.ravel(), k_arr.ravel())
        ),
        dtype=float,
        count=n_arr.size,
    ).reshape(n_arr.shape)
    return float(out) if out.ndim == 0 else out


def mean_pass_at_k(n: ArrayLike, c: ArrayLike, k: int) -> float:
    """pass@k averaged over queries (the usual headline figure)."""
    return float(np.mean(pass_at_k(n, c, k)))
