"""``uisbench run``: resolve task and bank, expand strategies into settings, run them all.

With no arguments it runs the default job: every registered strategy's default sweep on the
bank shipped with uisbench, then prints the report (and builds the site when it can).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine

from uisbench.errors import UisbenchError
from uisbench.progress import progress_bar
from uisbench.store.lookups import banks_with_task, tasks_in_bank

DEFAULT_SEEDS = (0, 1, 2)
#: What `uisbench run --live` generates when not told otherwise: the shipped bank's recipe.
DEFAULT_LIVE: dict = {
    "task": "arith-smoke",
    "pool": "cpu-tiny",
    "k": 8,
    "task_overrides": {
        "levels": ["add1", "sub1", "mul1"],
        "n_per_level": 40,
        "n_train_per_level": 20,
    },
}


@dataclass
class RunRequest:
    task: str | None = None
    strategies: list[str] = field(default_factory=list)
    seeds: list[int] = field(default_factory=lambda: [0])
    bank: str | None = None
    models: list[str] | None = None
    split_seed: int = 0
    force: bool = False
    report: bool = True
    db: str | None = None
    live: bool = False
    pool: str | None = None
    k: int | None = None
    backend: str | None = None
    limit: int | None = None


def shipped_banks() -> list[Path]:
    """Bank files that ship inside the package (the default job's data)."""
    import uisbench

    folder = Path(uisbench.__file__).resolve().parent / "data" / "banks"
    return sorted(folder.glob("*.jsonl.gz")) if folder.is_dir() else []


def resolve_bank(engine: Engine, ref: str) -> str:
    """A bank name in the database, or a file that is imported (idempotently) first."""
    path = Path(ref)
    if path.suffix in (".jsonl", ".gz") or path.is_file():
        from uisbench.store.bank import import_file
        from uisbench.store.bankfile import models_file_beside
        from uisbench.tasks import task_description

        return import_file(engine, path, models_file_beside(path), describe=task_description).bank
    return ref


def plan(engine: Engine, req: RunRequest) -> list[tuple[str, str]]:
    """(task, bank) pairs the request covers."""
    if req.live:
        return [(req.task or DEFAULT_LIVE["task"], _record_live(engine, req))]
    if req.bank:
        bank = resolve_bank(engine, req.bank)
        tasks = tasks_in_bank(engine, bank)
        if req.task:
            if req.task not in tasks:
                raise UisbenchError(
                    f"unknown task {req.task!r} in bank {bank!r} (it holds: {', '.join(tasks)})"
                )
            tasks = [req.task]
        return [(t, bank) for t in tasks]
    if req.task:
        banks = banks_with_task(engine, req.task)
        if len(banks) == 1:
            return [(req.task, banks[0])]
        if banks:
            raise UisbenchError(
                f"task {req.task!r} is in several banks ({', '.join(banks)}); "
                "choose one with --bank"
            )
        raise UisbenchError(
            f"unknown task {req.task!r}: no bank in the database holds it "
            "(import one with `uisbench bank import` or give --bank FILE)"
        )
    shipped = shipped_banks()
    if not shipped:
        raise UisbenchError(
            "uisbench run needs a bank: give --bank FILE.jsonl[.gz] (the flat outcome format) "
            "or --task NAME of an imported bank; no default bank ships with this install"
        )
    return [(t, b) for ref in shipped for b in [resolve_bank(engine, str(ref))]
            for t in tasks_in_bank(engine, b)]  # fmt: skip


def _record_live(engine: Engine, req: RunRequest) -> str:
    """Generate (or top up) a live bank through the backend; strategies then draw from it."""
    from uisbench.live import record

    task = req.task or DEFAULT_LIVE["task"]
    stats = record(
        engine,
        task,
        req.pool or DEFAULT_LIVE["pool"],
        req.k or DEFAULT_LIVE["k"],
        limit=req.limit,
        splits=("train", "test"),
        models=req.models,
        backend=req.backend,
        task_overrides=DEFAULT_LIVE["task_overrides"] if task == DEFAULT_LIVE["task"] else None,
    )
    print(
        f"live bank {stats.bank}: {stats.generated} samples generated, {stats.already} held",
        file=sys.stderr,
    )
    return stats.bank


def expand(strategies: list[str], runner) -> list[str]:
    """Explicit specs as given; none means every registered strategy's default sweep."""
    from uisbench.strategies.base import STRATEGIES, config_label, make_strategy

    if strategies:
        for spec in strategies:
            make_strategy(spec)  # validate every spec before running any
        return strategies
    out = []
    for name, cls in STRATEGIES.all().items():
        for params in cls.sweep(runner.models, runner.max_k()):
            out.append(config_label(name, params))
    return out


def run_job(req: RunRequest) -> None:
    from uisbench.runner import Runner
    from uisbench.store.engine import open_engine

    engine = open_engine(req.db)
    seeds = req.seeds
    default_job = not (req.task or req.bank or req.strategies or req.live)
    if default_job and seeds == [0]:
        seeds = list(DEFAULT_SEEDS)
    pairs = plan(engine, req)
    work = []
    for task, bank in pairs:
        runner = Runner(engine, task, bank, req.models, req.split_seed)
        for spec in expand(req.strategies, runner):
            for seed in seeds:
                work.append((runner, spec, seed))
    resumed = skipped = 0
    with progress_bar(transient=True) as progress:
        overall = progress.add_task("runs", total=len(work))
        current = progress.add_task("", total=1)
        for runner, spec, seed in work:
            progress.update(current, description=f"{runner.task} {spec} seed={seed}",
                            completed=0)  # fmt: skip

            def tick(done: int, total: int) -> None:
                progress.update(current, completed=done, total=total)

            result = runner.run(spec, seed, force=req.force, progress=tick)
            resumed += result.resumed
            skipped += result.skipped
            progress.advance(overall)
    print(
        f"{len(work)} runs on {len(pairs)} task(s): {len(work) - skipped} executed "
        f"({resumed} resumed), {skipped} already complete",
        file=sys.stderr,
    )
    if req.report:
        from uisbench.results.report import print_report

        for task in sorted({t for t, _ in pairs}):
            print_report(engine, task)
    if default_job:
        _build_site(engine)


def _build_site(engine: Engine) -> None:
    try:
        from uisbench.site.build import build_site
    except ImportError:  # the site builder is optional at this layer
        return
    out = build_site(engine)
    print(f"leaderboard written to {out / 'index.html'}", file=sys.stderr)
