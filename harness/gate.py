"""``uisbench gate``: re-run a baseline's configurations and compare them paired, for CI.

The gate replays each configuration of a committed baseline (a result file, see
:mod:`uisbench.results.export`) with the current code, on the same bank (checked by content
digest) and the same seeds unless told otherwise, then compares query by query
(:mod:`uisbench.results.compare`). Runs are always executed afresh (``force``): a run of the
same definition made by older code must not stand in for the code under test. With no ``--db``
the runs go to a throw-away SQLite database.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from uisbench.errors import UisbenchError
from uisbench.job import resolve_bank, shipped_banks
from uisbench.results.compare import Comparison, Tolerances, compare
from uisbench.results.export import ResultSet, load_results, read_results
from uisbench.store.bankfile import bank_name_from_path
from uisbench.store.digest import bank_digest
from uisbench.store.engine import open_engine


@contextmanager
def _engine(db: str | None) -> Iterator[Engine]:
    if db is not None:
        yield open_engine(db)
        return
    with tempfile.TemporaryDirectory(prefix="uisbench-gate-") as tmp:
        engine = open_engine(str(Path(tmp) / "gate.db"))
        try:
            yield engine
        finally:
            engine.dispose()


def _bank(engine: Engine, baseline: ResultSet, bank_ref: str | None) -> str:
    """The bank to replay: ``--bank`` (name or file), else the shipped file of that name."""
    if bank_ref is None:
        shipped = [p for p in shipped_banks() if bank_name_from_path(p) == baseline.bank]
        if not shipped:
            raise UisbenchError(
                f"the baseline's bank {baseline.bank!r} does not ship with uisbench; "
                "give it with --bank FILE"
            )
        bank_ref = str(shipped[0])
    bank = resolve_bank(engine, bank_ref)
    with engine.connect() as conn:
        digest = bank_digest(conn, bank)
    if digest != baseline.digest:
        raise UisbenchError(
            f"the baseline was made on another bank: it names {baseline.bank!r} {baseline.digest}, "
            f"but {bank!r} here is {digest}; re-make the baseline (uisbench results export)"
        )
    return bank


def rerun(
    engine: Engine,
    bank: str,
    baseline: ResultSet,
    seeds: Sequence[int] | None = None,
    isolation: str = "auto",
) -> list[int]:
    """Run every configuration of the baseline afresh; returns the new run ids. ``isolation``
    is ``auto`` (plugins in their own process) or ``process`` (every strategy: verifying a
    submitted result), never ``inprocess``."""
    if isolation not in ("auto", "process"):
        raise UisbenchError("the gate runs strategies isolated: auto or process")
    from uisbench.runner import Runner

    runners: dict[tuple, Runner] = {}
    run_ids: list[int] = []
    done: set[tuple] = set()
    for run in baseline.runs:
        models = tuple(run.models)
        # the baseline's caching assumption, so that costs compare like with like
        where = (run.task, models, run.split_seed or 0, run.prefix_cache)
        if where not in runners:
            runners[where] = Runner(
                engine,
                run.task,
                bank,
                list(models),
                run.split_seed or 0,
                run.prefix_cache,
                isolation=isolation,
            )
        for seed in seeds if seeds else [run.seed]:
            if (where, run.config, seed) in done:
                continue
            done.add((where, run.config, seed))
            # by name: a strategy not shipped with uisbench runs in its own process (always
            # "auto" here, never in-process), and its module is not imported by the gate
            strategy = (run.strategy, {k: _text(v) for k, v in run.params.items()})
            run_ids.append(runners[where].run(strategy, seed, force=True).run_id)
    return run_ids


def _text(value: Any) -> str:
    """An option as the command line gives it, so that a baseline's options are converted and
    checked (types, bounds) exactly like ``--strategy name:key=value``."""
    if isinstance(value, list):
        return "+".join(value)
    if value is None or isinstance(value, bool):
        return str(value).lower()
    return str(value)


def run_gate(
    baseline_path: Path,
    bank_ref: str | None = None,
    db: str | None = None,
    seeds: Sequence[int] | None = None,
    tolerances: Tolerances | None = None,
    isolation: str = "auto",
) -> Comparison:
    """Re-run the baseline's configurations and compare; bad input raises UisbenchError."""
    baseline = read_results(baseline_path)
    with _engine(db) as engine:
        bank = _bank(engine, baseline, bank_ref)
        candidate = load_results(engine, rerun(engine, bank, baseline, seeds, isolation))
    return compare(baseline, candidate, tolerances)
