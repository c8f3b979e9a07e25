"""The one seeded k-subset sampler: without replacement, uniform, padding never drawn."""

from __future__ import annotations

import itertools
import zlib
from collections import Counter

import numpy as np

from tests.core.test_meter import make_bank
from uisbench.meter import Meter
from uisbench.sampling import k_subsets, sample_order, seeded_rng


def test_order_is_a_permutation_with_padding_last() -> None:
    n_avail = np.array([0, 1, 3, 5])
    order = sample_order(np.random.default_rng(0), n_avail, 5)
    for n, row in zip(n_avail.tolist(), order.tolist()):
        assert sorted(row) == list(range(5))
        assert sorted(row[:n]) == list(range(n))  # held slots first, in some order
        assert row[n:] == list(range(n, 5))  # padding last, in slot order


def test_k_subsets_are_uniform_over_all_subsets() -> None:
    # 6 000 rows of n = 4, k = 2: each of the C(4, 2) = 6 subsets about 1 000 times.
    rows = 6000
    slots = k_subsets(np.random.default_rng(1), np.full(rows, 4), 6, 2)
    counts = Counter(tuple(sorted(r)) for r in slots.tolist())
    assert set(counts) == set(itertools.combinations(range(4), 2))
    assert all(abs(c - rows / 6) < 4 * np.sqrt(rows / 6) for c in counts.values())


def test_seeded_rng_hashes_the_label_with_crc32() -> None:
    a = seeded_rng(7, "x\0m").random(3)
    b = np.random.default_rng([7, zlib.crc32(b"x\0m")]).random(3)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, seeded_rng(7, "y\0m").random(3))


def test_meter_order_is_the_recorded_construction() -> None:
    """Replays depend on it: the draw order of (seed, stream, model) must never change."""
    bank = make_bank(Q=7, S=6)
    bank.models["a"].n_avail[:] = [6, 5, 4, 6, 1, 6, 3]
    rng = np.random.default_rng([5, zlib.crc32(b"cfg:k=2\0a")])
    keys = rng.random((7, 6))
    keys[np.arange(6)[None, :] >= bank.models["a"].n_avail[:, None]] = np.inf
    expected = np.argsort(keys, axis=1, kind="stable")
    order = Meter(bank, seed=5, stream="cfg:k=2").draw_order("a")
    np.testing.assert_array_equal(order, expected)
