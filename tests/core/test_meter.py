"""The meter: seeded draws without replacement, charges, and what a strategy may choose."""

from __future__ import annotations

import numpy as np
import pytest

from tests.fakes import FakeBank, FakeModel
from uisbench.errors import UisbenchError
from uisbench.meter import Meter
from uisbench.store.arrays import BankArrays
from uisbench.strategies.aggregators import majority_column, take


def make_bank(Q: int = 5, S: int = 6, seed: int = 0) -> BankArrays:
    """Model a: 1B parameters and prices; b: neither, only a recorded cost per sample."""
    return FakeBank(
        models=(
            FakeModel("a", 0.25, S, 1.0, price_in_per_mtok=1.0, price_out_per_mtok=2.0),
            FakeModel("b", 0.25, S, None, None, cost_usd=0.5),
        ),
        queries=Q,
        seed=seed,
        input_tokens=100,
    ).arrays()


def test_draws_are_without_replacement_and_seeded():
    bank = make_bank()
    m = Meter(bank, seed=3, stream="x")
    q = np.arange(5)
    first = m.draw("a", q, 2)
    rest = m.draw("a", q, 4)
    slots = np.concatenate([first.handle, rest.handle], axis=1) & 0xFFFF
    assert all(sorted(row) == list(range(6)) for row in slots.tolist())
    with pytest.raises(UisbenchError, match="holds 6 samples of a"):
        m.draw("a", q, 1)
    again = Meter(bank, seed=3, stream="x").draw("a", q, 2)
    assert np.array_equal(again.handle, first.handle)
    other = Meter(bank, seed=3, stream="y").draw("a", q, 6)
    assert not np.array_equal(other.handle[:, :2], first.handle)  # no shared fixed prefix


def test_charges_follow_the_cost_model():
    bank = make_bank()
    m = Meter(bank, seed=0)
    d = m.draw("a", np.array([1]), 3)
    slots = d.handle[0] & 0xFFFF
    out = bank.models["a"].output_tokens[1, slots].sum()
    L = m.ledger
    assert L.input_tokens[1] == 100  # the prompt once per request
    assert L.output_tokens[1] == out
    assert L.flops[1] == pytest.approx(2 * 1e9 * (100 + out))
    assert L.dollars[1] == pytest.approx((1.0 * 100 + 2.0 * out) / 1e6)
    assert L.latency_s[1] == bank.models["a"].latency_s[1, slots].max()  # parallel: slowest
    m.draw("a", np.array([1]), 1)  # a second, sequential request adds up
    assert L.samples[1] == 4 and len(L.arms[1]) == 2
    # No size known: FLOPs unknown; no price: the recorded cost per sample split by tokens
    # (implied price per token), the prompt part once per request.
    d = m.draw("b", np.array([0]), 2)
    out_b = bank.models["b"].output_tokens[0, d.handle[0] & 0xFFFF]
    per_token = 0.5 / (100 + out_b)
    assert np.isnan(L.flops[0])
    assert L.dollars[0] == pytest.approx(per_token.mean() * 100 + (per_token * out_b).sum())
    m.charge(np.array([2]), flops=5.0, label="embedding")
    assert L.flops[2] == 5.0 and L.arms[2] == [{"overhead": "embedding"}]


def test_only_drawn_samples_can_be_chosen():
    bank = make_bank()
    m = Meter(bank, seed=0)
    d = m.draw("a", np.arange(5), 1)
    answer, correct = m.resolve(d.handle[:, 0])
    assert np.array_equal(correct, bank.models["a"].correct[np.arange(5), d.handle[:, 0] & 0xFFFF])
    undrawn = (d.handle[:, 0] & ~np.int64(0xFFFF)) | ((d.handle[:, 0] + 1) % 6 & 0xFFFF)
    with pytest.raises(UisbenchError, match="never drew"):
        m.resolve(undrawn)
    assert m.resolve(np.array([-1]))[1].tolist() == [False]


def test_majority_vote_matches_brute_force():
    rng = np.random.default_rng(1)
    answer = rng.integers(-1, 4, size=(500, 7))
    col = majority_column(answer)
    for row, c in zip(answer, col):
        valid = row[row >= 0]
        if len(valid) == 0:
            assert c == -1
            continue
        counts = {a: (valid == a).sum() for a in set(valid.tolist())}
        best = max(counts.values())
        first = next(i for i, a in enumerate(row) if a >= 0 and counts[a] == best)
        assert c == first
    handles = np.arange(500 * 7).reshape(500, 7)
    assert np.array_equal(take(handles, col)[col >= 0], handles[col >= 0, col[col >= 0]])
