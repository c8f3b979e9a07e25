"""Time ``uisbench site build`` on a database of results (speed item 5 of the leaderboard issue).

Usage: ``python bench/site_build.py --db PATH [--out DIR] [--repeat N]``. Prints what the
database holds (samples, runs, decisions, configurations) and the wall time of each build, with
synthetic banks included (speed databases are synthetic). Results go to bench/RESULTS.md by hand.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

from sqlalchemy import func, select

from uisbench.results.leaderboard import leaderboard
from uisbench.site.build import build_site
from uisbench.store import schema
from uisbench.store.engine import open_engine


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", required=True)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    engine = open_engine(args.db, create=False)
    with engine.connect() as conn:
        n_samples = conn.execute(select(func.count()).select_from(schema.samples)).scalar()
        n_runs = conn.execute(select(func.count()).select_from(schema.runs)).scalar()
        n_dec = conn.execute(select(func.count()).select_from(schema.decisions)).scalar()
    print(f"database: {n_samples:,} samples, {n_runs:,} runs, {n_dec:,} decisions")
    t0, c0 = time.perf_counter(), time.process_time()
    runs, boards = leaderboard(engine, include_synthetic=True)
    t1, c1 = time.perf_counter(), time.process_time()
    configs = sum(len(b.configs) for b in boards)
    print(
        f"leaderboard only: {t1 - t0:.2f} s wall, {c1 - c0:.2f} s CPU "
        f"({len(boards)} task(s), {configs} configurations)"
    )
    out = args.out or Path(tempfile.mkdtemp(prefix="uisbench-site-")) / "site"
    for i in range(args.repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        build_site(engine, out, include_synthetic=True)
        dt, dc = time.perf_counter() - t0, time.process_time() - c0
        pages = sum(1 for _ in out.rglob("*.html"))
        load = os.getloadavg()[0]
        print(
            f"build {i + 1}: {dt:.2f} s wall, {dc:.2f} s CPU, {pages} pages "
            f"(load average {load:.1f} on {os.cpu_count()} CPUs)"
        )
    if args.out is None:
        shutil.rmtree(out.parent, ignore_errors=True)


if __name__ == "__main__":
    main()
