"""Quality bars of issue 4 on the real banks in ../shared/data/banks (skipped without them).

Routers here use the hashed bag-of-words features so the test does not depend on the
MiniLM embedding cache (embedding every prompt on a CPU takes minutes the first time);
``bench/strategies_sweep.py`` checks the same bars with MiniLM. Two seeds per configuration.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from uisbench.results.pareto import aiq

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "banks"
SEEDS = [0, 1]

pytestmark = pytest.mark.skipif(
    not (DATA / "mmlu-llama-ladder.jsonl").is_file() or not (DATA / "date-mot.jsonl").is_file(),
    reason="needs the real banks in ../shared/data/banks (not part of a user's clone)",
)


@pytest.fixture(scope="module")
def runners(tmp_path_factory):
    from uisbench.runner import Runner
    from uisbench.store.bank import import_file
    from uisbench.store.engine import open_engine

    db = tmp_path_factory.mktemp("real") / "real.db"
    engine = open_engine(f"sqlite:///{db}")
    out = {}
    for bank, task in (("mmlu-llama-ladder", "mmlu"), ("date-mot", "date-understanding")):
        import_file(engine, DATA / f"{bank}.jsonl", DATA / f"{bank}.models.json")
        out[bank] = Runner(engine, task, bank)
    return out


def mean_run(runner, spec: str) -> tuple[float, float]:
    from uisbench.run_loop import replay_seeds_in_memory

    r = replay_seeds_in_memory(runner.arrays, runner.train, runner.test_pos, spec, SEEDS)
    return r.accuracy, r.dollars


WTPS = ("inf", 50, 20, 10, 3.3, 1, 0.1)  # willingness to pay: quality only … cheapest model
ROUTING_MMLU = [f"lr-router:wtp={x},features=hash" for x in WTPS] + [
    f"cascade:escalate={x},skip=3" for x in (0.1, 0.3, 0.5)
]


def test_mmlu_routing_aiq_beats_single_model_hull(runners) -> None:
    r = runners["mmlu-llama-ladder"]
    singles = np.array([mean_run(r, f"single:model={m}") for m in r.models])
    routing = np.array([mean_run(r, s) for s in ROUTING_MMLU])
    lo = min(singles[:, 1].min(), routing[:, 1].min())
    hi = max(singles[:, 1].max(), routing[:, 1].max())
    a_route = aiq(routing[:, 1], routing[:, 0], lo, hi)
    a_single = aiq(singles[:, 1], singles[:, 0], lo, hi)
    assert a_route > a_single, (a_route, a_single)


@pytest.mark.xfail(
    strict=True,
    reason="measured: the cheapest routing configuration within 1 point of Llama-3.1-405B "
    "(cascade 70B→405B, escalate=0.3: 0.847 vs 0.852) costs 60.3% of its dollars, not <= 60%",
)
def test_mmlu_routing_matches_405b_at_60_percent_cost(runners) -> None:
    r = runners["mmlu-llama-ladder"]
    big_acc, big_cost = mean_run(r, "single:model=llama3.1-405b")
    best = min(
        (c for a, c in (mean_run(r, s) for s in ROUTING_MMLU) if a >= big_acc - 0.01),
        default=np.inf,
    )
    assert best <= 0.6 * big_cost, best / big_cost


def test_date_majority_vote_beats_k1(runners) -> None:
    r = runners["date-mot"]
    k1, _ = mean_run(r, "single:model=llama-2-13b")
    k16, _ = mean_run(r, "majority:model=llama-2-13b,k=16")
    assert k16 > k1 + 0.03, (k1, k16)


def budget_gains(runner, specs: list[str]) -> tuple[dict, pd.DataFrame, pd.Series]:
    """The configurations' cross-fitted accuracy minus each single model, at that model's mean
    cost: (gain, 95% paired-bootstrap interval) per single model (NaN where they cannot spend
    that little), from per-query accuracy averaged over ``SEEDS``; with that per-query table
    and the mean costs."""
    from uisbench.results.budget import budget_table
    from uisbench.run_loop import replay_seeds_in_memory
    from uisbench.strategies.costing import all_sizes_known

    unit = "flops" if all_sizes_known(runner.arrays.model_meta) else "dollars"
    singles = [f"single:model={m}" for m in runner.models]
    runs = {
        s: replay_seeds_in_memory(runner.arrays, runner.train, runner.test_pos, s, SEEDS)
        for s in singles + specs
    }
    table = pd.DataFrame({s: pd.Series(x.correct, index=x.q) for s, x in runs.items()}).T
    cost = pd.Series({s: getattr(x, unit) for s, x in runs.items()})
    t = budget_table(table, cost, {"family": specs}, singles)
    gains = {
        row.budget_of.split("=")[1]: (row.gain, row.gain_low, row.gain_high)
        for row in t.itertuples()
    }
    return gains, table, cost


def uniscale_specs() -> list[str]:
    from uisbench.strategies.uniscale import COST_WEIGHTS

    return [f"uniscale:cost_weight={w},features=hash" for w in COST_WEIGHTS]


@pytest.fixture(scope="module")
def uniscale_gains(runners) -> dict[str, tuple[dict, pd.DataFrame, pd.Series]]:
    return {bank: budget_gains(r, uniscale_specs()) for bank, r in runners.items()}


# Measured with hashed-word features and SEEDS (bench/RESULTS.md has the MiniLM figures).
SHORT_OF_HULL = {
    ("date-mot", "gpt-3.5-turbo"): "measured −0.106 [−0.161, −0.051]: no cost weight settles on "
    "GPT-3.5 alone; between Llama-2-13B and GPT-4 the bandit mixes arms by weak features",
    ("mmlu-llama-ladder", "llama3.1-8b"): "measured −0.044 [−0.070, −0.020]: under log or rank "
    "cost normalisation 8B lies below the 3B–70B chord, so no linear reward makes it the best "
    "arm (the linear-cost hull the budget comparison uses has it as a vertex)",
}
CASES = [
    ("date-mot", "gpt-4"),
    ("date-mot", "gpt-3.5-turbo"),
    ("mmlu-llama-ladder", "llama3.1-8b"),
]


@pytest.mark.parametrize(
    "bank,model",
    [
        pytest.param(*c, marks=pytest.mark.xfail(strict=True, reason=SHORT_OF_HULL[c]))
        if c in SHORT_OF_HULL
        else c
        for c in CASES
    ],
)
def test_uniscale_hull_reaches_each_single_model(uniscale_gains, bank: str, model: str) -> None:
    """UniScale at a single model's cost, chosen on other queries, is not significantly below
    that model (the paired interval of the gain reaches 0, and is an interval: a cost weight
    that plays the model itself would give [0, 0], which the next test covers instead)."""
    gain, low, high = uniscale_gains[bank][0][model]
    assert np.isfinite(gain) and high >= 0 and high > low, (gain, low, high)


def test_uniscale_plays_the_ladder_model_its_cost_weight_makes_best(uniscale_gains) -> None:
    """On mmlu's ladder (one sample per model) a cost weight that makes one arm the best
    everywhere must play it on every test query: for 1B, 3B, 70B and 405B some UniScale
    configuration's per-query correctness and mean cost are that model's exactly (8B is not a
    vertex under UniScale's cost normalisation, see SHORT_OF_HULL)."""
    _, table, cost = uniscale_gains["mmlu-llama-ladder"]
    for model in ("llama3.2-1b", "llama3.2-3b", "llama3.1-70b", "llama3.1-405b"):
        single = f"single:model={model}"
        same = [
            u
            for u in uniscale_specs()
            if np.array_equal(table.loc[u].to_numpy(), table.loc[single].to_numpy())
            and cost[u] == pytest.approx(cost[single], rel=1e-9)
        ]
        assert same, model


def test_t2_reports_fit_error_and_falls_back_on_date(runners) -> None:
    from uisbench.run_loop import replay_in_memory

    r = runners["date-mot"]
    out = replay_in_memory(r.arrays, r.train, r.test_pos, "t2:budget=0.1", 0)
    e = out.extra[0]
    assert "N or D unknown" in e["fit"] and e["unit"] == "dollars"
    # The law is fitted on the training split, so it fits there better than on test: measured
    # over split seeds 0–3, train 0.0044–0.0077 and test 0.042–0.090 (9–20× more).
    assert 0 < e["fit_rel_error_train"] < e["fit_rel_error_test"] / 3
    assert e["fit_rel_error_test"] < 0.15
    mm = runners["mmlu-llama-ladder"]
    e2 = replay_in_memory(mm.arrays, mm.train, mm.test_pos, "t2:budget=0.3", 0).extra[0]
    assert e2["fit"].startswith("T2 approach 1") and e2["unit"] == "flops"


def test_uniscale_through_the_runner_writes_rewards_and_regret(runners) -> None:
    from sqlalchemy import select

    from uisbench.store import schema

    r = runners["date-mot"]
    res = r.run("uniscale:cost_weight=0.3,features=hash", 0)
    assert res.n_queries == len(r.test_pos) and not res.skipped
    with r.engine.connect() as conn:
        rows = conn.execute(
            select(schema.decisions.c.reward, schema.decisions.c.extra, schema.decisions.c.position)
            .where(schema.decisions.c.run_id == res.run_id)
            .order_by(schema.decisions.c.position)
        ).all()
    assert len(rows) == len(r.test_pos)
    assert all(x.reward is not None for x in rows)
    assert {"arm", "best_fixed_reward", "oracle_reward"} <= set(rows[0].extra)
    assert rows[0].extra["unit"] == "dollars"  # GPT sizes are unknown: cost in dollars


def test_t2_choice_differs_from_best_on_train_and_extrapolation_is_reported(runners) -> None:
    from uisbench.run_loop import replay_in_memory
    from uisbench.strategies.base import make_strategy

    r = runners["date-mot"]
    differs, extrapolation = [], None
    for params in make_strategy("t2").sweep(r.models, r.max_k()):
        s = make_strategy(f"t2:budget={params['budget']}")
        replay_in_memory(r.arrays, r.train, r.test_pos, s, 0)
        differs.append(s.run_summary()["law_differs"])
        extrapolation = s.run_summary()["extrapolation"]
    assert any(differs)  # the law adds something the plain best-on-train choice does not
    err = extrapolation["without_largest_k"]["rel_error"]
    assert 0 < err < 0.03, err  # measured 0.0020–0.0101 over split seeds 0–3
