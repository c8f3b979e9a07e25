"""The one seeded k-subset sampler: without replacement, uniform, padding never drawn."""

from __future__ import annotations

import itertools
import zlib
from collections import Counter

import numpy as np
import pytest

from tests.core.test_meter import make_bank
from uisbench.meter import Meter
from uisbench.sampling import k_subsets, sample_order, sample_orders, seeded_rng
from uisbench.strategies import estimators
from uisbench.strategies.aggregators import AGGREGATORS, SampleView
from uisbench.strategies.estimators import simulate_k


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


def test_orders_drawn_at_once_are_the_orders_drawn_one_after_another() -> None:
    n_avail = np.array([0, 2, 5, 7, 3])
    together = sample_orders(np.random.default_rng(4), n_avail, 7, 5)
    rng = np.random.default_rng(4)
    apart = np.stack([sample_order(rng, n_avail, 7) for _ in range(5)])
    np.testing.assert_array_equal(together, apart)


@pytest.mark.parametrize("aggregator", sorted(AGGREGATORS))
@pytest.mark.parametrize("k", [1, 3, 6])
def test_simulate_k_is_the_same_whatever_the_draws_per_block(
    aggregator: str, k: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """simulate_k stacks several draws as rows: the result equals one draw at a time (a block
    of one draw per loop), each draw a k-subset of the row's held samples as k_subsets gives."""
    arr = make_bank(Q=40, S=6, seed=2).models["a"]
    arr.answer[::3] = np.random.default_rng(1).integers(-1, 3, size=arr.answer[::3].shape)
    rows = np.arange(0, 40, 2)
    runs = []
    for cells in (1 << 22, 1):  # all draws in one block; one draw per block
        monkeypatch.setattr(estimators, "SIMULATE_CELLS", cells)
        rng = np.random.default_rng(9)
        runs.append(simulate_k(arr, k, AGGREGATORS[aggregator], rng, 7, rows))
    for a, b in zip(*runs):
        np.testing.assert_array_equal(a, b)
    # draw d is the aggregate of the d-th seeded k-subset of each row
    rng = np.random.default_rng(9)
    for d in range(7):
        slot = k_subsets(rng, arr.n_avail[rows], arr.answer.shape[1], k)
        view = SampleView(
            np.take_along_axis(arr.answer[rows], slot, 1),
            np.take_along_axis(arr.logprob[rows], slot, 1),
        )
        col = AGGREGATORS[aggregator](view)
        pick = np.maximum(np.take_along_axis(slot, np.maximum(col, 0)[:, None], 1)[:, 0], 0)
        expect = np.where(col >= 0, arr.correct[rows, pick], False)
        np.testing.assert_array_equal(runs[0][0][d], expect)
