"""``uisbench run``: resolve task and bank, expand strategies into settings, run them all.

With no arguments it runs the default job: every registered strategy's default sweep on the
bank shipped with uisbench, then prints the report (and builds the site when it can).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine

from uisbench.costs import DEFAULT_PREFIX_CACHE, PrefixCache
from uisbench.errors import UisbenchError
from uisbench.progress import progress_bar
from uisbench.store.lookups import banks_with_task, tasks_in_bank

if TYPE_CHECKING:
    from uisbench.runner import Runner

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
    seeds: list[int] | None = None  # None: three seeds for the default job, else seed 0
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
    endpoints: list[str] | None = None
    limit: int | None = None
    prefix_cache: str | None = None  # none | full | block:N; None: the pool's, else block:16
    task_args: dict = field(default_factory=dict)  # with live: the task's options (--task-arg)
    isolation: str = "auto"  # auto | process | inprocess (uisbench.runner)
    jobs: int = 1  # worker processes (uisbench.parallel); 1: every run in this process
    executor: str = "local"  # local | ray
    address: str | None = None  # with ray: the cluster (None: a local one)


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
    """(task, bank) pairs the request covers: the live bank it records, the tasks of the bank it
    names, the one bank that holds the task it names, or else every task of the shipped banks."""
    if req.live:
        return [(req.task or DEFAULT_LIVE["task"], _record_live(engine, req))]
    if req.bank:
        return _tasks_of_bank(engine, req.bank, req.task)
    if req.task:
        return [(req.task, _bank_holding(engine, req.task))]
    return _shipped_pairs(engine)


def _tasks_of_bank(engine: Engine, ref: str, task: str | None) -> list[tuple[str, str]]:
    """The bank's tasks (only ``task`` when given, which the bank must hold)."""
    bank = resolve_bank(engine, ref)
    tasks = tasks_in_bank(engine, bank)
    if not task:
        return [(t, bank) for t in tasks]
    if task not in tasks:
        raise UisbenchError(
            f"unknown task {task!r} in bank {bank!r} (it holds: {', '.join(tasks)})"
        )
    return [(task, bank)]


def _bank_holding(engine: Engine, task: str) -> str:
    """The one bank in the database that holds ``task``."""
    banks = banks_with_task(engine, task)
    if len(banks) == 1:
        return banks[0]
    if banks:
        raise UisbenchError(
            f"task {task!r} is in several banks ({', '.join(banks)}); choose one with --bank"
        )
    raise UisbenchError(
        f"unknown task {task!r}: no bank in the database holds it "
        "(import one with `uisbench bank import` or give --bank FILE)"
    )


def _shipped_pairs(engine: Engine) -> list[tuple[str, str]]:
    """Every task of every bank shipped with uisbench (imported first if needed)."""
    shipped = shipped_banks()
    if not shipped:
        raise UisbenchError(
            "uisbench run needs a bank: give --bank FILE.jsonl[.gz] (the flat outcome format) "
            "or --task NAME of an imported bank; no default bank ships with this install"
        )
    pairs = []
    for ref in shipped:
        bank = resolve_bank(engine, str(ref))
        pairs += [(t, bank) for t in tasks_in_bank(engine, bank)]
    return pairs


def _record_live(engine: Engine, req: RunRequest) -> str:
    """Generate (or top up) a live bank through the backend; strategies then draw from it."""
    from uisbench.progress import progress_bar, rate_ticker

    task = req.task or DEFAULT_LIVE["task"]
    with progress_bar(rate=True) as bar:  # a recording of minutes is never silent
        tick = rate_ticker(bar, bar.add_task("live samples", total=None, rate=""), "samples")
        stats = _record(engine, req, task, tick)
    print(
        f"live bank {stats.bank}: {stats.generated} samples generated, {stats.already} held",
        file=sys.stderr,
    )
    return stats.bank


def _record(engine: Engine, req: RunRequest, task: str, tick):
    from uisbench.live import RecordRequest, record

    splits = ("train", "test")
    recording = RecordRequest(
        task,
        req.pool or DEFAULT_LIVE["pool"],
        req.k or DEFAULT_LIVE["k"],
        limit=req.limit,
        splits=splits,
        models=req.models,
        backend=req.backend,
        endpoints=req.endpoints,
        task_overrides=live_task_args(task, req.task_args, splits),
    )
    return record(engine, recording, progress=tick)


def live_task_args(task: str, given: dict, splits: tuple[str, ...]) -> dict:
    """The task options a live recording uses: the default recipe's for the default task, with
    what --task-arg gives on top; a list of data files paired with the splits."""
    from uisbench.tasks import pair_data_files

    base = dict(DEFAULT_LIVE["task_overrides"]) if task == DEFAULT_LIVE["task"] else {}
    return pair_data_files({**base, **given}, splits)


def expand(strategies: list[str], runner) -> list[str]:
    """Explicit specs as given (:func:`preflight` checks them); none means every registered
    strategy's default sweep. An isolated strategy is swept by its own process (its module is
    not imported here). A third-party plugin that cannot be loaded or swept is skipped with one
    line (the rest still run); a strategy shipped with uisbench fails the job."""
    from uisbench.strategies.base import STRATEGIES

    if strategies:
        return list(strategies)
    out = []
    for name in STRATEGIES.names():
        try:
            specs, why = runner.default_specs(name)
        except Exception as exc:
            if not third_party(name):
                raise
            print(
                f"skipped: plugin {name} cannot be loaded or swept: {one_line(exc)}",
                file=sys.stderr,
            )
            continue
        if why:
            print(f"skipped: {why}", file=sys.stderr)
        out += specs
    return out


def third_party(name: str) -> bool:
    """Is ``name`` a plugin some other distribution registers (a reference counts as one, and
    so does a name two other distributions claim)?"""
    from uisbench.strategies.base import STRATEGIES, is_reference

    if is_reference(name):
        return True
    try:
        return not STRATEGIES.shipped(name)
    except UisbenchError:
        return True


def one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    if not isinstance(exc, UisbenchError):
        text = f"{type(exc).__name__}: {text}"
    return text[:300]


def prefix_cache(req: RunRequest) -> str:
    """The run's prefix-cache setting: as asked, else the live pool's default, else block:16."""
    if req.prefix_cache:
        return str(PrefixCache.parse(req.prefix_cache))
    if req.live:
        from uisbench.live.pools import pool_prefix_cache

        pooled = pool_prefix_cache(req.pool or DEFAULT_LIVE["pool"])
        if pooled:
            return str(PrefixCache.parse(pooled))
    return DEFAULT_PREFIX_CACHE


def run_job(req: RunRequest) -> None:
    """Run every strategy spec × seed on each (task, bank) of :func:`plan`, then print the report;
    the default job (no task, bank, strategy or --live) runs three seeds and builds the site."""
    from uisbench.store.engine import open_engine

    engine = open_engine(req.db)
    default_job = not (req.task or req.bank or req.strategies or req.live)
    seeds = list(req.seeds) if req.seeds else list(DEFAULT_SEEDS) if default_job else [0]
    prefix_cache(req)  # a bad setting stops the job before any bank is imported
    pairs = plan(engine, req)
    work = _work_list(engine, pairs, req, seeds)
    if req.executor != "local" or (req.jobs > 1 and len(work) > 1):
        resumed, skipped, failed = _execute_parallel(work, req, tolerant=not req.strategies)
    else:
        resumed, skipped, failed = _execute(work, req.force, tolerant=not req.strategies)
    print(
        f"{len(work)} runs on {len(pairs)} task(s): {len(work) - skipped - failed} executed "
        f"({resumed} resumed), {skipped} already complete"
        + (f", {failed} of broken plugins skipped" if failed else ""),
        file=sys.stderr,
    )
    if req.report:
        from uisbench.results.report import print_report

        for task in sorted({t for t, _ in pairs}):
            print_report(engine, task)
    if default_job:
        _build_site(engine, site_folder(req.db), req.jobs)


def _work_list(
    engine: Engine, pairs: list[tuple[str, str]], req: RunRequest, seeds: list[int]
) -> list[tuple[Runner, str, int]]:
    """(runner, strategy spec, seed) for every run the job asks for, in order."""
    from uisbench.runner import Runner

    work, problems = [], []
    for task, bank in pairs:
        runner = Runner(
            engine, task, bank, req.models, req.split_seed, prefix_cache(req), req.isolation
        )
        specs = expand(req.strategies, runner)
        if req.strategies:
            problems += [f"{why} (task {task})" for why in preflight(runner, specs)]
        work += [(runner, spec, seed) for spec in specs for seed in seeds]
    if problems:  # every strategy is checked before any runs: nothing is committed
        raise UisbenchError("; ".join(problems))
    return work


#: Strategy options that name models of the bank.
MODEL_OPTIONS = ("model", "strong", "weak", "models")


def preflight(runner: Runner, specs: list[str]) -> list[str]:
    """Why each named strategy cannot run on the runner's working set (one clause each): it
    needs what the bank lacks, or an option names a model the bank does not hold. Each spec is
    described once, here (an isolated plugin by its own process): an invalid one fails."""
    problems = []
    for spec in specs:
        strat = runner.describe(spec)
        why = runner.cannot_run(strat)
        if why:
            problems.append(f"cannot run {strat.label()}: {why}")
        for name in MODEL_OPTIONS:
            value = getattr(strat.params, name, None)
            named = [value] if isinstance(value, str) and value else list(value or ())
            unknown = [m for m in named if isinstance(m, str) and m not in runner.models]
            if unknown and isinstance(value, (str, tuple, list)):
                what = "model" if len(unknown) == 1 else "models"
                problems.append(
                    f"cannot run {strat.label()}: unknown {what} {', '.join(map(repr, unknown))} "
                    f"(the bank holds: {', '.join(runner.models)})"
                )
    return problems


def _execute(
    work: list[tuple[Runner, str, int]], force: bool, tolerant: bool = False
) -> tuple[int, int, int]:
    """Run the work list under a progress bar; returns how many runs resumed, were skipped
    (already complete) and were left out (a broken plugin's). ``tolerant`` (strategies not
    named on the command line): a third-party plugin whose run fails is skipped with one line,
    its other runs with it, and the rest run (its failed run leaves no row)."""
    from uisbench.strategies.base import parse_spec

    resumed = skipped = 0
    failed: set[str] = set()
    n_failed = 0
    with progress_bar(transient=True) as progress:
        overall = progress.add_task("runs", total=len(work))
        current = progress.add_task("", total=1)

        def tick(done: int, total: int) -> None:
            progress.update(current, completed=done, total=total)

        for runner, spec, seed in work:
            name = parse_spec(spec)[0]
            if name in failed:
                n_failed += 1
                progress.advance(overall)
                continue
            progress.update(current, description=f"{runner.task} {spec} seed={seed}", completed=0)
            try:
                result = runner.run(spec, seed, force=force, progress=tick)
            except UisbenchError as exc:
                if not (tolerant and third_party(name)):
                    raise
                failed.add(name)
                n_failed += 1
                print(f"skipped: plugin {name} cannot run: {one_line(exc)}", file=sys.stderr)
                progress.advance(overall)
                continue
            resumed += result.resumed
            skipped += result.skipped
            progress.advance(overall)
    return resumed, skipped, n_failed


def _execute_parallel(
    work: list[tuple[Runner, str, int]], req: RunRequest, tolerant: bool = False
) -> tuple[int, int, int]:
    """:func:`_execute` on ``req.jobs`` workers (:mod:`uisbench.parallel`): the bar counts runs
    as their rows are written; ``tolerant`` as there (a failing third-party plugin is skipped
    with one line, its runs not yet sent with it)."""
    from uisbench.parallel import run_parallel

    def tolerate(name: str, exc: UisbenchError) -> bool:
        if not (tolerant and third_party(name)):
            return False
        print(f"skipped: plugin {name} cannot run: {one_line(exc)}", file=sys.stderr)
        return True

    resumed = skipped = failed = 0
    results = run_parallel(work, req.force, req.jobs, req.executor, req.address, tolerate)
    with progress_bar(transient=True) as progress:
        overall = progress.add_task(f"runs ({req.jobs} workers, {req.executor})", total=len(work))
        for result in results:
            if result is None:
                failed += 1
            else:
                resumed += result.resumed
                skipped += result.skipped
            progress.advance(overall)
    return resumed, skipped, failed


def site_folder(db: str | None) -> Path:
    """Where the default job writes its site: ``_site/`` beside the SQLite file it ran into
    (so ``--db X`` keeps X's site with X), else ``_site/`` in the working directory."""
    from uisbench.store.engine import resolve_url

    url = resolve_url(db)
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        return Path(url.removeprefix("sqlite:///")).parent / "_site"
    return Path.cwd() / "_site"


def _build_site(engine: Engine, out: Path, jobs: int) -> None:
    from uisbench.progress import progress_bar, site_progress
    from uisbench.site.build import build_site

    with progress_bar(transient=True) as bar:
        out = build_site(engine, out, progress=site_progress(bar), jobs=jobs)
    print(f"leaderboard written to {out / 'index.html'}", file=sys.stderr)
