"""Foundation benchmark: bank import rate and replay speed of a majority-vote sweep.

One command::

    .venv/bin/python bench/foundation.py [--queries 10000 --models 6 --samples 64]

generates a seeded SYNTHETIC bank (bench/synthetic.py) into ``bench/_work/`` (reused when the
same file exists), imports it into a fresh SQLite database and reports rows/s, then times a
single-model majority-vote sweep over k = 1, 2, 4, ..., samples with the real :class:`Runner`
(decision rows written to the database). The sweep runs in a child process so that its peak
memory (``ru_maxrss``) is its own and not the import's. ``--write`` replaces the
"Foundation: import and replay" section of bench/RESULTS.md with the figures.

The bank is synthetic: these are speed figures, never model results.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

from uisbench.strategies.costing import powers_of_two

HERE = Path(__file__).resolve().parent
WORK = HERE / "_work"
RESULTS = HERE / "RESULTS.md"
HEADING = "## Foundation: import and replay"
TARGETS = {"import_rows_per_s": 100_000, "sweep_wall_s": 30.0, "sweep_peak_gib": 4.0}


NOTES = """\
What was profiled and changed to get here (cProfile; figures per row, CPU time, same machine):

- The line-by-line reader (orjson + Python checks per line) cost ~15 µs/row, more than SQLite.
  Blocks of 16 MiB are now parsed by pyarrow's JSON reader (C++, GIL released) in a prefetch
  thread while the main thread inserts; any unusual block falls back to the line checks, so
  errors and accepted rows are unchanged (tests/test_import_paths.py pins the agreement).
  Read side now: gunzip ~0.9 + parse ~2.8 + checks ~0.6 µs/row.
- Queries and models are resolved per distinct value on arrow dictionary codes (numpy), not
  per row; all-null columns (text, score) are left out of the INSERT.
- The samples unique key is now (bank, model, query, sample) instead of (bank, query, model,
  sample) plus a (bank, model) index: one index instead of two, appended in order by imports
  (SQLite executemany alone: 92k → 162k rows/s at 3.84 M rows). What remains on the insert
  side is the driver's executemany, ~5.7 µs CPU/row.
- Replay: decision rows are built column-wise and bulk-inserted (per-row dicts,
  `np.nan_to_num` per value and SQLAlchemy's parameter processing took 5.9 s of an 18.6 s
  profiled CLI run of 12 configurations on 3,000 queries), and `load_arrays` builds its frames
  from columns (pandas probing SQLAlchemy Row objects took 3.9 s of the same run). That run
  went from 21 s to 7.6 s wall, with identical decision rows.

The figures depend on what else the shared CPU is doing: the same command, same code, run
while other work kept the load average at 5-8 measured 91.4 s = 42,009 rows/s for the import
(46.7 s CPU) and 11.0 s for the whole sweep. The import uses two threads (pyarrow parsing,
SQLite inserting), so it needs both cores to reach its target; its CPU time (~45 s, i.e.
~12 µs/row summed over both threads) is the stable figure.
"""


def _rss_gib() -> float:
    """Peak resident set of this process (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def phase_import(a: argparse.Namespace) -> dict:
    sys.path.insert(0, str(HERE))
    from synthetic import generate, task_name

    from uisbench.store.bank import import_file
    from uisbench.store.engine import open_engine

    WORK.mkdir(parents=True, exist_ok=True)
    stem = f"synthetic-q{a.queries}-m{a.models}-s{a.samples}-seed{a.seed}"
    bank_file = WORK / f"{stem}.jsonl.gz"
    models_file = WORK / f"{stem}.models.json"
    gen_s = None
    if not (bank_file.is_file() and models_file.is_file()):
        t = time.perf_counter()
        tmp = WORK / f"{stem}.part.jsonl.gz"
        generate(tmp, queries=a.queries, models=a.models, samples=a.samples, seed=a.seed)
        tmp.replace(bank_file)
        (WORK / f"{stem}.part.models.json").replace(models_file)
        gen_s = time.perf_counter() - t
    db = WORK / "foundation.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    engine = open_engine(str(db))
    t, c = time.perf_counter(), time.process_time()
    stats = import_file(engine, bank_file, models_file, synthetic=True)
    import_s, import_cpu = time.perf_counter() - t, time.process_time() - c
    t = time.perf_counter()
    again = import_file(engine, bank_file, models_file, synthetic=True)
    reimport_s = time.perf_counter() - t
    engine.dispose()
    if stats.inserted != stats.rows or again.inserted != 0:
        raise SystemExit(f"import inconsistent: {stats} then {again}")
    return {
        "bank_file": bank_file.name,
        "bank_mib": round(bank_file.stat().st_size / 2**20, 1),
        "generate_s": gen_s,
        "rows": stats.rows,
        "import_s": import_s,
        "import_rows_per_s": stats.rows / import_s,
        "import_cpu_s": import_cpu,
        "reimport_s": reimport_s,
        "import_peak_gib": _rss_gib(),
        "db": str(db),
        "bank": stats.bank,
        "task": task_name(a.queries, a.seed),
        "models": stats.models,
    }


def phase_sweep(a: argparse.Namespace) -> dict:
    """Runs in a child process: load one model's samples, then majority vote for every k."""
    from uisbench.runner import Runner
    from uisbench.store.engine import open_engine

    t0, c0 = time.perf_counter(), time.process_time()
    engine = open_engine(a.db)  # the runner writes (splits, runs, decisions): not read-only
    runner = Runner(engine, a.task, a.bank, models=[a.model])
    load_s = time.perf_counter() - t0
    # One run each way first, outside the timings: imports and compiled statements are paid
    # once per process, not per run (seed 1 is not part of the sweep).
    from uisbench.run_loop import replay_in_memory

    runner.run(f"majority:model={a.model},k=3", seed=1)
    replay_in_memory(
        runner.arrays, runner.train, runner.test_pos, f"majority:model={a.model},k=3", 1
    )
    per_k = []
    decisions = 0
    for k in powers_of_two(a.samples):
        t = time.perf_counter()
        res = runner.run(f"majority:model={a.model},k={k}", seed=0)
        per_k.append({"k": k, "s": time.perf_counter() - t, "accuracy": res.accuracy})
        decisions += res.n_queries
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    runs_s = sum(r["s"] for r in per_k)
    # The same runs in memory (nothing written): what writing decisions costs on top.
    t = time.perf_counter()
    for k in powers_of_two(a.samples):
        replay_in_memory(
            runner.arrays, runner.train, runner.test_pos, f"majority:model={a.model},k={k}", 0
        )
    memory_s = time.perf_counter() - t
    # Loading again: the columnar cache beside the database (keyed by the bank's digest).
    t = time.perf_counter()
    Runner(engine, a.task, a.bank, models=[a.model])
    load_again_s = time.perf_counter() - t
    return {
        "model": a.model,
        "load_s": load_s,
        "load_again_s": load_again_s,
        "memory_s": memory_s,
        "runs_s": runs_s,
        "sweep_wall_s": wall,
        "sweep_cpu_s": cpu,
        "decisions": decisions,
        "decisions_per_s": decisions / runs_s,
        "sweep_peak_gib": _rss_gib(),
        "per_k": per_k,
    }


def markdown(imp: dict, sw: dict, argv: list[str]) -> str:
    ok = {
        "import_rows_per_s": imp["import_rows_per_s"] >= TARGETS["import_rows_per_s"],
        "sweep_wall_s": sw["sweep_wall_s"] < TARGETS["sweep_wall_s"],
        "sweep_peak_gib": sw["sweep_peak_gib"] < TARGETS["sweep_peak_gib"],
    }
    mark = {True: "met", False: "MISSED"}
    load = os.getloadavg()
    acc = ", ".join(f"k={r['k']}: {r['accuracy']:.3f}" for r in sw["per_k"])
    lines = [
        HEADING,
        "",
        "**SYNTHETIC bank** (bench/synthetic.py, seeded): speed figures only, not model results.",
        "",
        f"Command: `{' '.join(['.venv/bin/python', 'bench/foundation.py', *argv])}`",
        "",
        f"Machine: {os.cpu_count()} cores, {platform.machine()}, Python "
        f"{platform.python_version()}, SQLite file in WAL mode. Load average {load[0]:.1f} / "
        f"{load[1]:.1f} / {load[2]:.1f} at the end of the run (the import's two threads alone "
        "make about 2; more means other work shared the CPU and the figures are conservative).",
        "",
        "| figure | value | target |",
        "|---|---|---|",
        f"| bank | {imp['rows']:,} rows ({imp['bank_file']}, {imp['bank_mib']} MiB gzip) | |",
        f"| import | {imp['import_s']:.1f} s = **{imp['import_rows_per_s']:,.0f} rows/s** "
        f"({imp['import_cpu_s']:.1f} s CPU, both threads), peak {imp['import_peak_gib']:.2f} GiB"
        " | ≥ 100,000 rows/s "
        f"({mark[ok['import_rows_per_s']]}) |",
        f"| import again (adds nothing) | {imp['reimport_s']:.1f} s = "
        f"**{imp['reimport_s'] / imp['import_s']:.2f}×** the import | ≤ 1.2× "
        f"({mark[imp['reimport_s'] / imp['import_s'] <= 1.2]}) |",
        f"| sweep: load {sw['model']} into arrays (first / again, from the columnar cache) | "
        f"{sw['load_s']:.1f} s / {sw['load_again_s']:.2f} s | |",
        f"| sweep: majority k = 1..{sw['per_k'][-1]['k']} ({len(sw['per_k'])} runs, "
        f"{sw['decisions']:,} decision rows written) | {sw['runs_s']:.1f} s = "
        f"**{sw['decisions_per_s']:,.0f} decisions/s** | |",
        f"| the same runs in memory (no writes) | {sw['memory_s']:.1f} s: writing costs "
        f"**{sw['runs_s'] / sw['memory_s']:.2f}×** | ≤ 1.3× "
        f"({mark[sw['runs_s'] / sw['memory_s'] <= 1.3]}) |",
        f"| whole sweep (load + runs) | **{sw['sweep_wall_s']:.1f} s** "
        f"({sw['sweep_cpu_s']:.1f} s CPU), peak "
        f"**{sw['sweep_peak_gib']:.2f} GiB** RSS | < 30 s ({mark[ok['sweep_wall_s']]}), "
        f"< 4 GiB ({mark[ok['sweep_peak_gib']]}) |",
        "",
        f"Majority-vote accuracy on the synthetic bank (sanity check that voting helps): {acc}.",
        "",
        NOTES,
    ]
    return "\n".join(lines)


def write_section(text: str) -> None:
    """Replace (or append) only this benchmark's section of RESULTS.md."""
    old = RESULTS.read_text(encoding="utf-8") if RESULTS.is_file() else "# Benchmark results\n"
    lines = old.splitlines(keepends=True)
    start = next((i for i, ln in enumerate(lines) if ln.strip() == HEADING), None)
    if start is None:
        body = old.rstrip("\n") + "\n\n" + text
    else:
        end = next(
            (i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines)
        )
        body = "".join(lines[:start]) + text + ("\n" if end < len(lines) else "")
        body += "".join(lines[end:])
    RESULTS.write_text(body, encoding="utf-8")


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--queries", type=int, default=10_000)
    ap.add_argument("--models", type=int, default=6)
    ap.add_argument("--samples", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--model", default=None, help="model of the sweep (default: the median one)")
    ap.add_argument("--write", action="store_true", help="update bench/RESULTS.md")
    ap.add_argument("--phase", choices=["sweep"], help=argparse.SUPPRESS)
    ap.add_argument("--db", help=argparse.SUPPRESS)
    ap.add_argument("--task", help=argparse.SUPPRESS)
    ap.add_argument("--bank", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.phase == "sweep":
        print(json.dumps(phase_sweep(a)))
        return
    imp = phase_import(a)
    print(
        f"import: {imp['rows']:,} rows in {imp['import_s']:.1f} s = "
        f"{imp['import_rows_per_s']:,.0f} rows/s (again: {imp['reimport_s']:.1f} s)",
        flush=True,
    )
    model = a.model or imp["models"][len(imp["models"]) // 2]
    sweep_options = {
        "--phase": "sweep",
        "--db": imp["db"],
        "--task": imp["task"],
        "--bank": imp["bank"],
        "--model": model,
        "--samples": str(a.samples),
    }
    sweep_cmd = [sys.executable, __file__, *(x for option in sweep_options.items() for x in option)]
    child = subprocess.run(sweep_cmd, check=True, capture_output=True, text=True)
    sw = json.loads(child.stdout.strip().splitlines()[-1])
    print(
        f"sweep: {sw['decisions']:,} decisions in {sw['runs_s']:.1f} s = "
        f"{sw['decisions_per_s']:,.0f}/s; whole sweep {sw['sweep_wall_s']:.1f} s, "
        f"peak {sw['sweep_peak_gib']:.2f} GiB",
        flush=True,
    )
    text = markdown(imp, sw, [x for x in argv if x != "--write"])
    print(text)
    if a.write:
        write_section(text)


if __name__ == "__main__":
    main()
