"""Could decision writes hide behind the next run's replay on a writer thread? (issue 21 item 3)

One command, after ``bench/foundation.py`` has built its database::

    .venv/bin/python bench/write_overlap.py [--db bench/_work/foundation.db --rounds 3]

Runs the majority sweep of ``bench/run_writes.py`` (k = 1..64 × 3 seeds, 21 runs) once with
rows written, keeps those rows, then times, per round: the 21 replays in memory; the 21 runs'
rows inserted alone (one ``executemany`` and commit per run, into a fresh file database with
the decisions table's real key and indexes, WAL, ``synchronous=NORMAL``); and the replays with
each run's rows inserted by a writer thread while the next run replays. The rows are handed
over ready-made, so this is the best a writer thread could do: building them from the meter's
columns (about 4 ms a run, Python holding the interpreter lock) is not overlapped. sqlite3
releases the lock only inside SQLite's step, so the thread shares the replay's core for the
binding of every value.

Then the real thing, as a prototype: the same sweep through :meth:`Runner.run` with each run's
close (:meth:`RunRows.close`: its rows, the runs row, its summary, one transaction) handed to a
writer thread (the accuracy computed from the rows in hand, as the close does) while the next
run replays, against the same sweep replayed in memory and written as today.
"""

from __future__ import annotations

import argparse
import os
import queue
import sqlite3
import tempfile
import threading
import time
from pathlib import Path

from run_writes import COLUMNS, HERE, KS, decision_rows, fresh_copy, sweep_of


def main() -> None:
    from uisbench.run_loop import replay_in_memory
    from uisbench.runner import Runner
    from uisbench.store.engine import open_engine

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", type=Path, default=HERE / "_work" / "foundation.db")
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        db = fresh_copy(a.db, folder, None)
        task, bank, model = sweep_of(db)
        runner = Runner(open_engine(str(db)), task, bank, models=[model])
        specs = [(f"majority:model={model},k={k}", seed) for seed in range(3) for k in KS]
        ids = [runner.run(spec, seed=seed).run_id for spec, seed in specs]
        by_run, ddl = decision_rows(db, ids)
        rows = [by_run[r] for r in ids]
        insert = f"INSERT INTO decisions ({COLUMNS}) VALUES ({', '.join('?' * 15)})"

        def target() -> sqlite3.Connection:
            path = folder / "target.db"
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
            out = sqlite3.connect(path, check_same_thread=False)
            out.execute("PRAGMA journal_mode = WAL")
            out.execute("PRAGMA synchronous = NORMAL")
            for sql in ddl:
                out.execute(sql)
            out.commit()
            return out

        def replay(spec: str, seed: int) -> None:
            replay_in_memory(runner.arrays, runner.train, runner.test_pos, spec, seed)

        for spec, seed in specs:  # warm: fits and imports outside the timings
            replay(spec, seed)
        for r in range(a.rounds):
            t = time.perf_counter()
            for spec, seed in specs:
                replay(spec, seed)
            alone = time.perf_counter() - t
            out = target()
            t = time.perf_counter()
            for chunk in rows:
                out.executemany(insert, chunk)
                out.commit()
            writes = time.perf_counter() - t
            out.close()
            out, todo = target(), queue.Queue()

            def writer(out: sqlite3.Connection = out, todo: queue.Queue = todo) -> None:
                while (chunk := todo.get()) is not None:
                    out.executemany(insert, chunk)
                    out.commit()

            thread = threading.Thread(target=writer)
            t = time.perf_counter()
            thread.start()
            for (spec, seed), chunk in zip(specs, rows):
                replay(spec, seed)
                todo.put(chunk)
            todo.put(None)
            thread.join()
            both = time.perf_counter() - t
            out.close()
            print(
                f"round {r}: replay {alone:.3f} s, its rows inserted alone {writes:.3f} s, "
                f"replay with the inserts on a writer thread {both:.3f} s: "
                f"{both / alone:.2f}x the replay (one after the other: "
                f"{(alone + writes) / alone:.2f}x); load {os.getloadavg()[0]:.1f}",
                flush=True,
            )
        for r in range(a.rounds):
            mem, today, threaded = (  # seeds shifted: new run keys for each sweep
                _sweep(runner, specs, 100 * (r + 1) + 10 * i, how) for i, how in enumerate(HOWS)
            )
            print(
                f"round {r}, runner: in memory {mem:.3f} s, written as today {today:.3f} s "
                f"({today / mem:.2f}x), each close on a writer thread {threaded:.3f} s "
                f"({threaded / mem:.2f}x); load {os.getloadavg()[0]:.1f}",
                flush=True,
            )


HOWS = ("memory", "today", "thread")


def _sweep(runner, specs: list[tuple[str, int]], shift: int, how: str) -> float:
    """Seconds for the sweep (seeds shifted: runs not stored yet) replayed ``how``."""
    from uisbench.run_loop import replay_in_memory
    from uisbench.store import runs

    todo: queue.Queue = queue.Queue()
    close = runs.RunRows.close

    def deferred(stored, rows, summary, figures):  # what the prototype changes
        todo.put(lambda: close(stored, rows, summary, figures))
        return runs._share(sum(1 for row in rows if row[runs.CORRECT]), len(rows))

    def writer() -> None:
        while (job := todo.get()) is not None:
            job()

    thread = threading.Thread(target=writer)
    t = time.perf_counter()
    if how == "memory":
        for spec, seed in specs:
            replay_in_memory(runner.arrays, runner.train, runner.test_pos, spec, seed + shift)
        return time.perf_counter() - t
    thread.start()
    runs.RunRows.close = deferred if how == "thread" else close
    try:
        for spec, seed in specs:
            runner.run(spec, seed=seed + shift)
    finally:
        runs.RunRows.close = close
        todo.put(None)
        thread.join()
    return time.perf_counter() - t


if __name__ == "__main__":
    main()
