"""``uisbench run --jobs N`` and ``--executor ray``: the same rows as one process writes.

Each test runs the same configurations × seeds into two databases, one process against
workers, and compares every decision row column for column (all but the row and run ids),
matched by the run's key; the runs' labels and summaries too.
"""

from __future__ import annotations

import os
import sys

import pytest

from tests.cli.test_runner_cli import run_cli
from tests.core.test_runner import TOY
from uisbench import parallel
from uisbench.store import schema
from uisbench.store.bank import import_file
from uisbench.store.engine import open_engine

#: A few configurations of different families; ``--isolation process`` below puts every one in
#: a forked strategy child, the default keeps the shipped ones in the worker.
SPECS = (
    "majority:model=m-mid,k=4",
    "single:model=m-big",
    "random",
    "cascade",
    "lr-router",
    "uniscale",
    "oracle",
)
SEEDS = ("0", "1")


def make_db(tmp_path, name: str) -> str:
    db = str(tmp_path / f"{name}.db")
    import_file(open_engine(db), TOY.write(tmp_path), tmp_path / "toy.models.json")
    return db


def job(capsys, db: str, *extra: str) -> str:
    args = ["run", "--bank", "toy", "--no-report", "--db", db]
    for spec in SPECS:
        args += ["--strategy", spec]
    for seed in SEEDS:
        args += ["--seed", seed]
    code, _, err = run_cli(capsys, *args, *extra)
    assert code == 0, err
    return err


def rows(db: str) -> tuple[dict, dict]:
    """Decision rows (every column but ids) and run labels/summaries, by run key."""
    d, r = schema.decisions, schema.runs
    keep = [c for c in d.c if c.name not in ("id", "run_id")]
    with open_engine(db, create=False).connect() as conn:
        runs = {
            row.run_key: (row.config_label, row.status, row.summary)
            for row in conn.execute(r.select())
        }
        query = (
            d.select()
            .with_only_columns(r.c.run_key, *keep)
            .join_from(d, r, d.c.run_id == r.c.id)
            .order_by(r.c.run_key, d.c.query_id)
        )
        decided: dict[str, list] = {}
        for row in conn.execute(query):
            decided.setdefault(row[0], []).append(tuple(row[1:]))
    return runs, decided


def same_rows(a: str, b: str) -> None:
    runs_a, dec_a = rows(a)
    runs_b, dec_b = rows(b)
    assert len(runs_a) == len(SPECS) * len(SEEDS)
    assert runs_a == runs_b
    assert all(status == "complete" for _, status, _ in runs_b.values())
    assert dec_a.keys() == dec_b.keys() == runs_a.keys()
    for key in dec_a:
        assert dec_a[key] == dec_b[key], runs_a[key][0]  # byte for byte, JSON included


@pytest.mark.parametrize("isolation", ["auto", "process"])
def test_jobs_2_writes_the_rows_of_one_process(tmp_path, capsys, monkeypatch, isolation):
    monkeypatch.chdir(tmp_path)
    one, two = make_db(tmp_path, "one"), make_db(tmp_path, "two")
    job(capsys, one, "--jobs", "1", "--isolation", isolation)
    calls, real = [], parallel.run_parallel

    def spy(work, force, jobs, *args):
        calls.append(jobs)
        yield from real(work, force, jobs, *args)

    monkeypatch.setattr(parallel, "run_parallel", spy)
    job(capsys, two, "--jobs", "2", "--isolation", isolation)
    assert calls == [2]  # the workers' path, not the single-process one
    same_rows(one, two)


def test_jobs_resumes_a_killed_job_and_skips_complete_runs(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    one, two = make_db(tmp_path, "one"), make_db(tmp_path, "two")
    job(capsys, one, "--jobs", "1")
    job(capsys, two, "--jobs", "2")
    engine = open_engine(two)
    with engine.begin() as conn:  # a kill: one run half-written, another opened with no row
        first, second = conn.execute(schema.runs.select().order_by(schema.runs.c.id).limit(2)).all()
        ids = conn.execute(
            schema.decisions.select()
            .where(schema.decisions.c.run_id == first.id)
            .with_only_columns(schema.decisions.c.id)
        ).scalars()
        conn.execute(schema.decisions.delete().where(schema.decisions.c.id.in_(list(ids)[::2])))
        conn.execute(schema.decisions.delete().where(schema.decisions.c.run_id == second.id))
        conn.execute(
            schema.runs.update()
            .where(schema.runs.c.id.in_([first.id, second.id]))
            .values(status="running")
        )
    err = job(capsys, two, "--jobs", "2")
    assert f"{len(SPECS) * len(SEEDS)} runs on 1 task(s): 2 executed (1 resumed)" in err
    same_rows(one, two)


def test_jobs_error_is_one_line_and_leaves_no_trace(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    db = make_db(tmp_path, "bad")
    args = ["run", "--bank", "toy", "--no-report", "--db", db, "--jobs", "2"]
    code, _, err = run_cli(capsys, *args, "--strategy", "majority:model=m-big,k=16")
    assert code == 2 and err.count("\n") == 1 and "holds 8 samples" in err
    with open_engine(db, create=False).connect() as conn:
        assert conn.execute(schema.runs.select()).first() is None


@pytest.mark.ray
def test_ray_executor_writes_the_rows_of_one_process(tmp_path, capsys, monkeypatch):
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'uisbench[ray]')")
    monkeypatch.chdir(tmp_path)
    dbs = {
        (iso, ex): make_db(tmp_path, f"{iso}-{ex}")
        for iso in ("auto", "process")
        for ex in ("one", "ray")
    }
    for iso in ("auto", "process"):
        job(capsys, dbs[iso, "one"], "--jobs", "1", "--isolation", iso)
    ray.init(address="local", include_dashboard=False, num_cpus=2, _node_ip_address="127.0.0.1")
    try:  # the shipped strategies in the actors, then every one in a child of an actor
        for iso in ("auto", "process"):
            job(capsys, dbs[iso, "ray"], "--jobs", "2", "--executor", "ray", "--isolation", iso)
    finally:
        ray.shutdown()
    for iso in ("auto", "process"):
        same_rows(dbs[iso, "one"], dbs[iso, "ray"])


def test_a_run_failing_in_a_worker_is_one_line_and_leaves_no_rows(tmp_path, capsys, monkeypatch):
    from uisbench.errors import UisbenchError
    from uisbench.strategies.base import STRATEGIES

    cls = STRATEGIES.get("random")
    real = cls.run

    def failing(self, ctx):  # inherited by the forked workers
        for chunk in real(self, ctx):
            yield chunk  # committed, its rows built, then:
            raise UisbenchError("random broke after its first chunk")

    monkeypatch.setattr(cls, "run", failing)
    monkeypatch.chdir(tmp_path)
    db = make_db(tmp_path, "fail")
    args = ["run", "--bank", "toy", "--no-report", "--db", db, "--jobs", "2"]
    strategies = ["--strategy", "majority:model=m-mid,k=4", "--strategy", "random"]
    code, _, err = run_cli(capsys, *args, *strategies, "--seed", "0", "--seed", "1")
    assert code == 2 and err.count("\n") == 1, err
    assert "random broke after its first chunk" in err
    with open_engine(db, create=False).connect() as conn:
        runs = conn.execute(schema.runs.select()).all()
        assert all(r.status == "complete" for r in runs)  # the failed one and the unsent: gone
        assert not [r for r in runs if r.strategy == "random"]
        kept = {r.id for r in runs}
        ids = conn.execute(
            schema.decisions.select().with_only_columns(schema.decisions.c.run_id)
        ).scalars()
        assert set(ids) <= kept


def test_killed_parent_takes_its_workers_and_the_job_resumes(tmp_path, capsys, monkeypatch):
    import signal
    import subprocess
    import time

    monkeypatch.chdir(tmp_path)
    one, two = make_db(tmp_path, "one"), make_db(tmp_path, "two")
    job(capsys, one, "--jobs", "1")
    argv = [sys.executable, "-m", "uisbench.cli", "run", "--bank", "toy", "--no-report"]
    argv += ["--db", two, "--jobs", "2"] + [a for x in SPECS for a in ("--strategy", x)]
    argv += [a for x in SEEDS for a in ("--seed", x)]
    proc = subprocess.Popen(argv, stderr=subprocess.DEVNULL)
    engine = open_engine(two)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # kill once some run is complete
        with engine.connect() as conn:
            if conn.execute(schema.runs.select().where(schema.runs.c.status == "complete")).first():
                break
        time.sleep(0.05)
    kids = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True)
    workers = [int(p) for p in kids.stdout.split()]
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert workers  # the pool was running
    for _ in range(200):
        alive = [p for p in workers if os.path.exists(f"/proc/{p}")]
        if not alive:
            break
        time.sleep(0.05)
    assert not alive, "workers outlived the killed parent"
    job(capsys, two, "--jobs", "2")
    same_rows(one, two)
