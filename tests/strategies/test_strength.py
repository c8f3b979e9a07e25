"""Issue 15's checks against hand-computed or brute-force values: UniScale's rewards and regret
references, its cost normalisations and settings chosen on train, adaptive sampling's charged
FLOPs, T2's candidate k, warnings, amortised training compute and law recovery at points the
fit never saw, and the threshold router's pair."""

from __future__ import annotations

import numpy as np
import pytest

from tests.fakes import FakeBank, FakeModel
from uisbench.run_loop import arrival_order, replay_in_memory
from uisbench.store.arrays import BankArrays
from uisbench.strategies.base import make_strategy
from uisbench.strategies.t2 import candidate_ks, fit_t2, law
from uisbench.strategies.uniscale_tuning import normalised_cost, one_se_choice

PROMPT, OUT = 50.0, 20.0
SIZE = {"small": 1e9, "big": 1e10}


def tiny_bank(q: int = 40, s: int = 1, seed: int = 0, unanimous: bool = False) -> BankArrays:
    """Two models, constant token counts (so every request's FLOPs are known by hand); the first
    half of the queries is the training split."""
    acc = {"small": 0.4, "big": 0.8}
    models = [
        FakeModel(m, 1.0 if unanimous else acc[m], samples=s, params_b=SIZE[m] / 1e9) for m in acc
    ]
    return FakeBank(
        models=models,
        queries=q,
        seed=seed,
        train=q // 2,
        input_tokens=int(PROMPT),
        output_tokens=(int(OUT), int(OUT) + 1),
        prompt=lambda i: f"question {i} about topic {i % 3}",
    ).arrays()


def test_uniscale_rewards_and_regret_references_by_hand() -> None:
    b = tiny_bank()
    train, test = np.arange(20), np.arange(20, 40)
    r = replay_in_memory(
        b, b.subset(train), test, "uniscale:cost_weight=0.5,norm=linear,max_k=1,features=hash"
    )
    # k = 1 arms: cost = 2·N·(prompt + output); linear norm by the dearest arm (big).
    cost = {m: 2 * n * (PROMPT + OUT) for m, n in SIZE.items()}
    R = {m: b.models[m].correct[:, 0] + 0.5 * (1 - cost[m] / cost["big"]) for m in SIZE}
    order = arrival_order(test, 0)
    arms = [e["arm"].split("×")[0] for e in r.extra]
    np.testing.assert_allclose(r.reward, [R[m][q] for m, q in zip(arms, order)], atol=1e-12)
    best = max(SIZE, key=lambda m: R[m][test].sum())
    np.testing.assert_allclose([e["best_fixed_reward"] for e in r.extra], R[best][order])
    oracle = np.maximum(R["small"], R["big"])[order]
    np.testing.assert_allclose([e["oracle_reward"] for e in r.extra], oracle)


def test_cost_normalisations_by_hand() -> None:
    arm_cost = np.array([1.0, 10.0, 100.0, 1000.0])
    c = np.array([1.0, 10.0, 31.6227766, 1000.0, 5000.0])
    np.testing.assert_allclose(
        normalised_cost(c, arm_cost, "linear"), [0.001, 0.01, 0.0316227766, 1, 1]
    )
    np.testing.assert_allclose(
        normalised_cost(c, arm_cost, "log"), [0, 1 / 3, 0.5, 1, 1], atol=1e-9
    )
    # rank: arms at 0, 1/3, 2/3, 1; √10·10 lies halfway (in log) between ranks 1/3 and 2/3
    np.testing.assert_allclose(
        normalised_cost(c, arm_cost, "rank"), [0, 1 / 3, 0.5, 1, 1], atol=1e-9
    )


def test_one_standard_error_rule_prefers_the_simpler_setting() -> None:
    rng = np.random.default_rng(0)
    base = rng.random(400)
    close = {(0.5, 0): base, (0.5, 8): base + 0.001 + 0.05 * rng.standard_normal(400)}
    assert one_se_choice(close) == (0.5, 0)  # within one SE: the simpler wins
    far = {(0.5, 0): base, (0.5, 8): base + 0.2}
    assert one_se_choice(far) == (0.5, 8)


def test_uniscale_settings_chosen_on_train_and_reported() -> None:
    b = tiny_bank(q=80)
    s = make_strategy("uniscale:cost_weight=0.2,max_k=1,features=hash")
    replay_in_memory(b, b.subset(np.arange(40)), np.arange(40, 80), s)
    summary = s.run_summary()
    settings = summary["settings"]
    assert settings["norm"] in ("linear", "log", "rank") and "norm_area" in settings
    assert summary["pulls"] and sum(summary["pulls"].values()) == 40
    curve = summary["learning_curve"]
    assert curve["queries"][-1] == 40 and len(curve["accuracy"]) == len(curve["queries"])


def test_adaptive_charges_each_request_its_uncached_prompt_tail() -> None:
    b = tiny_bank(q=40, s=8, unanimous=True)
    r = replay_in_memory(
        b, b.subset(np.arange(20)), np.arange(20, 40), "adaptive:model=small,k=8,confidence=0.95"
    )
    # Unanimous votes decide at v = 4 samples, drawn one request at a time. The first request
    # pays the 50-token prompt; each later one finds 48 of them in the prefix cache (vLLM's
    # 16-token blocks) and pays 2; every sample pays its 20 output tokens.
    assert {e["samples"] for e in r.extra} == {4}
    assert r.flops == pytest.approx(2 * SIZE["small"] * (PROMPT + 3 * 2 + 4 * OUT), rel=1e-12)


def test_t2_candidate_ks() -> None:
    assert candidate_ks(16, "pass") == [1, 2, 4, 8, 16]
    assert candidate_ks(16, "maj") == [1, 3, 5, 9, 15]
    assert candidate_ks(19, "maj") == [1, 3, 5, 9, 17, 19]
    assert candidate_ks(1, "maj") == [1]


def test_t2_law_recovered_at_a_held_out_k_and_model() -> None:
    theta = np.array([np.log(0.05), np.log(2.0), np.log(0.5), np.log(0.8), 0.5, 0.3, 0.7])
    sizes = {"m1": 1.0, "m2": 3.0, "m3": 8.0, "m4": 30.0, "m5": 2.0, "m6": 70.0}
    toks = {"m1": 1.0, "m2": 4.0, "m3": 2.0, "m4": 10.0, "m5": 8.0, "m6": 2.0}
    meta = {m: {"params_active": sizes[m] * 1e9, "train_tokens": toks[m] * 1e12} for m in sizes}

    def truth(m: str, k: int) -> float:
        return float(law(theta, sizes[m], toks[m], float(k)))

    # m3 and k = 16, 32 are never fitted: the law must predict them
    seen = [(m, k, truth(m, k)) for m in sizes if m != "m3" for k in (1, 2, 4, 8)]
    fit = fit_t2(seen, meta, restarts=32, seed=0)
    assert not fit.warnings
    for m, k in [("m1", 32), ("m4", 16), ("m3", 1), ("m3", 8), ("m3", 32)]:
        assert fit.predict(m, k) == pytest.approx(truth(m, k), rel=0.02), (m, k)


def test_t2_warns_when_the_law_is_not_determined() -> None:
    meta = {m: {"params_active": n * 1e9, "train_tokens": 1e12} for m, n in (("a", 1), ("b", 3))}
    pts = [("a", 1, 1.0), ("b", 1, 0.7)]
    warnings = fit_t2(pts, meta, restarts=4, seed=0).warnings
    assert any("2 (model, k) points for 7" in w for w in warnings)
    assert any("a single k" in w for w in warnings)


def test_t2_amortised_training_compute_and_best_on_train() -> None:
    b = tiny_bank(q=80, s=4)
    train, test = b.subset(np.arange(40)), np.arange(40, 80)
    s = make_strategy("t2:budget=1,served=1e9,metric=pass")
    replay_in_memory(b, train, test, s)
    infer = 2 * SIZE["small"] * (PROMPT + OUT)  # one sample of small
    amortised = 6 * SIZE["small"] * 1e12 / 1e9
    costs = {(m, k): c for m, k, c in s.candidates}
    assert costs["small", 1] == pytest.approx(infer + amortised, rel=1e-9)
    # budget = 1 × big's one-sample inference cost (2e10·70 = 1.4e12) < big's amortised 6e13:
    # only small fits, so the law and the plain best-on-train must both pick small
    summary = s.run_summary()
    assert summary["model"] == "small" and summary["best_on_train"].startswith("small×")
    assert "extrapolation" in summary and "warnings" in summary
