"""Seeded splits come from content: the same bank splits the same in any database.

A split used to be drawn with the database's autoincrement task id, so a bank imported after
another task's bank split differently; and runs on two split seeds were merged into one
report row over two test sets.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.fakes import FakeBank, FakeModel
from uisbench.cli import main
from uisbench.results.aggregate import summarize_db
from uisbench.runner import Runner
from uisbench.store import schema
from uisbench.store.bank import import_file
from uisbench.store.engine import open_engine
from uisbench.store.splits import TRAIN_FRACTION, seeded_split

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "banks"

TOY = FakeBank(
    models=(FakeModel("a", 0.4, samples=4, params_b=1.0), FakeModel("b", 0.8, samples=4)),
    queries=80,
)
OTHER = FakeBank(task="other", queries=30, seed=3)


def _db(tmp_path: Path, name: str, banks: list[FakeBank]):
    engine = open_engine(str(tmp_path / f"{name}.db"))
    for bank in banks:
        folder = tmp_path / f"{name}-{bank.task}"
        folder.mkdir()
        import_file(engine, bank.write(folder), folder / f"{bank.task}.models.json")
    return engine


def _by_key(runner: Runner) -> dict[str, str]:
    return dict(zip(runner.arrays.query_keys, runner.split.tolist()))


def test_split_does_not_depend_on_what_was_imported_before(tmp_path):
    alone = Runner(_db(tmp_path, "alone", [TOY]), "toy", "toy")
    after = Runner(_db(tmp_path, "after", [OTHER, TOY]), "toy", "toy")
    assert alone.task_id != after.task_id  # the database ids differ ...
    assert _by_key(alone) == _by_key(after)  # ... the split does not
    assert 0 < len(alone.train_pos) < len(alone.test_pos)


def test_split_is_a_function_of_task_key_and_seed():
    keys = [f"q{i}" for i in range(4000)]
    a = seeded_split("toy", keys, 0)
    assert (a == seeded_split("toy", keys, 0)).all()
    assert (a != seeded_split("toy", keys, 1)).any()
    assert (a != seeded_split("other", keys, 0)).any()
    assert abs((a == "train").mean() - TRAIN_FRACTION) < 0.03  # 4000 draws: sd 0.007
    # one query's side does not depend on which other queries are there
    assert (seeded_split("toy", keys[::7], 0) == a[::7]).all()


def test_runs_on_two_split_seeds_are_never_one_report_row(tmp_path):
    engine = _db(tmp_path, "seeds", [TOY])
    spec = "single:model=b"
    r0, r1 = (Runner(engine, "toy", "toy", split_seed=k) for k in (0, 1))
    assert set(r0.test_pos.tolist()) != set(r1.test_pos.tolist())
    r0.run(spec), r1.run(spec)
    rows = summarize_db(engine, include_synthetic=True)
    rows = rows[rows["config_label"] == spec]
    assert sorted(rows["bank"]) == ["toy", "toy@split=1"]
    assert sorted(rows["n_queries"]) == sorted([len(r0.test_pos), len(r1.test_pos)])


# ----------------------------------------------------------------------- the real banks
REAL = ["single:model=llama-2-13b", "majority:model=gpt-3.5-turbo,k=3", "t2:budget=0.3"]


def _real_db(tmp_path: Path, banks: list[str]) -> tuple[str, str, dict]:
    """Import ``banks`` in order, run date-mot's strategies; (db, report, T2 summaries)."""
    db = str(tmp_path / f"{'+'.join(banks)}.db")
    engine = open_engine(db)
    for bank in banks:
        import_file(engine, SHARED / f"{bank}.jsonl", SHARED / f"{bank}.models.json")
    runner = Runner(engine, "date-understanding", "date-mot")
    for spec in REAL:
        runner.run(spec, seed=0)
    with engine.connect() as conn:
        rows = (
            conn.execute(schema.runs.select().where(schema.runs.c.strategy == "t2"))
            .mappings()
            .all()
        )
    t2 = {r["config_label"]: json.dumps(r["summary"]["strategy"], sort_keys=True) for r in rows}
    return db, _report(db), t2


def _report(db: str) -> str:
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as exc:
        main(["report", "--db", db])
        raise SystemExit(0)
    assert exc.value.code == 0
    return out.getvalue()


@pytest.mark.skipif(
    not (SHARED / "date-mot.jsonl").is_file() or not (SHARED / "mmlu-llama-ladder.jsonl").is_file(),
    reason="needs the real banks in ../shared/data/banks (not part of a user's clone)",
)
def test_date_mot_alone_and_after_mmlu_read_the_same(tmp_path):
    """Same split, same report, same T2 extrapolation figures (issue 18, acceptance)."""
    _, report_alone, t2_alone = _real_db(tmp_path, ["date-mot"])
    db, report_after, t2_after = _real_db(tmp_path, ["mmlu-llama-ladder", "date-mot"])
    engine = open_engine(db)
    after = Runner(engine, "date-understanding", "date-mot")
    alone = Runner(open_engine(str(tmp_path / "date-mot.db")), "date-understanding", "date-mot")
    assert alone.task_id != after.task_id
    assert _by_key(alone) == _by_key(after)
    assert np.array_equal(alone.split, after.split)
    assert report_alone == report_after  # mmlu has no runs, so no board of its own
    assert t2_alone == t2_after and "extrapolation" in next(iter(t2_alone.values()))
