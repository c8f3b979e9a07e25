"""Fits are cached by content for one runner or replay call, never by a bank's name.

Two banks with the same name and query ids but other samples used to share the first bank's
fits in one process (eight module-level caches keyed by name and ids).
"""

from __future__ import annotations

import dataclasses
import uuid

import numpy as np
import pytest

from tests.fakes import FakeBank, FakeModel
from uisbench.fitcache import FitCache
from uisbench.run_loop import replay_in_memory
from uisbench.store.arrays import BankArrays

MODELS = tuple(
    FakeModel(m, acc, 4, n, t, price_in_per_mtok=n / 10, price_out_per_mtok=n / 5)
    for m, acc, n, t in (("s", 0.35, 1.0, 1.0), ("m", 0.55, 3.0, 2.0), ("l", 0.8, 10.0, 3.0))
)
TRAIN = 24


def bank(seed: int, name: str) -> BankArrays:
    fake = FakeBank(models=MODELS, queries=72, seed=seed, train=TRAIN, task="same")
    return dataclasses.replace(fake.arrays(), bank=name)


def run(b: BankArrays, spec: str, cache: FitCache | None = None):
    test = np.arange(TRAIN, b.n_queries)
    r = replay_in_memory(b, b.subset(np.arange(TRAIN)), test, spec, seed=0, cache=cache)
    return repr((r.accuracy, r.dollars, r.extra))  # repr: NaN figures compare equal


SPECS = [
    "t2:budget=0.3",
    "t2:budget=0.3,approach=2",
    "frugal-cascade:budget=0.3",
    "mf-router:features=hash,steps=60",
    "threshold-router:features=hash",
    "lr-router:features=hash",
    "uniscale:features=hash,max_k=2",
]


@pytest.mark.parametrize("spec", SPECS)
def test_same_name_and_ids_other_samples_get_their_own_fit(spec):
    unique = f"ref-{uuid.uuid4().hex}"  # a name no cache can have seen
    expected = run(bank(1, unique), spec)
    run(bank(0, "same"), spec)  # the first bank of that name fitted in this process
    assert run(bank(1, "same"), spec) == expected


def test_a_cache_is_shared_within_its_owner_and_keyed_by_content():
    cache = FitCache()
    a, b = bank(0, "same"), bank(1, "same")
    run(a, "t2:budget=0.3", cache)
    n = len(cache)
    assert n > 0
    run(a, "t2:budget=0.5", cache)  # a budget sweep reuses the fitted law
    assert len(cache) == n
    run(b, "t2:budget=0.5", cache)  # other samples: other fits
    assert len(cache) > n
    assert cache.digest(a) != cache.digest(b)
    assert cache.digest(a) == cache.digest(bank(0, "other name"))


@pytest.mark.parametrize(
    ("sweep", "fits"),
    [
        # one logistic model per model of the pool, whatever the willingness to pay
        (["lr-router:features=hash,wtp=1", "lr-router:features=hash,wtp=30"], 3),
        # five out-of-fold classifiers of the chosen pair, whatever the share (one seed)
        (
            [
                "threshold-router:features=hash,pair=extremes,share=0.3",
                "threshold-router:features=hash,pair=extremes,share=0.7",
            ],
            5,
        ),
    ],
)
def test_a_router_sweep_fits_its_classifiers_once(sweep, fits, monkeypatch):
    import uisbench.strategies.routing as routing

    calls = []
    real = routing.fit_logistic
    monkeypatch.setattr(routing, "fit_logistic", lambda *a, **k: calls.append(1) or real(*a, **k))
    cache, b = FitCache(), bank(0, "same")
    alone = [run(b, spec) for spec in sweep]  # each with a fresh cache
    calls.clear()
    assert [run(b, spec, cache) for spec in sweep] == alone
    assert len(calls) == fits


def test_strategies_keep_no_module_level_cache():
    import uisbench.strategies.frugal as frugal
    import uisbench.strategies.mf_router as mf
    import uisbench.strategies.routing as routing
    import uisbench.strategies.t2 as t2
    import uisbench.strategies.uniscale as uniscale

    names = {"_PAIRS", "_FITS", "_PLANS", "_POINTS", "_SIM", "_PCA", "_NORMS", "_ALPHA_DIM"}
    for module in (frugal, mf, routing, t2, uniscale):
        assert not names & set(vars(module)), module.__name__
