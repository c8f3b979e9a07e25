"""The matrix-factorisation router and the FrugalGPT cascade on a small seeded bank.

Three models and three query topics; each model is best on one topic and the dearest is the
best on average, so routing by the prompt pays. One sample per query and model, so a cascade
simulated on the training split is exactly what the meter replays (same sample, same cost).
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.fakes import FakeBank, FakeModel
from uisbench.run_loop import replay_in_memory
from uisbench.store.arrays import BankArrays
from uisbench.strategies.frugal import Stage, evaluate
from uisbench.strategies.mf_router import MFParams, _grads

Q = 900
TOPICS = ("alpha apple orange", "beta engine turbine", "gamma river valley")
ACC = {"small": (0.9, 0.1, 0.3), "mid": (0.2, 0.9, 0.3), "big": (0.6, 0.6, 0.9)}
SIZE_B = {"small": 1.0, "mid": 4.0, "big": 20.0}


def make_bank(seed: int = 0) -> BankArrays:
    topic = np.arange(Q) % 3
    models = [
        FakeModel(m, np.asarray(acc)[topic], samples=1, params_b=SIZE_B[m])
        for m, acc in ACC.items()
    ]
    return FakeBank(
        models=models,
        queries=Q,
        seed=seed,
        train=450,
        input_tokens=40,
        output_tokens=(10, 11),
        prompt=lambda q: f"{TOPICS[q % 3]} question {q}",
    ).arrays()


TRAIN, TEST = np.arange(450), np.arange(450, Q)


@pytest.fixture(scope="module")
def bank() -> BankArrays:
    return make_bank()


def test_mf_gradients_match_finite_differences() -> None:
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((7, 5)), rng.random((7, 3))
    # small parameters keep every logit moderate, where the finite difference is accurate
    p = MFParams(*(0.4 * rng.standard_normal(s) for s in ((4, 5), 4, (3, 4), 4, 3)))

    def loss() -> float:
        prob = 1 / (1 + np.exp(-p.logits(x)))
        bce = -(y * np.log(prob) + (1 - y) * np.log(1 - prob)).mean()
        reg = sum(float((a**2).sum()) for a in (p.W1, p.V, p.w2))
        return bce + 0.05 / 2 * reg

    grads = _grads(p, x, y, 0.05)
    for arr, g in zip(p.as_list(), grads):
        num = np.zeros_like(arr)
        for i in np.ndindex(arr.shape):
            old = arr[i]
            arr[i] = old + 1e-6
            up = loss()
            arr[i] = old - 1e-6
            num[i] = (up - loss()) / 2e-6
            arr[i] = old
        np.testing.assert_allclose(g, num, atol=1e-7)


def test_mf_router_routes_each_topic_to_its_model(bank: BankArrays) -> None:
    singles = {
        m: replay_in_memory(bank, bank.subset(TRAIN), TEST, f"single:model={m}") for m in ACC
    }
    mf = replay_in_memory(bank, bank.subset(TRAIN), TEST, "mf-router:wtp=inf,features=hash")
    # Topic-wise best is 0.9 everywhere; the best single model (big) averages 0.7.
    assert mf.accuracy > max(s.accuracy for s in singles.values()) + 0.1
    # each topic (a third of the queries) goes to its own model
    for m in ACC:
        assert 0.25 < np.mean([e["model"] == m for e in mf.extra]) < 0.42


def test_cascade_evaluation_by_hand() -> None:
    # Two stages over four queries. Stage 1 answers where conf ≥ 0.5 (queries 0, 1: one right),
    # stage 2 answers queries 2, 3 (both right). Cost: 1 each for all four, 10 for two.
    s1 = Stage(np.array([0.9, 0.6, 0.1, 0.2]), np.array([1, 0, 1, 1], bool), np.ones(4))
    s2 = Stage(np.zeros(4), np.ones(4, bool), np.full(4, 10.0))
    assert evaluate([s1, s2], (0.5,)) == (3 / 4, (4 + 20) / 4)
    assert evaluate([s1, s2], (-np.inf,)) == (3 / 4, 1.0)


def test_frugal_cascade_replays_its_training_estimate_and_meets_the_budget(bank) -> None:
    train = bank.subset(TRAIN)
    for budget in (0.05, 0.3, 0.6):
        # the training split replayed as the test stream: accuracy and cost must be the plan's
        r = replay_in_memory(bank, train, TRAIN, f"frugal-cascade:budget={budget}")
        e = r.extra[0]
        assert r.accuracy == pytest.approx(e["train_accuracy"], abs=1e-12)
        assert r.flops == pytest.approx(e["train_cost"], rel=1e-9)
        assert not e["over_budget"] and r.flops <= e["budget"] * (1 + 1e-9)
    big = replay_in_memory(bank, train, TEST, "single:model=big")
    rich = replay_in_memory(bank, train, TEST, "frugal-cascade:budget=1")
    assert rich.accuracy > big.accuracy  # small/mid first, big for the unsure: beats big alone
