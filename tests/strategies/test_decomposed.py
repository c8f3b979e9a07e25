"""The decomposed strategy: one sample of a ``MODEL@decomposed`` variant, charged by the meter."""

from __future__ import annotations

import numpy as np
import pytest

from uisbench.errors import UisbenchError
from uisbench.run_loop import replay_in_memory
from uisbench.store.arrays import BankArrays, ModelArrays
from uisbench.strategies.base import STRATEGIES
from uisbench.strategies.decomposed import variant_name

Q, S = 20, 2
TRAIN, TEST = np.arange(5), np.arange(5, Q)


def model(correct: np.ndarray) -> ModelArrays:
    full = lambda v: np.full((Q, S), v, dtype=float)  # noqa: E731
    return ModelArrays(
        n_avail=np.full(Q, S),
        answer=np.where(correct, 0, 1).astype(np.int64),
        correct=correct,
        input_tokens=full(10.0),
        output_tokens=full(5.0),
        cost_usd=full(np.nan),
        latency_s=full(0.5),
        logprob=full(-1.0),
        score=full(np.nan),
        sample_id=np.arange(Q * S).reshape(Q, S),
    )


def make_bank(with_variant: bool) -> BankArrays:
    rng = np.random.default_rng(0)
    models = {"m": model(rng.random((Q, S)) < 0.6)}
    meta = {"m": {"params_total": 1e8, "params_active": 1e8}}
    if with_variant:
        # the same outcome for every sample of a query: the accuracy is known exactly
        models[variant_name("m")] = model(np.repeat(rng.random((Q, 1)) < 0.3, S, axis=1))
        meta[variant_name("m")] = {"params_total": 1e8, "params_active": 4e7}
    return BankArrays(
        bank="unit",
        bank_id=1,
        synthetic=True,
        query_ids=np.arange(Q, dtype=np.int64),
        query_keys=[f"q{i}" for i in range(Q)],
        splits=np.array(["train"] * len(TRAIN) + ["test"] * len(TEST), dtype=object),
        models=models,
        model_meta=meta,
        answer_labels=np.array(["A", "B"], dtype=object),
        prompts=[f"q{i}" for i in range(Q)],
    )


def test_sweep_is_empty_without_a_variant() -> None:
    cls = STRATEGIES.get("decomposed")
    assert cls.family == "decomposed"
    assert cls.sweep(["m", "gemma"], {"m": 8, "gemma": 8}) == []
    assert cls.sweep(["m", "m@decomposed"], {}) == [{"model": "m@decomposed"}]


def test_runs_the_variant_through_the_meter() -> None:
    bank = make_bank(True)
    out = replay_in_memory(bank, bank.subset(TRAIN), TEST, "decomposed:model=m@decomposed", 0)
    dense = replay_in_memory(bank, bank.subset(TRAIN), TEST, "single:model=m", 0)
    variant = bank.models["m@decomposed"]
    assert out.samples == 1
    assert out.accuracy == pytest.approx(variant.correct[TEST, 0].mean())
    assert 0 < out.accuracy < 1
    # FLOPs 2·N_active·(10 prompt + 5 generated tokens) per query
    assert out.flops == pytest.approx(2 * 4e7 * 15)
    assert dense.flops == pytest.approx(2 * 1e8 * 15)


def test_refuses_a_model_that_is_not_a_variant() -> None:
    bank = make_bank(True)
    with pytest.raises(UisbenchError, match="not one"):
        replay_in_memory(bank, bank.subset(TRAIN), TEST, "decomposed:model=m", 0)
