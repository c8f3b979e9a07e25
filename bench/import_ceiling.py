"""SQLite import against its ceiling, measured in one run on the same rows.

Usage: ``python bench/import_ceiling.py BANK.jsonl.gz [--rounds 3]``

Per round, each into a fresh SQLite file (WAL, ``synchronous=NORMAL``, the samples table's
shape and unique key, foreign keys as uisbench has them):

* ``uisbench``: :func:`uisbench.store.bank.import_file` (parse, validate, resolve ids, check
  conflicts, keep the bank digest, insert): a new bank, so the columnar import
  (:mod:`uisbench.store.staging`, ADBC) where ``adbc-driver-sqlite`` is installed;
* ``row by row``: the same with the columnar import switched off (what every import did before
  it, and what an import into a held bank still does);
* ``executemany``: the already-parsed sample tuples into ``samples`` through the sqlite3
  driver's ``executemany`` (the insert alone);
* ``.import``: the same tuples written as CSV beforehand, loaded by the ``sqlite3`` command-line
  shell's ``.import`` into a table of the same shape (no Python at all);
* ``parse``: :func:`uisbench.store.bankfile.read_blocks` alone (read, gunzip, parse, validate).

The ceilings' tuples are built once and frozen out of the garbage collector's way (else every
collection of the import under test walked this script's million tuples: 1 s of its time);
uisbench's CPU includes its row-hashing helper process (:mod:`uisbench.store.rowsha`).
Prints wall and CPU seconds per side and round, the medians, and the ratios the issue asks
for: rows/s of uisbench over each ceiling (target >= 0.8), and uisbench's CPU time over
parse + executemany CPU (target <= 1.2). The bank is synthetic: speed figures only.
"""

from __future__ import annotations

import argparse
import csv
import gc
import os
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from uisbench.store.bank import import_file
from uisbench.store.bankfile import models_file_beside, read_blocks
from uisbench.store.engine import open_engine
from uisbench.store.schema import metadata, samples

COLUMNS = [c.name for c in samples.columns if c.name != "id"]


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _fresh_sqlite(path: Path) -> sqlite3.Connection:
    """A file with uisbench's tables (same DDL), WAL, and the pool rows the samples point to."""
    from sqlalchemy import create_engine

    engine = create_engine(f"sqlite:///{path}")
    metadata.create_all(engine)
    engine.dispose()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


def _tuples(bank: Path) -> tuple[list[tuple], dict, dict]:
    """Sample tuples in COLUMNS order with ids 1.. for tasks' queries and models."""
    queries: dict[tuple, int] = {}
    models: dict[str, int] = {}
    rows = []
    for table in read_blocks(bank):
        cols = {f: table.column(f).to_pylist() for f in table.column_names}
        for i in range(table.num_rows):
            q = queries.setdefault((cols["task"][i], cols["query_id"][i]), len(queries) + 1)
            m = models.setdefault(cols["model"][i], len(models) + 1)
            rows.append(
                (1, q, m, cols["sample"][i], cols["text"][i], cols["answer"][i])
                + (cols["correct"][i], cols["score"][i], cols["input_tokens"][i])
                + (cols["output_tokens"][i], cols["cost_usd"][i], cols["latency_s"][i])
                + (cols["logprob"][i],)
            )
    return rows, queries, models


def _pool(conn: sqlite3.Connection, queries: dict, models: dict) -> None:
    conn.execute("BEGIN")
    conn.execute(
        "INSERT INTO banks (id, name, source, config, synthetic) VALUES (1,'b','x','{}',1)"
    )
    tasks = {t: i for i, t in enumerate(sorted({t for t, _ in queries}), 1)}
    conn.executemany(
        "INSERT INTO tasks (id, name) VALUES (?, ?)", [(i, t) for t, i in tasks.items()]
    )
    conn.executemany(
        "INSERT INTO queries (id, task_id, query_key, prompt) VALUES (?, ?, ?, 'p')",
        [(i, tasks[t], k) for (t, k), i in queries.items()],
    )
    conn.executemany(
        "INSERT INTO models (id, name) VALUES (?, ?)", [(i, m) for m, i in models.items()]
    )
    conn.execute("COMMIT")


def side_uisbench(bank: Path, work: Path, columnar: bool = True) -> tuple[float, float]:
    from uisbench.store import staging

    usable = staging.usable
    if not columnar:
        staging.usable = lambda engine: False  # type: ignore[assignment]
    try:
        return _import(bank, work)
    finally:
        staging.usable = usable


def _import(bank: Path, work: Path) -> tuple[float, float]:
    engine = open_engine(str(work / "uisbench.db"))
    t, c = time.perf_counter(), time.process_time() + _children_cpu()  # its row hasher too
    import_file(engine, bank, models_file_beside(bank), synthetic=True)
    out = time.perf_counter() - t, time.process_time() + _children_cpu() - c
    engine.dispose()
    return out


def side_parse(bank: Path) -> tuple[float, float]:
    t, c = time.perf_counter(), time.process_time()
    n = sum(b.num_rows for b in read_blocks(bank))
    assert n > 0
    return time.perf_counter() - t, time.process_time() - c


def side_executemany(rows: list[tuple], pool: tuple, work: Path) -> tuple[float, float]:
    conn = _fresh_sqlite(work / "executemany.db")
    _pool(conn, *pool)
    sql = f"INSERT INTO samples ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
    t, c = time.perf_counter(), time.process_time()
    conn.execute("BEGIN IMMEDIATE")
    for lo in range(0, len(rows), 50_000):
        conn.executemany(sql, rows[lo : lo + 50_000])
    conn.execute("COMMIT")
    out = time.perf_counter() - t, time.process_time() - c
    conn.close()
    return out


def side_cli_import(csv_path: Path, pool: tuple, work: Path) -> tuple[float, float]:
    db = work / "cli.db"
    conn = _fresh_sqlite(db)
    _pool(conn, *pool)
    conn.close()
    script = (
        "PRAGMA synchronous = NORMAL;\nPRAGMA foreign_keys = ON;\n.mode csv\n"
        f".import --skip 1 {csv_path} samples_csv\n"
    )
    # .import into an existing table of the same shape (the rowid is the id) and unique key.
    # The CSV has no NULL: an empty field arrives as '' (text and score are empty here).
    ddl = sqlite3.connect(db)
    ddl.execute(f"CREATE TABLE samples_csv ({', '.join(COLUMNS)})")
    ddl.execute(
        "CREATE UNIQUE INDEX uq_csv ON samples_csv (bank_id, model_id, query_id, sample_index)"
    )
    ddl.commit()
    ddl.close()
    c0, t = _children_cpu(), time.perf_counter()
    subprocess.run(["sqlite3", str(db)], input=script, text=True, check=True)
    return time.perf_counter() - t, _children_cpu() - c0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bank", type=Path)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    if not shutil.which("sqlite3"):
        raise SystemExit("the sqlite3 command-line shell is needed (apt install sqlite3)")
    rows, queries, models = _tuples(a.bank)
    # The ceilings' million tuples are this script's, not the import's: out of the collector's
    # way, so that the garbage collections of the import under test do not walk them.
    gc.freeze()
    with tempfile.TemporaryDirectory() as tmp:
        csv_path = Path(tmp) / "rows.csv"
        with open(csv_path, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(COLUMNS)
            w.writerows((*r[:6], int(r[6]), *r[7:]) for r in rows)
        results: dict[str, list[tuple[float, float]]] = {}
        for _ in range(a.rounds):
            for name, fn in (
                ("uisbench", lambda w: side_uisbench(a.bank, w)),
                ("row by row", lambda w: side_uisbench(a.bank, w, columnar=False)),
                ("executemany", lambda w: side_executemany(rows, (queries, models), w)),
                (".import", lambda w: side_cli_import(csv_path, (queries, models), w)),
                ("parse", lambda w: side_parse(a.bank)),
            ):
                work = Path(tempfile.mkdtemp(dir=tmp))
                results.setdefault(name, []).append(fn(work))
                shutil.rmtree(work)
                print(
                    f"{name:12s} wall {results[name][-1][0]:6.2f} s  "
                    f"cpu {results[name][-1][1]:6.2f} s",
                    flush=True,
                )
    med = {
        k: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v))
        for k, v in results.items()
    }
    n = len(rows)
    print(f"\n{n:,} rows, {a.rounds} rounds, medians; load average {os.getloadavg()[0]:.1f}")
    for k, (w, c) in med.items():
        print(f"| {k} | {w:.2f} s | {n / w:,.0f} rows/s | {c:.2f} s CPU |")
    for ceiling in ("executemany", ".import"):  # each round's own ratio, then the median
        paired = [c / u for (c, _), (u, _) in zip(results[ceiling], results["uisbench"])]
        shown = ", ".join(f"{r:.2f}" for r in paired)
        print(
            f"uisbench / {ceiling} rate per round: {shown}; median {statistics.median(paired):.2f}"
        )
    rows_cpu = med["row by row"][1] / (med["parse"][1] + med["executemany"][1])
    print(
        f"row by row / executemany rate: {med['executemany'][0] / med['row by row'][0]:.2f}; "
        f"CPU / (parse + executemany CPU): {rows_cpu:.2f}"
    )
    u = med["uisbench"][0]
    print(f"uisbench / executemany rate: {med['executemany'][0] / u:.2f}")
    print(f"uisbench / .import rate: {med['.import'][0] / u:.2f}")
    cpu = med["uisbench"][1] / (med["parse"][1] + med["executemany"][1])
    print(f"uisbench CPU / (parse + executemany CPU): {cpu:.2f}")


if __name__ == "__main__":
    sys.exit(main())
