"""A run's rows: the ``runs`` row that names and resumes it, its decisions, its close.

The runner decides what a run is; this module is every statement it makes on ``runs`` and
``decisions``. A run is opened by its key (created when new, its decided queries read back
when resumed), its decisions are written chunk by chunk as idempotent bulk inserts (unique per
run and query, so a resumed run writes only what is missing), and it is closed once: the
evaluation figures merged into the decisions' ``extra``, the accuracy computed from the stored
rows, the summary and ``complete`` status written, all in one transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, func, select

from uisbench.errors import UisbenchError
from uisbench.store import schema
from uisbench.store.dialect import bool_mean, bulk_insert_ignore, insert_ignore

runs, decisions = schema.runs, schema.decisions

#: Column order of the decision tuples :func:`write_decisions` takes.
DECISION_COLUMNS = (
    "run_id",
    "query_id",
    "position",
    "arms",
    "samples_used",
    "answer",
    "correct",
    "input_tokens",
    "output_tokens",
    "flops",
    "dollars",
    "latency_s",
    "param_calls",
    "reward",
    "extra",
)


@dataclass(frozen=True)
class OpenedRun:
    """A run as :func:`open_run` found or created it."""

    id: int
    complete: bool
    decided: frozenset[int]  # query ids whose decision row is already written


def now() -> datetime:
    """A run's timestamps: aware, in UTC."""
    return datetime.now(timezone.utc)


def task_id(engine: Engine, task: str) -> int:
    """The id of a task the working set was loaded from (it exists)."""
    with engine.connect() as conn:
        return conn.execute(
            select(schema.tasks.c.id).where(schema.tasks.c.name == task)
        ).scalar_one()


def open_run(
    engine: Engine, key: str, new_row: Callable[[], Mapping[str, Any]], *, force: bool = False
) -> OpenedRun:
    """The run keyed ``key`` as stored, or (none stored, or ``force``: after deleting it) a
    new one, whose ``runs`` row ``new_row()`` builds."""
    with engine.begin() as conn:
        found = _by_key(conn, key)
        if found is not None and force:
            _delete(conn, found[0])
            found = None
        if found is None:
            insert_ignore(conn, runs, [{**new_row(), "run_key": key}])
            found = _by_key(conn, key)
        run_id, status = found
        decided = conn.execute(select(decisions.c.query_id).where(decisions.c.run_id == run_id))
        return OpenedRun(run_id, status == "complete", frozenset(decided.scalars()))


def _by_key(conn: Connection, key: str) -> tuple[int, str] | None:
    row = conn.execute(select(runs.c.id, runs.c.status).where(runs.c.run_key == key)).first()
    return None if row is None else (row[0], row[1])


def write_decisions(engine: Engine, rows: Sequence[tuple]) -> int:
    """Insert decision rows (:data:`DECISION_COLUMNS` order) in one transaction, skipping any
    already written; returns how many were new."""
    if not rows:
        return 0
    with engine.begin() as conn:
        return bulk_insert_ignore(conn, decisions, DECISION_COLUMNS, rows)


def close_run(
    engine: Engine,
    run_id: int,
    summary: Mapping[str, Any],
    figures: Mapping[int, dict] | None = None,
) -> float:
    """Complete the run in one transaction: merge ``figures`` (per query id, evaluation-only
    values) into its decisions' ``extra``, then store ``summary`` with the accuracy of its
    decision rows first. Returns that accuracy."""
    with engine.begin() as conn:
        if figures:
            _merge_extra(conn, run_id, figures)
        acc = _accuracy(conn, run_id)
        conn.execute(
            runs.update()
            .where(runs.c.id == run_id)
            .values(status="complete", ended_at=now(), summary={"accuracy": acc, **summary})
        )
    return acc


def _merge_extra(conn: Connection, run_id: int, figures: Mapping[int, dict]) -> None:
    d = decisions
    rows = conn.execute(select(d.c.id, d.c.query_id, d.c.extra).where(d.c.run_id == run_id))
    params = [
        {"row": i, "extra": {**(extra or {}), **figures.get(int(q), {})}} for i, q, extra in rows
    ]
    stmt = d.update().where(d.c.id == bindparam("row")).values(extra=bindparam("extra"))
    conn.execute(stmt, params)


def complete_runs(engine: Engine, task_id: int, bank_id: int) -> dict[str, tuple[int, float]]:
    """Run key -> (id, accuracy) of every complete run on (task, bank), in two queries: the
    resume checks of a whole job at once."""
    on_set = (runs.c.task_id == task_id, runs.c.bank_id == bank_id, runs.c.status == "complete")
    with engine.connect() as conn:
        ids = dict(conn.execute(select(runs.c.run_key, runs.c.id).where(*on_set)).tuples().all())
        means = conn.execute(
            select(decisions.c.run_id, bool_mean(decisions.c.correct))
            .where(decisions.c.run_id.in_(select(runs.c.id).where(*on_set)))
            .group_by(decisions.c.run_id)
        )
        acc = {run_id: float(mean or 0.0) for run_id, mean in means}
    return {key: (run_id, acc.get(run_id, 0.0)) for key, run_id in ids.items()}


def accuracy(engine: Engine, run_id: int) -> float:
    """Share of the run's decision rows that are correct."""
    with engine.connect() as conn:
        return _accuracy(conn, run_id)


def _accuracy(conn: Connection, run_id: int) -> float:
    mean = select(bool_mean(decisions.c.correct)).where(decisions.c.run_id == run_id)
    return float(conn.execute(mean).scalar() or 0.0)


def drop_if_empty(engine: Engine, run_id: int) -> None:
    """Delete a run that has no decision row (it failed before deciding anything)."""
    with engine.begin() as conn:
        n = conn.execute(
            select(func.count()).select_from(decisions).where(decisions.c.run_id == run_id)
        ).scalar_one()
        if n == 0:
            _delete(conn, run_id)


def delete_run(engine: Engine, run_id: int) -> None:
    """Delete a run and its decisions (a failed isolated run leaves nothing half-written)."""
    with engine.begin() as conn:
        _delete(conn, run_id)


def _delete(conn: Connection, run_id: int) -> None:
    conn.execute(decisions.delete().where(decisions.c.run_id == run_id))
    conn.execute(runs.delete().where(runs.c.id == run_id))


def upgrade_from_4(engine: Engine) -> None:
    """Schema 4 → 5: drop ``runs.mode`` (always "replay"). Runs keep their keys (the run's
    definition still names the mode), so they resume and are skipped as before."""
    if engine.dialect.name == "sqlite":
        import sqlite3

        if sqlite3.sqlite_version_info < (3, 35):
            raise UisbenchError(
                f"upgrading this database to schema version 5 needs SQLite 3.35 or newer "
                f"(ALTER TABLE DROP COLUMN); this Python has SQLite {sqlite3.sqlite_version}"
            )
    version = schema.meta.c.key == "schema_version"
    with engine.begin() as conn:
        found = conn.execute(select(schema.meta.c.value).where(version)).scalar()
        if found != "4":  # another process upgraded it while this one waited for the lock
            return
        conn.exec_driver_sql("ALTER TABLE runs DROP COLUMN mode")
        conn.execute(schema.meta.update().where(version).values(value=str(schema.SCHEMA_VERSION)))
