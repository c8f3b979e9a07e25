"""The meter: seeded draws without replacement, charges, and what a strategy may choose."""

from __future__ import annotations

import numpy as np
import pytest

from tests.fakes import FakeBank, FakeModel
from uisbench.errors import UisbenchError
from uisbench.meter import Meter, local_client
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
    slots = m.locate(np.concatenate([first.handle, rest.handle], axis=1))[2]
    assert all(sorted(row) == list(range(6)) for row in slots.tolist())
    with pytest.raises(UisbenchError, match="holds 6 samples of a"):
        m.draw("a", q, 1)
    m2 = Meter(bank, seed=3, stream="x")
    again = m2.draw("a", q, 2)
    assert np.array_equal(m2.locate(again.handle)[2], slots[:, :2])
    m3 = Meter(bank, seed=3, stream="y")
    other = m3.draw("a", q, 6)
    assert not np.array_equal(m3.locate(other.handle)[2][:, :2], slots[:, :2])  # no fixed prefix


def test_charges_follow_the_cost_model():
    bank = make_bank()
    m = Meter(bank, seed=0)
    d = m.draw("a", np.array([1]), 3)
    slots = m.locate(d.handle[0])[2]
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
    out_b = bank.models["b"].output_tokens[0, m.locate(d.handle[0])[2]]
    per_token = 0.5 / (100 + out_b)
    assert np.isnan(L.flops[0])
    assert L.dollars[0] == pytest.approx(per_token.mean() * 100 + (per_token * out_b).sum())
    m.charge(np.array([2]), flops=5.0, label="embedding")
    assert L.flops[2] == 5.0 and L.arms[2] == [{"overhead": "embedding"}]


def test_each_query_keeps_its_arms_in_call_order():
    """The arm log stores a sequence once per distinct sequence; what it gives back is what a
    list per query would hold, and its row text is that list's ``json.dumps``."""
    import json

    m = Meter(make_bank(), seed=0)
    m.draw("a", np.array([0, 1, 2]), 1)
    m.charge(np.array([2, 3, 2]), latency_s=0.1, label="embed")  # query 2 twice: twice
    m.draw("b", np.array([3, 2]), 2)
    m.charge(np.array([0]), label='say "hi" ✓')
    m.charge(np.array([1, 4, 1, 1]), label="x")  # three times for query 1, once for 4
    want = {
        0: [{"model": "a", "n": 1}, {"overhead": 'say "hi" ✓'}],
        1: [{"model": "a", "n": 1}] + [{"overhead": "x"}] * 3,
        2: [{"model": "a", "n": 1}, {"overhead": "embed"}, {"overhead": "embed"}]
        + [{"model": "b", "n": 2}],
        3: [{"overhead": "embed"}, {"model": "b", "n": 2}],
        4: [{"overhead": "x"}],
    }
    arms = m.ledger.arms
    assert {i: arms[i] for i in range(5)} == want
    q = np.array([4, 2, 0, 1, 3, 1])
    assert arms.json(q) == [json.dumps(want[i]) for i in q.tolist()]


def test_a_strategys_calls_cannot_make_the_arm_log_grow_faster_than_its_arms():
    """A strategy (untrusted, its calls served by the parent's meter) charging every query
    thousands of times: the log holds one node per step, not every prefix of the sequence (a
    copy per step would hold 3,000²/2 references, about 36 MB here)."""
    import tracemalloc

    from uisbench.meter import ArmLog

    log = ArmLog(5)
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for _ in range(3000):
        log.append(np.arange(5), {"overhead": "x"})
    grown = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert grown < 2 << 20
    assert log[4] == [{"overhead": "x"}] * 3000


def test_only_drawn_samples_can_be_chosen():
    bank = make_bank()
    m = Meter(bank, seed=0)
    d = m.draw("a", np.arange(5), 1)
    answer, correct = m.resolve(d.handle[:, 0])
    slot = m.locate(d.handle[:, 0])[2]
    assert np.array_equal(correct, bank.models["a"].correct[np.arange(5), slot])
    assert np.array_equal(answer, bank.models["a"].answer[np.arange(5), slot])
    with pytest.raises(UisbenchError, match="never handed out"):
        m.resolve(d.handle[:, 0] + 5)  # the next handles: not drawn yet
    assert m.resolve(np.array([-1]))[1].tolist() == [False]


def test_handles_are_opaque_sequence_numbers():
    """A handle says nothing of its model, query or slot: the n-th sample drawn in a run is n,
    whatever was drawn (so no strategy can decode one or forge an undrawn one)."""
    bank = make_bank()
    m = Meter(bank, seed=0)
    a = m.draw("b", np.array([4, 2]), 3)
    b = m.draw("a", np.array([0]), 2)
    assert a.handle.tolist() == [[0, 1, 2], [3, 4, 5]] and b.handle.tolist() == [[6, 7]]
    model, q, _ = m.locate(np.r_[a.handle.ravel(), b.handle.ravel()])
    assert model.tolist() == [1] * 6 + [0] * 2 and q.tolist() == [4, 4, 4, 2, 2, 2, 0, 0]


def test_feedback_answers_only_committed_decisions():
    bank = make_bank()
    m = Meter(bank, seed=0)
    d = m.draw("a", np.arange(5), 2)
    with pytest.raises(UisbenchError, match="only for committed decisions"):
        m.feedback(d.handle[:, 0])
    m.commit(np.arange(3), d.handle[:3, 0])
    assert m.feedback(d.handle[:3, 0]).tolist() == m.resolve(d.handle[:3, 0])[1].tolist()
    with pytest.raises(UisbenchError, match="only for committed decisions"):
        m.feedback(d.handle[:3, 1])  # the other sample of a committed query: not committed
    with pytest.raises(UisbenchError, match="decided the same query twice"):
        m.commit(np.array([0]), d.handle[:1, 1])  # changing a committed answer
    m.commit(np.array([0]), d.handle[:1, 0])  # the same answer again: no change
    with pytest.raises(UisbenchError, match="drawn for another query"):
        m.commit(np.array([4]), d.handle[3:4, 0])
    assert not m.used_oracle


def test_oracle_and_peek_mark_the_run_in_the_parents_record():
    bank = make_bank()
    for use in (
        lambda m: m.oracle(m.draw("a", np.arange(2), 1).handle),
        lambda m: m.peek("a", np.arange(2), 2),
    ):
        m = Meter(bank, seed=0)
        client = local_client(m)
        assert not hasattr(client, "record") and not hasattr(client, "used_oracle")
        use(m)
        assert m.used_oracle and m.record.used_oracle


def test_the_client_mirrors_its_charges_and_shows_only_drawn_content():
    bank = make_bank()
    m = Meter(bank, seed=0)
    client = local_client(m)
    q = np.array([3, 1])
    d = client.draw("a", q, 2)
    slot = m.locate(d.handle)[2]
    assert np.array_equal(d.answer, bank.models["a"].answer[q[:, None], slot])
    assert np.array_equal(d.logprob, bank.models["a"].logprob[q[:, None], slot])
    client.charge(q, flops=7.0, label="embed")
    for unit in ("input_tokens", "output_tokens", "flops", "dollars", "latency_s"):
        assert np.array_equal(getattr(client.ledger, unit), getattr(m.ledger, unit)), unit
    assert client.available("a", q).tolist() == [4, 4]
    for name in ("correct", "answer", "logprob", "cost_usd", "sample_id"):
        with pytest.raises(UisbenchError, match="hidden from strategies"):
            getattr(client.bank.models["a"], name)
    for name in ("answer_labels", "query_ids", "query_keys", "splits"):
        with pytest.raises(UisbenchError, match="hidden from strategies"):
            getattr(client.bank, name)
    assert client.bank.models["a"].n_avail.tolist() == bank.models["a"].n_avail.tolist()
    assert not hasattr(client, "truth") and not hasattr(client, "draw_order")


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
