"""Would a columnar driver make SQLite inserts cheaper? ADBC staging against ``executemany``.

The sqlite3 driver inserts Python tuples only: the samples of an import and the decision rows of
a run are first turned into one Python object per value. ``adbc-driver-sqlite`` ingests Arrow
columns in C. Its connection is another SQLite library's, so it cannot write into uisbench's
open transaction: the rows would go to a staging file first, then ``INSERT INTO … SELECT``
from it (attached) in the one transaction. This script times both ways on synthetic rows of the
samples' and the decisions' shape (same columns, key and index), nothing of uisbench imported::

    pip install adbc-driver-sqlite   # not a dependency of uisbench
    python bench/adbc_staging.py [--samples 1000000] [--runs 60]

Prints seconds (samples: one import of ``--samples`` rows) and milliseconds a run (decisions:
``--runs`` runs of 1,857 rows, one transaction each), and checks that both ways stored the same
values.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

SAMPLES = (
    "CREATE TABLE samples (id INTEGER PRIMARY KEY, bank_id INT NOT NULL, query_id INT NOT NULL, "
    "model_id INT NOT NULL, sample INT NOT NULL, answer TEXT, correct BOOLEAN, input_tokens INT, "
    "output_tokens INT, cost_usd FLOAT, latency_s FLOAT, logprob FLOAT, "
    "UNIQUE (bank_id, query_id, model_id, sample))"
)
DECISIONS = (
    "CREATE TABLE decisions (id INTEGER NOT NULL PRIMARY KEY, run_id INTEGER NOT NULL, "
    "query_id INTEGER NOT NULL, position INTEGER NOT NULL, arms JSON NOT NULL, "
    "samples_used INTEGER NOT NULL, answer TEXT, correct BOOLEAN NOT NULL, input_tokens INTEGER, "
    "output_tokens INTEGER, flops FLOAT, dollars FLOAT, latency_s FLOAT, param_calls FLOAT, "
    "reward FLOAT, extra JSON, CONSTRAINT uq_decision UNIQUE (run_id, query_id))",
    "CREATE INDEX ix_decisions_run ON decisions (run_id, position)",
)
ROWS_A_RUN = 1857


def samples(n: int, rng: np.random.Generator) -> pa.Table:
    return pa.table(
        {
            "bank_id": np.ones(n, np.int64),
            "query_id": np.arange(n) // 64,
            "model_id": rng.integers(1, 7, n),
            "sample": np.arange(n) % 64,
            "answer": [str(i % 50) for i in range(n)],
            "correct": rng.random(n) < 0.5,
            "input_tokens": rng.integers(10, 500, n),
            "output_tokens": rng.integers(10, 500, n),
            "cost_usd": rng.random(n),
            "latency_s": rng.random(n),
            "logprob": -rng.random(n),
        }
    )


def decisions(run: int, rng: np.random.Generator) -> pa.Table:
    n = ROWS_A_RUN
    return pa.table(
        {
            "run_id": np.full(n, run, np.int64),
            "query_id": rng.permutation(100_000)[:n],
            "position": np.arange(n),
            "arms": ['["syn-3b"]'] * n,
            "samples_used": rng.integers(1, 64, n),
            "answer": [str(i % 50) for i in range(n)],
            "correct": rng.random(n) < 0.5,
            "input_tokens": rng.integers(10, 500, n),
            "output_tokens": rng.integers(10, 500, n),
            "flops": rng.random(n) * 1e12,
            "dollars": rng.random(n),
            "latency_s": rng.random(n),
            "param_calls": rng.random(n),
            "reward": pa.nulls(n, pa.float64()),
            "extra": pa.nulls(n, pa.string()),
        }
    )


def connect(path: Path, ddl: tuple[str, ...]) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    for sql in ddl:
        conn.execute(sql)
    return conn


def by_tuples(conn: sqlite3.Connection, table: str, batch: pa.Table) -> None:
    """One transaction: the columns as Python tuples, ``executemany`` (what uisbench does)."""
    rows = list(zip(*(batch.column(c).to_pylist() for c in batch.column_names)))
    marks = ", ".join("?" * batch.num_columns)
    conn.execute("BEGIN")
    conn.executemany(
        f"INSERT INTO {table} ({', '.join(batch.column_names)}) VALUES ({marks})", rows
    )
    conn.execute("COMMIT")


def by_staging(conn: sqlite3.Connection, staging, table: str, batch: pa.Table) -> None:
    """ADBC ingests the columns into the staging file, then one transaction copies them."""
    with staging.cursor() as cur:
        cur.adbc_ingest("staged", batch, mode="replace")
    staging.commit()
    cols = ", ".join(batch.column_names)
    conn.execute("BEGIN")
    conn.execute(f"INSERT INTO {table} ({cols}) SELECT {cols} FROM stg.staged")
    conn.execute("COMMIT")


def timed(fn, *args) -> tuple[float, float]:
    t, c = time.perf_counter(), time.process_time()
    fn(*args)
    return time.perf_counter() - t, time.process_time() - c


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=60)
    a = ap.parse_args()
    import adbc_driver_sqlite.dbapi as adbc  # pip install adbc-driver-sqlite

    rng = np.random.default_rng(0)
    big = samples(a.samples, rng)
    runs = [decisions(r, rng) for r in range(1, a.runs + 1)]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        one, two = (
            connect(folder / "a.db", (SAMPLES, *DECISIONS)),
            connect(folder / "b.db", (SAMPLES, *DECISIONS)),
        )
        staging = adbc.connect(str(folder / "staging.db"))
        two.execute(f"ATTACH '{folder / 'staging.db'}' AS stg")  # before any transaction
        w1, c1 = timed(by_tuples, one, "samples", big)
        w2, c2 = timed(by_staging, two, staging, "samples", big)
        print(
            f"samples, {a.samples:,} rows: executemany {w1:.2f} s wall / {c1:.2f} s CPU; "
            f"ADBC staging then INSERT…SELECT {w2:.2f} s / {c2:.2f} s CPU; load "
            f"{os.getloadavg()[0]:.1f}"
        )
        w1 = sum(timed(by_tuples, one, "decisions", b)[0] for b in runs)
        w2 = sum(timed(by_staging, two, staging, "decisions", b)[0] for b in runs)
        print(
            f"decisions, {a.runs} runs of {ROWS_A_RUN:,} rows: executemany {1e3 * w1 / a.runs:.1f} "
            f"ms a run; ADBC staging then INSERT…SELECT {1e3 * w2 / a.runs:.1f} ms a run"
        )
        for table in ("samples", "decisions"):
            check = (
                f"SELECT count(*), total(correct), total(input_tokens), count(answer) FROM {table}"
            )
            assert one.execute(check).fetchone() == two.execute(check).fetchone(), table
        staging.close()
        one.close()
        two.close()


if __name__ == "__main__":
    main()
