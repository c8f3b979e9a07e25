"""Quality bars of issue 4 on the real banks in ../shared/data/banks (skipped without them).

Routers here use the hashed bag-of-words features so the test does not depend on the
MiniLM embedding cache (embedding every prompt on a CPU takes minutes the first time);
``bench/strategies_sweep.py`` checks the same bars with MiniLM. Two seeds per configuration.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
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
    from uisbench.replay import replay_seeds

    r = replay_seeds(runner.arrays, runner.train, runner.test_pos, spec, SEEDS)
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


def _dominated(points: np.ndarray, other: np.ndarray) -> bool:
    """Every (accuracy, cost) point beaten weakly in both and strictly in one by ``other``."""
    for acc, cost in points:
        beaten = (other[:, 1] <= cost) & (other[:, 0] >= acc)
        beaten &= (other[:, 1] < cost) | (other[:, 0] > acc)
        if not beaten.any():
            return False
    return True


def test_date_uniscale_front_not_dominated(runners) -> None:
    r = runners["date-mot"]
    uni = np.array(
        [mean_run(r, f"uniscale:cost_weight={w},features=hash") for w in (0.0, 0.1, 0.3, 1.0)]
    )
    routing = np.array(
        [mean_run(r, f"lr-router:wtp={x},features=hash") for x in ("inf", 20, 3.3, 1, 0.33)]
        + [mean_run(r, f"cascade:escalate={x},skip=1") for x in (0.1, 0.3, 0.5)]
    )
    tts = np.array(
        [mean_run(r, f"majority:model=llama-2-13b,k={k}") for k in (2, 4, 8, 16)]
        + [mean_run(r, f"majority:model=gpt-3.5-turbo,k={k}") for k in (2, 4, 8, 16)]
        + [mean_run(r, "majority:model=gpt-4,k=2")]
        + [mean_run(r, f"adaptive:model={m},k=16") for m in ("llama-2-13b", "gpt-3.5-turbo")]
    )
    assert not _dominated(uni, routing)
    assert not _dominated(uni, tts)


def test_t2_reports_fit_error_and_falls_back_on_date(runners) -> None:
    from uisbench.replay import replay

    r = runners["date-mot"]
    out = replay(r.arrays, r.train, r.test_pos, "t2:budget=0.1", 0)
    e = out.extra[0]
    assert "N or D unknown" in e["fit"] and e["unit"] == "dollars"
    assert 0 <= e["fit_rel_error_test"] < 0.5
    mm = runners["mmlu-llama-ladder"]
    e2 = replay(mm.arrays, mm.train, mm.test_pos, "t2:budget=0.3", 0).extra[0]
    assert e2["fit"].startswith("T2 approach 1") and e2["unit"] == "flops"


def test_uniscale_through_the_runner_writes_rewards_and_regret(runners) -> None:
    from sqlalchemy import select

    from uisbench.store import schema as s

    r = runners["date-mot"]
    res = r.run("uniscale:cost_weight=0.3,features=hash", 0)
    assert res.n_queries == len(r.test_pos) and not res.skipped
    with r.engine.connect() as conn:
        rows = conn.execute(
            select(s.decisions.c.reward, s.decisions.c.extra, s.decisions.c.position)
            .where(s.decisions.c.run_id == res.run_id)
            .order_by(s.decisions.c.position)
        ).all()
    assert len(rows) == len(r.test_pos)
    assert all(x.reward is not None for x in rows)
    assert {"arm", "best_fixed_reward", "oracle_reward"} <= set(rows[0].extra)
    assert rows[0].extra["unit"] == "dollars"  # GPT sizes are unknown: cost in dollars
