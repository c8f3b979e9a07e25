"""What writing a run's rows costs on top of replaying it in memory (issue 21 item 3).

One command, after ``bench/foundation.py`` has built its database::

    .venv/bin/python bench/run_writes.py [--db bench/_work/foundation.db --rounds 2 --seeds 3]

Each round copies the database (its runs and decisions removed; the columnar cache beside it
copied too, so loading is not what is measured), loads the sweep's model once, replays one
warm-up run each way, then times the majority sweep k = 1, 2, 4, ..., 64 over ``--seeds``
seeds through :meth:`Runner.run` (decision rows written) and through
:func:`uisbench.run_loop.replay` (nothing written), alternating which goes first. Prints wall and
CPU seconds of both and their ratios, with the load average, then the driver's floor: the same
rows inserted by ``sqlite3`` alone into an in-memory database, into the table as written and
into the other layouts a decision row could have (:data:`LAYOUTS`): what no change to
uisbench's own code, nor of the table's key and indexes, can go under while each decision is a
row. ``--jobs N`` times the same sweep as
``uisbench run --jobs N`` replays it (N forked workers replay, this process writes every row)
against N forked workers that write nothing. ``--schema 4`` writes the copy as
schema 4 (``runs.mode`` added back) so that a checkout from before schema 5 can be timed on
the same data (run it with that checkout's package first on ``PYTHONPATH``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def fresh_copy(src: Path, folder: Path, schema: int | None) -> Path:
    """The database without runs or decisions, and its columnar cache beside it."""
    dst = folder / "run_writes.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{dst}{suffix}").unlink(missing_ok=True)
    with sqlite3.connect(src) as a, sqlite3.connect(dst) as b:
        a.backup(b)
        b.execute("DELETE FROM decisions")
        b.execute("DELETE FROM runs")
        if schema == 4:
            b.execute("ALTER TABLE runs ADD COLUMN mode VARCHAR(16) NOT NULL DEFAULT 'replay'")
            b.execute("UPDATE uisbench_meta SET value = '4' WHERE key = 'schema_version'")
    b.close()
    shutil.rmtree(f"{dst}.arrays", ignore_errors=True)
    if Path(f"{src}.arrays").is_dir():
        shutil.copytree(f"{src}.arrays", f"{dst}.arrays")
    return dst


#: The decisions table's columns, in the runner's order; the sweep's k values.
COLUMNS = (
    "run_id, query_id, position, arms, samples_used, answer, correct, input_tokens, "
    "output_tokens, flops, dollars, latency_s, param_calls, reward, extra"
)
KS = [1, 2, 4, 8, 16, 32, 64]


def sweep_of(db: Path) -> tuple[str, str, str]:
    """(task, bank, model) the sweep runs on: the synthetic bank's syn-3b."""
    with sqlite3.connect(db) as conn:
        found = conn.execute(
            "SELECT t.name, b.name, m.name FROM samples s JOIN queries q ON q.id = s.query_id "
            "JOIN tasks t ON t.id = q.task_id JOIN banks b ON b.id = s.bank_id "
            "JOIN models m ON m.id = s.model_id WHERE m.name = 'syn-3b' LIMIT 1"
        ).fetchone()
    conn.close()
    return found


def decision_rows(db: Path, run_ids: list[int]) -> tuple[dict[int, list[tuple]], list[str]]:
    """Each run's decision rows as written (:data:`COLUMNS`), and the decisions table's DDL
    (its key and indexes)."""
    with sqlite3.connect(db) as conn:
        rows = {
            r: conn.execute(f"SELECT {COLUMNS} FROM decisions WHERE run_id = ?", (r,)).fetchall()
            for r in run_ids
        }
        ddl = [
            sql
            for (sql,) in conn.execute(
                "SELECT sql FROM sqlite_master WHERE tbl_name = 'decisions' AND sql IS NOT NULL"
            )
        ]
    conn.close()
    return rows, ddl


def warm_runner(db: Path):
    """(engine, runner, spec with ``{}`` for k) of the sweep, one run each way done already (a
    warm-up outside the timings: fits in the cache, code paths imported)."""
    from uisbench.run_loop import replay_in_memory
    from uisbench.runner import Runner
    from uisbench.store.engine import open_engine

    engine = open_engine(str(db))
    task, bank, model = sweep_of(db)
    runner = Runner(engine, task, bank, models=[model])
    spec = f"majority:model={model},k={{}}"
    runner.run(spec.format(3), seed=99)
    replay_in_memory(runner.arrays, runner.train, runner.test_pos, spec.format(3), 99)
    return engine, runner, spec


def timed(memory, written, memory_first: bool) -> dict[str, tuple[float, float]]:
    """(wall, this process's CPU) seconds of each of the two, in the order asked."""
    order = [("memory", memory), ("written", written)]
    out = {}
    for name, fn in order if memory_first else order[::-1]:
        t, c = time.perf_counter(), time.process_time()
        fn()
        out[name] = (time.perf_counter() - t, time.process_time() - c)
    return out


def one_round(db: Path, seeds: int, memory_first: bool) -> dict[str, tuple[float, float]]:
    from uisbench.run_loop import replay_in_memory

    engine, runner, spec = warm_runner(db)

    def written() -> None:
        for seed in range(seeds):
            for k in KS:
                runner.run(spec.format(k), seed=seed)

    def in_memory() -> None:
        for seed in range(seeds):
            for k in KS:
                replay_in_memory(runner.arrays, runner.train, runner.test_pos, spec.format(k), seed)

    out = timed(in_memory, written, memory_first)
    engine.dispose()
    return out


_RUNNER = None  # the forked workers' runner (set by the pool's initializer)


def _worker(runner) -> None:
    global _RUNNER
    _RUNNER = runner


def _replay_batch(batch: list[tuple[str, int]]) -> list[float]:
    from uisbench.run_loop import replay_in_memory

    r = _RUNNER
    return [
        replay_in_memory(r.arrays, r.train, r.test_pos, s, seed, r.cache).accuracy
        for s, seed in batch
    ]


def one_round_jobs(
    db: Path, seeds: int, jobs: int, memory_first: bool
) -> dict[str, tuple[float, float]]:
    """The sweep through ``uisbench.parallel.run_parallel`` on ``jobs`` workers (they replay,
    this process writes every row, as ``uisbench run --jobs`` does) against the same batches
    replayed by ``jobs`` workers forked the same way with nothing written; pool start-up on
    both sides. CPU is this process's only (the workers' is not counted)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from uisbench.parallel import batches, run_parallel

    engine, runner, spec = warm_runner(db)
    work = [(runner, spec.format(k), seed) for seed in range(seeds) for k in KS]
    cut = [[(work[i][1], work[i][2]) for i in b] for b in batches(work, jobs)]

    def written() -> None:
        for _ in run_parallel(work, False, jobs):
            pass

    def in_memory() -> None:
        ctx = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(jobs, ctx, _worker, (runner,)) as pool:
            list(pool.map(_replay_batch, cut))

    out = timed(in_memory, written, memory_first)
    engine.dispose()
    return out


#: Layouts a decision row could have, each timed by :func:`insert_floor`: what a schema change
#: that keeps one row per decision could gain. ``None``: the table as written (its DDL).
LAYOUTS = {
    "no key or index": "CREATE TABLE decisions ({cols})",
    "as written (rowid, unique key, position index)": None,
    "as written without the position index": "table only",
    "clustered on (run, query), no rowid": (
        "CREATE TABLE decisions ({cols}, PRIMARY KEY (run_id, query_id)) WITHOUT ROWID"
    ),
}


def insert_floor(db: Path) -> tuple[dict[str, float], int]:
    """Seconds per run for the driver alone to insert the runs' decision rows as written (the
    same tuples, one ``executemany`` and commit per run) into an in-memory SQLite database, for
    each of :data:`LAYOUTS` (foreign keys off); and the rows per run."""
    cols = COLUMNS
    with sqlite3.connect(db) as conn:
        runs = [r for (r,) in conn.execute("SELECT id FROM runs ORDER BY id")]
    conn.close()
    rows, ddl = decision_rows(db, runs)
    out = {}
    for name, layout in LAYOUTS.items():
        if layout is None:
            tables = ddl
        elif layout == "table only":
            tables = [sql for sql in ddl if not sql.upper().startswith("CREATE INDEX")]
        else:
            tables = [layout.format(cols=cols)]
        mem = sqlite3.connect(":memory:")
        for sql in tables:
            mem.execute(sql)
        marks = ", ".join("?" * 15)
        t = time.perf_counter()
        for r in runs:
            mem.executemany(f"INSERT INTO decisions ({cols}) VALUES ({marks})", rows[r])
            mem.commit()
        out[name] = (time.perf_counter() - t) / len(runs)
        mem.close()
    return out, len(rows[runs[0]])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", type=Path, default=HERE / "_work" / "foundation.db")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--schema", type=int, choices=[4], help="write the copy as schema 4")
    ap.add_argument(
        "--jobs",
        type=int,
        default=0,
        help="replay on N forked workers while this process writes (uisbench run --jobs N)",
    )
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(a.rounds):
            db = fresh_copy(a.db, Path(tmp), a.schema)
            first = bool(r % 2)
            if a.jobs:
                out = one_round_jobs(db, a.seeds, a.jobs, memory_first=first)
            else:
                out = one_round(db, a.seeds, memory_first=first)
            (w_db, c_db), (w_mem, c_mem) = out["written"], out["memory"]
            cpu = (
                f"this process {c_db:.3f} s CPU, {a.jobs} workers"
                if a.jobs
                else f"CPU {c_db:.3f} / {c_mem:.3f} s, ratio {c_db / c_mem:.2f}"
            )
            print(
                f"round {r}: written {w_db:.3f} s wall, in memory {w_mem:.3f} s wall: ratio wall "
                f"{w_db / w_mem:.2f} ({cpu}); load {os.getloadavg()[0]:.1f}",
                flush=True,
            )
            if a.jobs:
                continue
            floors, n = insert_floor(db)
            per_run = w_mem / (a.seeds * 7)
            print(
                f"  the driver's floor, {n} rows a run into an in-memory database, against the "
                f"replay's {per_run * 1e3:.1f} ms a run:",
                flush=True,
            )
            for name, secs in floors.items():
                print(f"    {name}: {secs * 1e3:.1f} ms ({secs / per_run:.2f})", flush=True)


if __name__ == "__main__":
    main()
