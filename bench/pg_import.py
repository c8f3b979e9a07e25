"""PostgreSQL import against plain COPY into the same table, measured in one run.

Usage: ``python bench/pg_import.py BANK.jsonl.gz --url postgresql+psycopg://USER@HOST:PORT/DB
[--plain-url postgresql+psycopg://OTHER@HOST:PORT/DB2]`` (servers of your own: each side drops
and re-creates uisbench's tables in that database).

Per round and URL: ``uisbench`` (:func:`uisbench.store.bank.import_file`: parse, validate,
resolve ids, conflict rules, digest, COPY); ``COPY`` (the already-parsed sample tuples
streamed by psycopg's ``copy.write_row`` straight into ``samples``, the ceiling); and ``COPY,
no foreign keys`` (the same with the three foreign keys of ``samples`` dropped: what they
cost). ``--url`` is meant for a role that may set ``session_replication_role`` (a superuser:
uisbench then checks the foreign keys set-wise), ``--plain-url`` for an ordinary role owning
its database (the server's per-row foreign-key checks). Prints medians and the ratios of
rows/s. The bank is synthetic: speed figures only.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

from import_ceiling import COLUMNS, _tuples  # noqa: I001 - bench/ sibling
from sqlalchemy import create_engine

from uisbench.store.bank import import_file
from uisbench.store.bankfile import models_file_beside
from uisbench.store.engine import open_engine
from uisbench.store.schema import metadata


def _reset(url: str) -> None:
    engine = create_engine(url)
    metadata.drop_all(engine)
    engine.dispose()


def side_uisbench(url: str, bank: Path) -> float:
    _reset(url)
    engine = open_engine(url)
    t = time.perf_counter()
    import_file(engine, bank, models_file_beside(bank), synthetic=True)
    out = time.perf_counter() - t
    engine.dispose()
    return out


def side_copy(url: str, rows: list, pool: tuple, foreign_keys: bool) -> float:
    _reset(url)
    engine = open_engine(url)
    queries, models = pool
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        cur.execute(
            "INSERT INTO banks (id, name, source, config, synthetic) VALUES (1,'b','x','{}',true)"
        )
        tasks = {t: i for i, t in enumerate(sorted({t for t, _ in queries}), 1)}
        cur.executemany(
            "INSERT INTO tasks (id, name) VALUES (%s, %s)", [(i, t) for t, i in tasks.items()]
        )
        cur.executemany(
            "INSERT INTO queries (id, task_id, query_key, prompt) VALUES (%s, %s, %s, 'p')",
            [(i, tasks[t], k) for (t, k), i in queries.items()],
        )
        cur.executemany(
            "INSERT INTO models (id, name) VALUES (%s, %s)", [(i, m) for m, i in models.items()]
        )
        if not foreign_keys:
            cur.execute(
                "SELECT conname FROM pg_constraint "
                "WHERE conrelid = 'samples'::regclass AND contype = 'f'"
            )
            for (name,) in cur.fetchall():
                cur.execute(f"ALTER TABLE samples DROP CONSTRAINT {name}")
        raw.commit()
        t = time.perf_counter()
        with cur.copy(f"COPY samples ({', '.join(COLUMNS)}) FROM STDIN") as copy:
            for r in rows:
                copy.write_row(r)
        raw.commit()
        return time.perf_counter() - t
    finally:
        raw.close()
        engine.dispose()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bank", type=Path)
    ap.add_argument("--url", required=True)
    ap.add_argument("--plain-url", help="a second database, of a role without superuser rights")
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    rows, queries, models = _tuples(a.bank)
    urls = {"": a.url, **({"plain role: ": a.plain_url} if a.plain_url else {})}
    times: dict[str, list[float]] = {}
    for _ in range(a.rounds):
        for who, url in urls.items():
            for name, fn in (
                ("uisbench", lambda u=url: side_uisbench(u, a.bank)),
                ("COPY", lambda u=url: side_copy(u, rows, (queries, models), True)),
                (
                    "COPY, no foreign keys",
                    lambda u=url: side_copy(u, rows, (queries, models), False),
                ),
            ):
                times.setdefault(who + name, []).append(fn())
                print(f"{who + name:36s} {times[who + name][-1]:6.2f} s", flush=True)
    n = len(rows)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"\n{n:,} rows, {a.rounds} rounds, medians; load average {os.getloadavg()[0]:.1f}")
    for k, w in med.items():
        print(f"| {k} | {w:.2f} s | {n / w:,.0f} rows/s |")
    for who in urls:
        # Each round's own ratio (its sides ran back to back), then their median: steadier
        # than a ratio of medians on a machine whose load changes from minute to minute.
        paired = [c / u for c, u in zip(times[who + "COPY"], times[who + "uisbench"])]
        print(f"{who}uisbench / COPY rate per round: {', '.join(f'{r:.2f}' for r in paired)}")
        print(f"{who}uisbench / COPY rate, median of rounds: {statistics.median(paired):.2f}")
        copy, no_fk = med[who + "COPY"], med[who + "COPY, no foreign keys"]
        print(f"{who}uisbench / COPY rate: {copy / med[who + 'uisbench']:.2f}")
        print(
            f"{who}uisbench / COPY without foreign keys rate: {no_fk / med[who + 'uisbench']:.2f}"
        )
        print(f"{who}COPY with / without foreign keys, rate: {no_fk / copy:.2f}")


if __name__ == "__main__":
    main()
