"""ONE seeded k-subset sampler: draw k of a query's n recorded samples without replacement.

A bank holds ``n_avail[q]`` samples for query ``q`` in slots ``0 .. n_avail[q] - 1`` of a padded
``(queries, width)`` array. Drawing k of them uniformly without replacement is taking the first
k of a uniform random permutation of the held slots; a permutation is the argsort of i.i.d.
uniform keys, computed for every query at once (one ``rng.random`` and one ``argsort``, no loop
per query). Padding slots get the key +inf, so they sort last and are never drawn while a
held sample remains.

The meter draws through :func:`sample_order` (its draw order must stay bit-identical across
versions: recorded runs replay against it), and so do the strategies that simulate a request
on the training split or estimate an arm's expected reward (cascade, UniScale, T2).
"""

from __future__ import annotations

import zlib

import numpy as np


def seeded_rng(seed: int, label: str) -> np.random.Generator:
    """A generator seeded by ``seed`` and a stable (CRC-32) hash of ``label``.

    ``hash()`` would differ between processes; CRC-32 of the UTF-8 label does not, so the
    meter's order for (seed, configuration, model) is the same on every machine.
    """
    return np.random.default_rng([seed, zlib.crc32(label.encode())])


def sample_order(rng: np.random.Generator, n_avail: np.ndarray, width: int) -> np.ndarray:
    """Per row, a uniform random order of the held slots followed by the padding slots.

    ``n_avail``: samples held per row; ``width``: the padded width of the bank's arrays.
    Returns ``(rows, width)`` slot indices (int64).
    """
    return sample_orders(rng, n_avail, width, 1)[0]


def sample_orders(
    rng: np.random.Generator, n_avail: np.ndarray, width: int, draws: int
) -> np.ndarray:
    """``draws`` orders of :func:`sample_order` at once, ``(draws, rows, width)``: the same
    orders as ``draws`` calls one after the other (the generator fills its keys in order)."""
    n_avail = np.asarray(n_avail)
    keys = rng.random((draws, len(n_avail), width))
    keys[:, np.arange(width)[None, :] >= n_avail[:, None]] = np.inf
    return np.argsort(keys, axis=-1, kind="stable")


def k_subsets(rng: np.random.Generator, n_avail: np.ndarray, width: int, k: int) -> np.ndarray:
    """``(rows, k)`` slots: k of each row's held samples, uniformly without replacement.

    Rows that hold fewer than k samples get padding slots in their tail; callers mask them
    (their ``n_avail < k``).
    """
    return sample_order(rng, n_avail, width)[:, :k]
