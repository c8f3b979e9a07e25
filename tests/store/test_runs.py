"""The run's rows (store/runs.py): the schema 4 -> 5 upgrade that drops ``runs.mode``."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import inspect

from tests.fakes import FakeBank, FakeModel
from uisbench.errors import UisbenchError
from uisbench.runner import Runner
from uisbench.store.bank import import_file
from uisbench.store.engine import open_engine

BANK = FakeBank(
    models=(FakeModel("m-a", 0.4, samples=4), FakeModel("m-b", 0.7, samples=4)), queries=30
)
SPEC = "majority:model=m-b,k=3"


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "r.db")
    return request.getfixturevalue("postgres_db")


def _version(engine) -> str:
    with engine.connect() as conn:
        return conn.exec_driver_sql(
            "SELECT value FROM uisbench_meta WHERE key = 'schema_version'"
        ).scalar()


def _decisions(engine) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.exec_driver_sql("SELECT * FROM decisions ORDER BY id")]


def test_schema_4_is_upgraded_by_a_writer_and_refused_by_a_reader(url, tmp_path):
    engine = open_engine(url)
    bank = import_file(engine, BANK.write(tmp_path)).bank
    first = Runner(engine, BANK.task, bank).run(SPEC)
    rows = _decisions(engine)
    with engine.begin() as conn:  # the database as schema 4 wrote it
        conn.exec_driver_sql("ALTER TABLE runs ADD COLUMN mode VARCHAR(16) NOT NULL DEFAULT 'x'")
        conn.exec_driver_sql("UPDATE runs SET mode = 'replay'")
        conn.exec_driver_sql("UPDATE uisbench_meta SET value = '4' WHERE key = 'schema_version'")
    engine.dispose()
    with pytest.raises(UisbenchError, match=r"^database schema version 4 has a runs\.mode") as exc:
        open_engine(url, create=False)
    assert "\n" not in str(exc.value)
    engine = open_engine(url)  # a writer upgrades it in place
    assert _version(engine) == "5"
    assert "mode" not in {c["name"] for c in inspect(engine).get_columns("runs")}
    again = Runner(engine, BANK.task, bank).run(SPEC)  # same key: found complete, not run again
    assert again.skipped and again.run_id == first.run_id and again.accuracy == first.accuracy
    assert _decisions(engine) == rows
    engine.dispose()
    assert _version(open_engine(url, create=False)) == "5"  # and a reader opens it now


def _rows_of(engine, run_id: int) -> list[tuple]:
    with engine.connect() as conn:
        return [
            tuple(r)
            for r in conn.exec_driver_sql(
                "SELECT query_id, position, arms, samples_used, answer, correct, input_tokens, "
                "output_tokens, flops, dollars, latency_s, param_calls, reward, extra "
                f"FROM decisions WHERE run_id = {int(run_id)} ORDER BY query_id"
            )
        ]


def test_a_run_closed_whole_stores_what_a_run_written_in_batches_stores(url, tmp_path, monkeypatch):
    """A run whose rows all come with its close merges its evaluation figures into them and
    counts its accuracy before inserting; one whose rows were committed in batches merges and
    counts in the database. Both store the same rows and the same accuracy, in both dialects."""
    import uisbench.runner as runner_module
    import uisbench.strategies.uniscale as uniscale

    engine = open_engine(url)
    import_file(engine, BANK.write(tmp_path), tmp_path / "toy.models.json")
    monkeypatch.setattr(uniscale, "CHUNK", 4)  # several chunks, so batches can be committed
    spec = "uniscale:features=hash"
    results, rows = [], []
    for flush_s in (0.0, 1e9):  # a commit after every chunk; all rows in the close
        monkeypatch.setattr(runner_module, "FLUSH_S", flush_s)
        res = Runner(engine, "toy", "toy").run(spec, 0, force=True)
        results.append(res)
        rows.append(_rows_of(engine, res.run_id))
    assert rows[0] == rows[1]
    assert results[0].accuracy == results[1].accuracy
    extras = [json.loads(r[-1]) if isinstance(r[-1], str) else r[-1] for r in rows[1]]
    assert all("best_fixed_reward" in e for e in extras)  # the figures, in every row
    correct = [bool(r[5]) for r in rows[1]]
    assert results[1].accuracy == sum(correct) / len(correct)


def test_runs_opened_together_find_what_each_opened_alone_finds(url, tmp_path):
    """``uisbench run --jobs`` opens a batch's runs at once: complete, part-written and new
    runs are found as one by one, a run asked for twice is one run, and new runs get ids in
    the order asked (the order one process gives them)."""
    import dataclasses

    from uisbench.store import runs

    engine = open_engine(url)
    bank = import_file(engine, BANK.write(tmp_path)).bank
    runner = Runner(engine, BANK.task, bank)
    done = runner.run(SPEC, seed=0)
    strat = runner.describe(SPEC)
    params = dataclasses.asdict(strat.params)
    first = runner.open_runs([(strat, params, s) for s in (0, 1, 2, 3, 1)])
    assert [r.complete for r in first] == [True, False, False, False, False]
    assert first[0].id == done.run_id
    assert done.run_id < first[1].id < first[2].id < first[3].id and first[4].id == first[1].id
    assert all(not r.decided for r in first)
    with engine.connect() as conn:  # seed 1 stopped after five decisions
        some = conn.exec_driver_sql(
            f"SELECT {', '.join(runs.DECISION_COLUMNS)} FROM decisions WHERE run_id = "
            f"{done.run_id} ORDER BY position LIMIT 5"
        ).all()
    as_text = [  # JSON columns as the runner writes them (PostgreSQL reads them back decoded)
        tuple(
            v if isinstance(v, str) or v is None or c not in ("arms", "extra") else json.dumps(v)
            for c, v in zip(runs.DECISION_COLUMNS, r)
        )
        for r in some
    ]
    first[1].write(as_text)
    together = runner.open_runs([(strat, params, s) for s in (2, 0, 1)])
    alone = [runner.open_run(strat, params, s) for s in (2, 0, 1)]
    for a, b in zip(together, alone):
        assert (a.key, a.id, a.complete, a.decided) == (b.key, b.id, b.complete, b.decided)
    assert together[2].decided == {r[0] for r in some} and len(some) == 5
    assert not together[0].decided
    engine.dispose()
