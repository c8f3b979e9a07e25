"""One cost convention for every unit: four units computed by hand for a repeated request and a
cascade, under each prefix-cache setting."""

from __future__ import annotations

import numpy as np
import pytest

from tests.fakes import write_jsonl
from uisbench.costs import PrefixCache
from uisbench.errors import UisbenchError
from uisbench.meter import Meter
from uisbench.store.arrays import BankArrays, ModelArrays
from uisbench.strategies.costing import cost_unit, expected_cost

S = 4  # samples held per (query, model); every sample of a model is alike, so order is moot


def model(out: float, cost: float, latency: float, prompt: float = 40.0) -> ModelArrays:
    full = lambda v: np.full((1, S), v, dtype=float)  # noqa: E731
    return ModelArrays(
        n_avail=np.array([S], dtype=np.int32),
        answer=np.zeros((1, S), dtype=np.int32),
        correct=np.ones((1, S), dtype=bool),
        input_tokens=full(prompt),
        output_tokens=full(out),
        cost_usd=full(cost),
        latency_s=full(latency),
        logprob=full(np.nan),
        score=full(np.nan),
        sample_id=np.arange(S).reshape(1, S),
    )


def bank(tokens: bool = True) -> BankArrays:
    """Model a (1e9 params, priced, with a cached-input price) and b (2e9, recorded cost only:
    $0.0064 per sample of 40 + 24 tokens, i.e. an implied $1e-4 per token)."""
    a, b = model(10, np.nan, 1.0), model(24, 0.0064, 2.0)
    if not tokens:
        for m in (a, b):
            m.input_tokens[:] = m.output_tokens[:] = m.cost_usd[:] = m.latency_s[:] = np.nan
    return BankArrays(
        bank="hand",
        bank_id=1,
        synthetic=True,
        query_ids=np.array([0]),
        query_keys=["q0"],
        splits=np.array(["test"], dtype=object),
        models={"a": a, "b": b},
        model_meta={
            "a": {
                "params_active": 1e9,
                "price_in_per_mtok": 1.0,
                "price_out_per_mtok": 2.0,
                "price_cached_in_per_mtok": 0.5,
            },
            "b": {"params_active": 2e9},
        },
        answer_labels=np.array(["x"], dtype=object),
    )


# Per setting: prompt tokens found cached on a repeat (a, b), then per-request hand figures.
# Requests: a×2, a×1 (repeat), b×1 (escalation: full prompt), b×1 (repeat).
HAND = {
    "none": 0,
    "block:16": 32,  # ⌊(40 − 1)/16⌋·16
    "full": 40,
}


def expected(setting: str) -> dict[str, float]:
    c = HAND[setting]
    tokens_in = 40 + (40 - c) + 40 + (40 - c)
    tokens_out = 2 * 10 + 10 + 24 + 24
    flops = (
        2 * 1e9 * (40 + 20)  # a: prompt once, two samples
        + 2 * 1e9 * (40 - c + 10)  # a again: the uncached tail only
        + 2 * 2e9 * (40 + 24)  # b: another model pays its full prompt
        + 2 * 2e9 * (40 - c + 24)
    )
    dollars = (
        (1.0 * 40 + 2.0 * 20) / 1e6
        + (1.0 * (40 - c) + 0.5 * c + 2.0 * 10) / 1e6  # cached prefix at the cached price
        + 1e-4 * (40 + 24)
        + 1e-4 * (40 + 24)  # no cached price listed: the cached prefix at the implied price
    )
    latency = 1.0 + 1.0 * (1 - c / 50) + 2.0 + 2.0 * (1 - c / 64)
    return {
        "input_tokens": tokens_in,
        "output_tokens": tokens_out,
        "flops": flops,
        "dollars": dollars,
        "latency_s": latency,
        "param_calls": 3 * 1e9 + 2 * 2e9,
    }


@pytest.mark.parametrize("setting", list(HAND))
def test_every_unit_follows_the_request_and_cache_rules(setting):
    m = Meter(bank(), seed=0, prefix_cache=setting)
    q = np.array([0])
    m.draw("a", q, 2)
    m.draw("a", q, 1)
    m.draw("b", q, 1)
    m.draw("b", q, 1)
    for unit, value in expected(setting).items():
        assert getattr(m.ledger, unit)[0] == pytest.approx(value, rel=1e-12), unit


def test_prefix_cache_settings():
    assert PrefixCache.parse(None) == PrefixCache("block", 16)
    assert str(PrefixCache.parse("block:8")) == "block:8"
    # ⌊(p − 1)/8⌋·8: a prompt of exactly one block still recomputes its last token
    cached = PrefixCache.parse("block:8").cached(np.array([7.0, 8.0, 9.0, 23.0, 24.0]))
    assert cached.tolist() == [0, 0, 8, 16, 16]
    assert PrefixCache.parse("full").cached(np.array([23.0])).tolist() == [23.0]
    for bad in ("block:0", "block", "half", "block:-2"):
        with pytest.raises(UisbenchError, match="prefix cache"):
            PrefixCache.parse(bad)


def test_expected_cost_of_k_beyond_the_bank_charges_the_prompt_once():
    b = bank()
    # a holds 4 samples; 6 are asked: prompt once, six outputs.
    assert expected_cost(b, "a", 6, "flops") == pytest.approx(2 * 1e9 * (40 + 6 * 10))
    assert expected_cost(b, "b", 6, "dollars") == pytest.approx(1e-4 * (40 + 6 * 24))


def test_outcomes_only_bank_falls_back_to_parameter_weighted_calls():
    b = bank(tokens=False)
    assert cost_unit(b.model_meta, "auto", b) == "param_calls"
    assert cost_unit(bank().model_meta, "auto", bank()) == "flops"
    with pytest.raises(UisbenchError, match="unit=flops cannot be computed"):
        cost_unit(b.model_meta, "flops", b)
    m = Meter(b, seed=0)
    m.draw("a", np.array([0]), 3)
    assert m.ledger.param_calls[0] == 3e9 and np.isnan(m.ledger.flops[0])


def test_the_runs_prefix_cache_setting_comes_from_the_request_then_the_pool(tmp_path):
    from uisbench.job import RunRequest, prefix_cache
    from uisbench.live.pools import pool_prefix_cache

    assert pool_prefix_cache("cpu-tiny") == "block:16"
    assert prefix_cache(RunRequest()) == "block:16"
    assert prefix_cache(RunRequest(prefix_cache="FULL")) == "full"
    pool = tmp_path / "p.yaml"
    pool.write_text("name: p\nprefix_cache: none\nmodels: []\n")
    assert prefix_cache(RunRequest(live=True, pool=str(pool))) == "none"
    with pytest.raises(UisbenchError, match="bad prefix cache setting"):
        prefix_cache(RunRequest(prefix_cache="block:x"))


def test_the_prefix_cache_setting_is_part_of_a_runs_identity(tmp_path):
    import json

    from uisbench.runner import Runner, run_key
    from uisbench.store.bank import import_file
    from uisbench.store.engine import open_engine
    from uisbench.strategies.base import make_strategy

    fields = dict(split=None, prompt="p", reference=None, model="a", answer="x", correct=True)
    fields.update(input_tokens=40, output_tokens=10, cost_usd=None, latency_s=1.0, logprob=None)
    rows = [
        {"task": "t", "query_id": f"q{q}", "sample": k, **fields}
        for q in range(10)
        for k in range(4)
    ]
    bank = write_jsonl(tmp_path / "t.jsonl", rows)
    (tmp_path / "t.models.json").write_text(json.dumps({"a": {"params_b": 1.0}}))
    engine = open_engine(str(tmp_path / "r.db"))
    import_file(engine, bank, tmp_path / "t.models.json")
    strat = make_strategy("majority:model=a,k=2")
    keys = {
        run_key(Runner(engine, "t", "t", prefix_cache=p).definition(strat, 0))
        for p in ("none", "block:16", "full", None)
    }
    assert len(keys) == 3  # None is block:16
