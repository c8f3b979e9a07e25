"""Real processes on one SQLite file: two writers at once, and SIGKILL at random moments.

Both tests drive the CLI in subprocesses (``python -m uisbench.cli run``) on a fake bank
imported as SYNTHETIC, so they exercise WAL + ``BEGIN IMMEDIATE`` locking and the
runner's resume exactly as a user would hit them.
"""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.fakes import FakeBank, FakeModel
from uisbench.store.bank import import_file
from uisbench.store.bankfile import models_file_beside
from uisbench.store.engine import open_engine

ROOT = Path(__file__).resolve().parents[2]
BANK = "syn-small"
MODELS = "syn-0.5b,syn-1.5b"
# Several seeds of a few strategies: many runs, each committing its decisions, so a kill can
# land before, inside or between any of them.
RESUME_ARGS = [
    "--strategy",
    "majority:model=syn-1.5b,k=8",
    "--strategy",
    "random",
    "--strategy",
    "single:model=syn-0.5b",
    *[x for s in range(6) for x in ("--seed", str(s))],
]


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """A database holding a 3,000-query SYNTHETIC bank (2 models x 8 samples), imported once."""
    folder = tmp_path_factory.mktemp("concurrency")
    db = folder / "template.db"
    synthetic_bank(folder, 3000, 7, db)
    return db


def synthetic_bank(folder: Path, queries: int, seed: int, db: Path) -> Path:
    """A SYNTHETIC bank of ``queries`` queries (2 models x 8 samples) written into ``folder``
    and imported into ``db``, whose WAL is then checkpointed; the bank file."""
    fake = FakeBank(
        models=(
            FakeModel("syn-0.5b", 0.4, samples=8, params_b=0.5),
            FakeModel("syn-1.5b", 0.6, samples=8, params_b=1.5),
        ),
        queries=queries,
        task="syn",
        seed=seed,
    )
    bank = fake.write(folder, name=BANK, gz=True)
    engine = open_engine(str(db))
    import_file(engine, bank, models_file_beside(bank), synthetic=True)
    engine.dispose()  # last connection closes: WAL checkpointed into the main file
    return bank


def clone(template: Path, dest: Path) -> Path:
    assert not Path(f"{template}-wal").exists(), "template not checkpointed"
    shutil.copyfile(template, dest)
    return dest


def cli_run(db: Path, *args: str) -> subprocess.Popen:
    cmd = [
        sys.executable,
        "-m",
        "uisbench.cli",
        "run",
        "--db",
        str(db),
        "--bank",
        BANK,
        "--models",
        MODELS,
        "--no-report",
        *args,
    ]
    return subprocess.Popen(
        cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def finish(proc: subprocess.Popen, timeout: float = 120) -> None:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, f"exit {proc.returncode}\n{out}\n{err}"


def decisions_by_run(db: Path) -> dict[tuple, list[tuple]]:
    """run definition → its decisions keyed by query, from a read-only connection."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        runs = con.execute(
            "SELECT id, strategy, params, seed, status, n_queries FROM runs"
        ).fetchall()
        out = {}
        for rid, strategy, params, seed, status, n_queries in runs:
            rows = con.execute(
                "SELECT q.query_key, d.position, d.arms, d.samples_used, d.answer, d.correct, "
                "d.input_tokens, d.output_tokens, d.flops, d.dollars, d.latency_s "
                "FROM decisions d JOIN queries q ON q.id = d.query_id WHERE d.run_id = ? "
                "ORDER BY q.query_key",
                (rid,),
            ).fetchall()
            keys = [r[0] for r in rows]
            assert len(keys) == len(set(keys)), "a query has two decisions in one run"
            out[(strategy, params, seed)] = (status, n_queries, rows)
        return out
    finally:
        con.close()


def count_decisions(db: Path) -> int:
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=0.2)
        try:
            return con.execute("SELECT count(*) FROM decisions").fetchone()[0]
        finally:
            con.close()
    except sqlite3.OperationalError:  # not created yet, or briefly locked
        return -1


def test_two_writers_at_once(template, tmp_path):
    db = clone(template, tmp_path / "two.db")
    a = cli_run(db, "--strategy", "majority:model=syn-1.5b,k=4", "--seed", "0", "--seed", "1")
    b = cli_run(
        db,
        "--strategy",
        "random",
        "--strategy",
        "single:model=syn-1.5b",
        "--seed",
        "0",
        "--seed",
        "1",
    )
    finish(a)
    finish(b)
    runs = decisions_by_run(db)
    assert len(runs) == 6
    for key, (status, n_queries, rows) in runs.items():
        assert status == "complete", key
        assert len(rows) == n_queries > 1000, key


def test_sigkill_at_random_moments_then_resume(template, tmp_path):
    ref_db = clone(template, tmp_path / "ref.db")
    finish(cli_run(ref_db, *RESUME_ARGS))
    reference = decisions_by_run(ref_db)
    total = sum(len(rows) for _, _, rows in reference.values())
    assert len(reference) == 18 and total > 18 * 1000

    db = clone(template, tmp_path / "killed.db")
    rng = np.random.default_rng(2024)
    kills = 0
    killed_at: list[int] = []  # decisions committed when each kill landed (for diagnosis)
    for _ in range(4):
        before = max(count_decisions(db), 0)
        if before >= total:
            break
        # Kill a random moment (up to 0.25 s) after the process has committed something new:
        # somewhere inside its stream of runs and their transactions, whatever the machine's
        # speed, with many runs still to go.
        extra = rng.uniform(0.0, 0.25)
        target = before + 1
        proc = cli_run(db, *RESUME_ARGS)
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            if count_decisions(db) >= target:
                time.sleep(extra)
                break
            time.sleep(0.02)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            kills += 1
            killed_at.append(count_decisions(db))
        proc.communicate()
        assert proc.returncode in (0, -signal.SIGKILL)
        # Whatever was committed is consistent: no run has a query twice (checked inside).
        decisions_by_run(db)
    # Rows are committed in bursts (at most a second apart), so a late kill can land after the
    # last burst, while the process closes its runs: still a kill, but not inside the stream.
    inside = [k for k in killed_at if k < total]
    assert kills >= 2 and len(inside) >= 2, f"kills inside the stream: {killed_at} of {total}"
    finish(cli_run(db, *RESUME_ARGS))
    resumed = decisions_by_run(db)
    assert resumed.keys() == reference.keys()
    for key, (status, n_queries, rows) in resumed.items():
        assert status == "complete", key
        assert len(rows) == n_queries, key
        assert rows == reference[key][2], f"resumed decisions differ from uninterrupted: {key}"


def stored(db: Path) -> tuple[int, tuple]:
    """(samples, the bank's digest state) of a database, read-only."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        n = con.execute("SELECT count(*) FROM samples").fetchone()[0]
        state = con.execute("SELECT content_sum, content_rows FROM banks").fetchall()
        return n, tuple(state)
    finally:
        con.close()


def test_an_import_killed_in_either_phase_holds_all_or_nothing(tmp_path):
    """SIGKILL while a columnar import stages the file (nothing of it in the database yet) and
    while it copies the samples (its transaction open): the bank holds every sample or none,
    with its digest state; importing again completes it, as an unbroken import."""
    ref = tmp_path / "ref.db"
    bank = synthetic_bank(tmp_path, 12_000, 11, ref)
    full = stored(ref)
    assert full[0] == 12_000 * 16

    db, scratch = tmp_path / "killed.db", tmp_path / "tmp"
    scratch.mkdir()
    env = {**os.environ, "TMPDIR": str(scratch)}  # a killed import's scratch folder lands here
    cmd = [sys.executable, "-m", "uisbench.cli", "bank", "import", str(bank), "--db", str(db)]

    def staging() -> bool:  # phase 1: ADBC has written into the scratch file
        return any(f.stat().st_size for f in scratch.glob("uisbench-stage-*/samples.db"))

    def copying() -> bool:  # phase 2: the copy's pages reach the write-ahead log
        wal = Path(f"{db}-wal")
        return wal.exists() and wal.stat().st_size > 2 << 20

    for moment in (staging, copying):
        proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + 120
        while proc.poll() is None and not moment() and time.monotonic() < deadline:
            time.sleep(0.002)
        assert proc.poll() is None, f"the import ended before {moment.__name__}"
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate()
        assert stored(db) == (0, ()), f"killed while {moment.__name__}: {stored(db)}"
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert stored(db) == full  # all of it, once, and the same digest as an unbroken import
