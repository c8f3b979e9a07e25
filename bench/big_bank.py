"""Big-bank figures of issue 21: import, re-import, bank digest, bank load, and a database of
runs for ``site build``.

Usage::

    python bench/synthetic.py /tmp/syn1m.jsonl.gz --queries 2600   # 998,400 samples
    python bench/big_bank.py /tmp/syn1m.jsonl.gz /tmp/big.db [--runs]
    /usr/bin/time -v uisbench site build --db /tmp/big.db --include-synthetic --out /tmp/site

Imports the bank into a fresh SQLite file twice (the second adds nothing), reads the bank's
digest as site build, gate and results export do, and loads every model's samples for the
task twice (the second from the columnar cache where there is one). ``--runs`` then replays
100 configurations (single and majority k = 1..64 of each model, random, oracle; seeds 0, 1)
so that ``site build`` has a board to draw. Wall and CPU seconds per step; the load average.
The bank is synthetic: speed figures only.
"""

from __future__ import annotations

import argparse
import os
import resource
import time
from pathlib import Path

from uisbench.store.bank import import_file
from uisbench.store.bankfile import models_file_beside
from uisbench.store.digest import bank_digest
from uisbench.store.engine import open_engine
from uisbench.store.loading import load_arrays


def clock(label: str, f, extra=lambda r: "") -> object:
    t, c = time.perf_counter(), time.process_time()
    r = f()
    wall, cpu = time.perf_counter() - t, time.process_time() - c
    print(f"| {label} | {wall:.2f} s | {cpu:.2f} s | {extra(r)} |", flush=True)
    return r


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bank", type=Path)
    ap.add_argument("db", type=Path)
    ap.add_argument("--runs", action="store_true")
    a = ap.parse_args()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{a.db}{suffix}").unlink(missing_ok=True)
    engine = open_engine(str(a.db))
    models = models_file_beside(a.bank)
    print("| step | wall | CPU | |\n|---|---|---|---|")

    def imp():
        return import_file(engine, a.bank, models, synthetic=True)

    st = clock("import", imp, lambda s: f"{s.inserted:,} rows inserted")
    clock("import again", imp, lambda s: f"{s.inserted:,} rows inserted")
    with engine.connect() as conn:
        clock("bank digest", lambda: bank_digest(conn, st.bank), lambda d: d[:20])
    for label in ("load all models", "load again"):
        with engine.connect() as conn:
            clock(label, lambda: load_arrays(conn, st.bank, st.tasks[0]), lambda x: x.digest)
    if a.runs:
        from uisbench.runner import Runner

        runner = clock("Runner (load)", lambda: Runner(engine, st.tasks[0], st.bank))
        names = sorted(runner.arrays.models)
        specs = [f"single:model={m}" for m in names]
        specs += [f"majority:model={m},k={k}" for m in names for k in (1, 2, 4, 8, 16, 32, 64)]
        specs += ["random", "oracle"]

        def runs():
            return [runner.run(sp, seed=seed) for seed in (0, 1) for sp in specs]

        clock("runs", runs, lambda rs: f"{len(rs)} runs")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"peak {peak:.2f} GiB; load average {os.getloadavg()}")


if __name__ == "__main__":
    main()
