"""Strategy unit tests on a small seeded in-memory bank (no database, no shared data).

The bank has two query topics: the cheap model is good on one and bad on the other, the dear
model is good on both, so a router that reads the prompt can beat both single models, and
log-probs are higher for correct samples, so best-of-k and cascades have a signal to use.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from tests.fakes import FakeBank, FakeModel
from uisbench.errors import UisbenchError
from uisbench.meter import Meter, local_client
from uisbench.run_loop import replay_in_memory
from uisbench.store.arrays import BankArrays, ModelArrays
from uisbench.strategies.aggregators import AGGREGATORS, SampleView
from uisbench.strategies.base import STRATEGIES, RunContext
from uisbench.strategies.estimators import simulate_k
from uisbench.strategies.features import query_features
from uisbench.strategies.t2 import fit_t2, k_law, metric_at_k
from uisbench.strategies.uniscale_tuning import sherman_morrison

Q, S = 400, 8
TRAIN = np.arange(150)
TEST = np.arange(150, Q)


TOPIC = np.arange(Q) % 2 == 1  # beta queries: the cheap model is bad on them
FILLER = [" ".join(np.random.default_rng(q).choice(["x", "y", "z", "w"], 5)) for q in range(Q)]


def make_bank(seed: int = 0, unanimous: bool = False) -> BankArrays:
    words = ["alpha apple orange", "beta engine turbine"]
    acc = {"small": np.where(TOPIC, 0.2, 0.95), "big": np.full(Q, 0.8)}
    # params in billions, training tokens in trillions, $ per M tokens (in and out alike)
    sizes = {"small": (1.0, 1.0, 0.1), "big": (10.0, 2.0, 1.0)}
    models = tuple(
        FakeModel(m, 1.0 if unanimous else acc[m], S, n, t, usd, usd)
        for m, (n, t, usd) in sizes.items()
    )
    return FakeBank(
        models=models,
        queries=Q,
        task="unit",
        seed=seed,
        train=len(TRAIN),
        input_tokens=50,
        output_tokens=(20, 21),
        prompt=lambda q: f"{words[int(TOPIC[q])]} {FILLER[q]} question {q}",
    ).arrays()


@pytest.fixture(scope="module")
def bank() -> BankArrays:
    return make_bank()


def run(bank: BankArrays, spec: str, seed: int = 0):
    return replay_in_memory(bank, bank.subset(TRAIN), TEST, spec, seed)


def test_every_strategy_has_description_family_and_params() -> None:
    reg = STRATEGIES.all()
    for name in (
        "knn-router",
        "lr-router",
        "threshold-router",
        "cascade",
        "majority",
        "best-of-k",
        "pass-at-k",
        "adaptive",
        "uniscale",
        "t2",
    ):
        cls = reg[name]
        assert cls.description and "\n" not in cls.description
        assert cls.family in ("routing", "tts", "uniscale", "t2")
        assert hasattr(cls, "Params")


def test_sweeps_respect_max_k() -> None:
    max_k = {"a": 1, "b": 3, "c": 20}
    for name, cls in STRATEGIES.all().items():
        for p in cls.sweep(["a", "b", "c"], max_k):
            if "k" in p and "model" in p:
                assert p["k"] <= max_k[p["model"]], (name, p)


@pytest.mark.parametrize("router", ["lr-router", "knn-router"])
def test_router_reads_the_prompt(bank: BankArrays, router: str) -> None:
    small = run(bank, "single:model=small")
    big = run(bank, "single:model=big")
    r = run(bank, f"{router}:wtp=20,features=hash")
    # topic alpha → small (0.95), beta → big (0.8): better than big, at a lower cost.
    assert r.accuracy > big.accuracy + 0.01
    assert r.dollars < 0.8 * big.dollars
    assert r.accuracy > small.accuracy + 0.2


def test_router_lambda_moves_along_the_cost_axis(bank: BankArrays) -> None:
    cheap = run(bank, "lr-router:wtp=0.01,features=hash")
    assert {e["model"] for e in cheap.extra} == {"small"}
    dear = run(bank, "lr-router:wtp=inf,features=hash")
    assert dear.dollars > cheap.dollars


def test_threshold_router_hits_target_share(bank: BankArrays) -> None:
    # Win-rate scores here are two clusters (one per topic), so the share is a step function
    # of the target except at the clusters' boundary (0.5); it must still be monotone.
    shares = {}
    for share in (0.1, 0.5, 0.9):
        r = run(bank, f"threshold-router:share={share},features=hash")
        shares[share] = np.mean([e["model"] == "big" for e in r.extra])
    assert shares[0.1] < shares[0.5] < shares[0.9]
    assert abs(shares[0.5] - 0.5) < 0.1 and shares[0.1] < 0.2 and shares[0.9] > 0.8


def test_cascade_escalates_on_low_logprob(bank: BankArrays) -> None:
    none = run(bank, "cascade:escalate=0")
    assert {e["model"] for e in none.extra} == {"small"}
    some = run(bank, "cascade:escalate=0.5")
    share_big = np.mean([e["model"] == "big" for e in some.extra])
    assert 0.3 < share_big < 0.7
    assert some.accuracy > none.accuracy + 0.1  # escalated queries were the wrong ones
    agree = run(bank, "cascade:escalate=0.5,signal=agreement,k=3")
    assert agree.samples > 3 - 1e-9


def test_cascade_agreement_needs_enough_samples(bank: BankArrays) -> None:
    with pytest.raises(UisbenchError, match="needs k=9"):
        run(bank, "cascade:signal=agreement,k=9")


def test_tts_aggregators(bank: BankArrays) -> None:
    k1 = run(bank, "single:model=small")
    maj = run(bank, "majority:model=small,k=8")
    best = run(bank, "best-of-k:model=small,k=8")
    cover = run(bank, "pass-at-k:model=small,k=8")
    assert cover.upper_bound and not best.upper_bound and not maj.upper_bound
    # k = S draws every sample: coverage and best-of-k by brute force over the bank.
    small = bank.models["small"]
    right = small.correct[TEST]
    assert cover.accuracy == pytest.approx(right.any(axis=1).mean())
    top = small.logprob[TEST].argmax(axis=1)
    assert best.accuracy == pytest.approx(right[np.arange(len(TEST)), top].mean())
    assert best.accuracy > k1.accuracy + 0.1  # log-prob separates right from wrong here
    assert maj.samples == best.samples == 8


def test_adaptive_saves_samples_on_a_mixed_bank(bank: BankArrays) -> None:
    r = run(bank, "adaptive:model=big,k=8,confidence=0.9")
    maj = run(bank, "majority:model=big,k=8")
    assert r.samples < 0.7 * maj.samples
    assert r.accuracy > maj.accuracy - 0.05


def test_sherman_morrison_matches_inverse() -> None:
    rng = np.random.default_rng(1)
    A = np.eye(5)
    A_inv = np.eye(5)
    for _ in range(20):
        x = rng.standard_normal(5)
        A += np.outer(x, x)
        sherman_morrison(A_inv, x)
    np.testing.assert_allclose(A_inv, np.linalg.inv(A), atol=1e-10)


def test_uniscale_records_rewards_and_regret(bank: BankArrays) -> None:
    r = run(bank, "uniscale:cost_weight=0.3,features=hash")
    again = run(bank, "uniscale:cost_weight=0.3,features=hash")
    np.testing.assert_array_equal(r.correct, again.correct)  # deterministic per seed
    assert r.reward is not None and len(r.reward) == len(TEST)
    e = r.extra[0]
    assert {"arm", "best_fixed_reward", "oracle_reward", "unit"} <= set(e)
    assert e["unit"] == "flops"  # the values are checked by hand in test_strength.py
    # k never exceeds what the bank holds
    assert all(int(x["arm"].split("×")[1].split(":")[0]) <= S for x in r.extra)


def test_uniscale_cost_weight_trades_accuracy_for_cost(bank: BankArrays) -> None:
    free = run(bank, "uniscale:cost_weight=0,features=hash")
    thrifty = run(bank, "uniscale:cost_weight=2,features=hash")
    assert thrifty.flops < free.flops
    assert free.accuracy > thrifty.accuracy


def test_aggregators_by_name() -> None:
    nan = np.nan
    answer = np.array([[1, 2, 2, -1], [3, 1, 1, 3], [-1, -1, -1, -1], [0, 1, 2, 3]])
    logprob = np.array(
        [[-0.1, -2, -3, 0.0], [nan, nan, nan, nan], [0.0, 0.0, 0.0, 0.0], [-1, -0.5, nan, -3]]
    )
    view = SampleView(answer, logprob)
    # plurality, ties to the earliest drawn, -1 where no sample has an answer
    np.testing.assert_array_equal(AGGREGATORS["majority"](view), [1, 0, -1, 0])
    # best answered log-prob (the unanswered 0.0 does not count); no log-prob: the vote
    np.testing.assert_array_equal(AGGREGATORS["logprob"](view), [0, 0, -1, 1])


def test_simulated_majority_matches_enumeration() -> None:
    """maj@3 of answers (0, 0, 1, 1, 2), 0 correct, by hand over the C(5, 3) = 10 subsets.

    Both 0s drawn (3 subsets): right. One 0 with both 1s (2): wrong. One 0, one 1 and the 2
    (4): a three-way tie, right when the 0 was drawn first (1/3). No 0 (1): wrong.
    So maj@3 = (3 + 4/3) / 10 = 13/30.
    """
    exact = 13 / 30
    answers = [0, 0, 1, 1, 2]
    rows = 20_000
    answer = np.tile(answers, (rows, 1))
    arr = ModelArrays(
        n_avail=np.full(rows, 5),
        answer=answer,
        correct=answer == 0,
        **{
            f: np.zeros((rows, 5))
            for f in ("input_tokens", "output_tokens", "cost_usd", "latency_s", "logprob", "score")
        },
        sample_id=np.zeros((rows, 5), dtype=np.int64),
    )
    correct, _ = simulate_k(arr, 3, AGGREGATORS["majority"], np.random.default_rng(0), 1)
    sd = np.sqrt(exact * (1 - exact) / rows)
    assert abs(correct.mean() - exact) < 4 * sd


def test_t2_pass_points_are_the_unbiased_estimator(bank: BankArrays) -> None:
    arr = bank.models["small"]
    for k in (1, 3, 8):
        brute = np.mean(
            [
                np.mean([row[list(c)].any() for c in itertools.combinations(range(S), k)])
                for row in arr.correct[:20]
            ]
        )
        got = metric_at_k(bank.subset(np.arange(20)), "small", k, "pass", 0)
        assert got == pytest.approx(brute, abs=1e-12)


def test_t2_falls_back_when_sizes_are_unknown() -> None:
    th = np.array([np.log(0.2), np.log(0.9), 0.6])
    meta = {"api": {"params_active": None, "train_tokens": None}}
    pts = [("api", k, float(k_law(th, float(k)))) for k in (1, 2, 4, 8, 16)]
    fit = fit_t2(pts, meta, restarts=8, seed=0)
    assert "N or D unknown for api" in fit.kind
    assert abs(fit.predict("api", 32) - k_law(th, 32.0)) < 0.01


def test_t2_spends_within_budget(bank: BankArrays) -> None:
    lo = run(bank, "t2:budget=0.15")  # affords the small model only
    hi = run(bank, "t2:budget=5")
    e = lo.extra[0]
    assert not e["over_budget"] and lo.flops <= e["budget"] * 1.05
    assert hi.flops > lo.flops
    assert np.isfinite(e["fit_rel_error_test"]) and np.isfinite(e["fit_rel_error_train"])


def test_embedding_compute_is_charged(bank: BankArrays, monkeypatch) -> None:
    """MiniLM's 22.7M parameters cost 2·N FLOPs per token, charged to the query embedded:
    10 and 3 tokens are 4.54e8 and 1.362e8 FLOPs. The encoder is stubbed (the same on the
    base install, without MiniLM); hashing is charged nothing."""
    import uisbench.strategies.features as features

    tokens = {bank.prompts[0]: 10, bank.prompts[1]: 3, bank.prompts[2]: 7}
    monkeypatch.setattr(features, "resolve_kind", lambda kind: kind)
    monkeypatch.setattr(
        features,
        "embed",
        lambda texts, kind: (np.zeros((len(texts), 4)), np.array([tokens[t] for t in texts])),
    )
    meter = Meter(bank, seed=0)
    client = local_client(meter)
    query_features(client, np.array([1, 0]), "minilm")  # in this order: 3 tokens, then 10
    assert meter.ledger.flops[:2] == pytest.approx([4.54e8, 1.362e8], rel=1e-12)
    assert meter.ledger.arms[1] == [{"overhead": "embed:minilm"}]
    query_features(client, np.array([2]), "hash")
    assert meter.ledger.flops[2] == 0.0 and meter.ledger.arms[2] == [{"overhead": "embed:hash"}]


def test_context_sizes() -> None:
    b = make_bank()
    ctx = RunContext(meter=local_client(Meter(b, 0)), stream=TEST, train=b.subset(TRAIN), seed=0)
    assert ctx.max_samples("small") == S
