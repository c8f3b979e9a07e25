"""A run's rows: the ``runs`` row that names and resumes it, its decisions, its close.

The runner decides what a run is; this module is every statement it makes on ``runs`` and
``decisions``. A run is looked up by its key (read only: complete, or the queries it already
decided); a new run's row is written with its first decision rows, so a run that fails before
deciding anything leaves nothing. Decision rows are idempotent bulk inserts (unique per run and
query), so a resumed run writes only what is missing, and the close (the last rows, evaluation
figures merged into the decisions' ``extra``, the accuracy computed from the stored rows, the
summary and ``complete`` status) is one transaction.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, case, func, select

from uisbench.errors import UisbenchError
from uisbench.store import schema
from uisbench.store.dialect import bulk_insert_ignore, in_parts, insert_ignore

runs, decisions = schema.runs, schema.decisions

#: Column order of the decision tuples :class:`RunRows` takes: every column of ``decisions``
#: but ``id`` and ``run_id`` (the run's own, written into the statement).
DECISION_COLUMNS = (
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


class RunRows:
    """One run's rows: found by its key, or new. A new run's ``runs`` row is written with its
    first decisions (a run that fails before deciding leaves nothing), each batch of rows is
    committed as it comes, and the last batch with the close, in one transaction."""

    def __init__(
        self,
        engine: Engine,
        key: str,
        run_id: int | None,
        complete: bool,
        decided: frozenset[int],
        new_row: Mapping[str, Any] | None = None,
    ) -> None:
        self.engine, self.key = engine, key
        self.id = run_id  # None: not stored yet
        self.complete = complete
        self.decided = decided  # query ids whose decision row is already written
        self._new_row = new_row
        self._wrote = False  # some decision rows committed by this object before the close

    def create(self) -> None:
        """Write a new run's ``runs`` row now (its id then follows the order runs were opened
        in, not the order they finish in)."""
        if self.id is None:
            self.write(())

    def write(self, rows: Sequence[tuple]) -> None:
        """Commit decision rows (:data:`DECISION_COLUMNS` order), skipping any already
        written."""
        with self.engine.begin() as conn:
            run_id = self._insert(conn, rows)
        self.id = run_id  # once committed
        self._wrote = self._wrote or bool(rows)

    def close(self, rows: Sequence[tuple], summary: Mapping[str, Any], figures: Mapping) -> float:
        """Complete the run in one transaction: its last ``rows``, then ``figures`` (per query
        id, evaluation-only values) merged into its decisions' ``extra``, then ``summary`` with
        the accuracy of its decision rows first. Returns that accuracy."""
        with self.engine.begin() as conn:
            if self.decided or self._wrote:  # some rows are stored: merge and count there
                run_id = self._insert(conn, rows)
                if figures:
                    _merge_extra(conn, run_id, figures)
                acc = _accuracy(conn, run_id)
            else:  # every row of the run is in hand: the same figures and count, no re-read
                run_id = self._insert(conn, _with_figures(rows, figures) if figures else rows)
                acc = _share(sum(1 for r in rows if r[CORRECT]), len(rows))
            conn.execute(
                runs.update()
                .where(runs.c.id == run_id)
                .values(status="complete", ended_at=now(), summary={"accuracy": acc, **summary})
            )
        self.id = run_id
        return acc

    def _insert(self, conn: Connection, rows: Sequence[tuple]) -> int:
        """The run's id (its ``runs`` row inserted first if new), after inserting ``rows``."""
        run_id = self.id
        if run_id is None:
            insert_ignore(conn, runs, [self._row()])
            run_id = _by_key(conn, self.key)[0]
        if rows:
            bulk_insert_ignore(conn, decisions, DECISION_COLUMNS, rows, {"run_id": run_id})
        return run_id

    def _row(self) -> dict[str, Any]:
        """A new run's ``runs`` row."""
        return {**(self._new_row or {}), "run_key": self.key}

    def discard(self) -> None:
        """Delete the run and its decisions (a failed isolated run leaves nothing)."""
        if self.id is not None:
            delete_run(self.engine, self.id)

    def drop_if_empty(self) -> None:
        """Delete the run if it has no decision row (it failed before deciding anything)."""
        if self.id is not None:
            drop_if_empty(self.engine, self.id)


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
) -> RunRows:
    """The run keyed ``key``: as stored, with the queries it decided (read only), or a new one
    whose ``runs`` row ``new_row()`` builds now; with ``force``, the stored one is deleted."""
    if force:
        with engine.begin() as conn:
            found = _by_key(conn, key)
            if found is not None:
                _delete(conn, found[0])
        return RunRows(engine, key, None, False, frozenset(), new_row())
    with engine.connect() as conn:
        stored = _stored(engine, conn, [key])
    return stored.get(key) or RunRows(engine, key, None, False, frozenset(), new_row())


def open_runs(
    engine: Engine, wanted: Sequence[tuple[str, Callable[[], Mapping[str, Any]]]]
) -> list[RunRows]:
    """:func:`open_run` of many runs (key, ``new_row``) at once: their stored state read in one
    connection, and the ``runs`` rows of the new ones written together, in order (their ids
    follow it), in one transaction."""
    with engine.connect() as conn:
        stored = _stored(engine, conn, [key for key, _ in wanted])
    out = [
        stored.get(key) or RunRows(engine, key, None, False, frozenset(), new_row())
        for key, new_row in wanted
    ]
    new = [r for r in out if r.id is None]
    if new:
        with engine.begin() as conn:
            insert_ignore(conn, runs, [r._row() for r in new])
            ids: dict[str, int] = {}
            for part in in_parts([r.key for r in new]):
                q = select(runs.c.run_key, runs.c.id).where(runs.c.run_key.in_(part))
                ids.update((key, run_id) for key, run_id in conn.execute(q))
        for r in new:
            r.id = ids[r.key]
    return out


def _stored(engine: Engine, conn: Connection, keys: Sequence[str]) -> dict[str, RunRows]:
    """The stored runs among ``keys``: complete, or with the query ids they decided."""
    found: dict[str, tuple[int, str]] = {}
    for part in in_parts(keys):
        q = select(runs.c.run_key, runs.c.id, runs.c.status).where(runs.c.run_key.in_(part))
        found.update((key, (run_id, status)) for key, run_id, status in conn.execute(q))
    decided: dict[int, set[int]] = {}
    running = [run_id for run_id, status in found.values() if status != "complete"]
    for part in in_parts(running):
        q = select(decisions.c.run_id, decisions.c.query_id).where(decisions.c.run_id.in_(part))
        for run_id, query in conn.execute(q):
            decided.setdefault(run_id, set()).add(query)
    return {
        key: RunRows(engine, key, run_id, status == "complete", frozenset(decided.get(run_id, ())))
        for key, (run_id, status) in found.items()
    }


def complete_run(engine: Engine, key: str, run_id: int) -> RunRows:
    """A run known to be complete (:func:`complete_runs`)."""
    return RunRows(engine, key, run_id, True, frozenset())


def _by_key(conn: Connection, key: str) -> tuple[int, str] | None:
    row = conn.execute(select(runs.c.id, runs.c.status).where(runs.c.run_key == key)).first()
    return None if row is None else (row[0], row[1])


def _merge_extra(conn: Connection, run_id: int, figures: Mapping[int, dict]) -> None:
    """Evaluation figures (by query id) merged into the stored decisions' ``extra``."""
    d = decisions
    rows = conn.execute(select(d.c.id, d.c.query_id, d.c.extra).where(d.c.run_id == run_id))
    params = [
        {"row": i, "extra": {**(extra or {}), **figures.get(int(q), {})}} for i, q, extra in rows
    ]
    stmt = d.update().where(d.c.id == bindparam("row")).values(extra=bindparam("extra"))
    conn.execute(stmt, params)


#: Positions in a decision tuple (:data:`DECISION_COLUMNS`).
QUERY, CORRECT, EXTRA = (DECISION_COLUMNS.index(c) for c in ("query_id", "correct", "extra"))


def _with_figures(rows: Sequence[tuple], figures: Mapping[int, dict]) -> list[tuple]:
    """Rows not yet written with the figures merged into their ``extra`` (JSON text), as
    :func:`_merge_extra` stores them (``json.dumps`` of the merged dict, every row)."""
    out = []
    for r in rows:
        merged = {**(json.loads(r[EXTRA]) or {}), **figures.get(int(r[QUERY]), {})}
        out.append((*r[:EXTRA], json.dumps(merged), *r[EXTRA + 1 :]))
    return out


def _share(correct: int, n: int) -> float:
    """A run's accuracy from its counts (one division: the same float in every database)."""
    return correct / n if n else 0.0


def complete_runs(engine: Engine, task_id: int, bank_id: int) -> dict[str, tuple[int, float]]:
    """Run key -> (id, accuracy) of every complete run on (task, bank), in two queries: the
    resume checks of a whole job at once."""
    on_set = (runs.c.task_id == task_id, runs.c.bank_id == bank_id, runs.c.status == "complete")
    with engine.connect() as conn:
        ids = dict(conn.execute(select(runs.c.run_key, runs.c.id).where(*on_set)).all())
        counts = conn.execute(
            select(decisions.c.run_id, _n_correct(), func.count())
            .where(decisions.c.run_id.in_(select(runs.c.id).where(*on_set)))
            .group_by(decisions.c.run_id)
        )
        acc = {run_id: _share(int(c or 0), int(n)) for run_id, c, n in counts}
    return {key: (run_id, acc.get(run_id, 0.0)) for key, run_id in ids.items()}


def accuracy(engine: Engine, run_id: int) -> float:
    """Share of the run's decision rows that are correct."""
    with engine.connect() as conn:
        return _accuracy(conn, run_id)


def _accuracy(conn: Connection, run_id: int) -> float:
    q = select(_n_correct(), func.count()).where(decisions.c.run_id == run_id)
    correct, n = conn.execute(q).one()
    return _share(int(correct or 0), int(n))


def _n_correct() -> Any:
    return func.sum(case((decisions.c.correct, 1), else_=0))


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


def decision_rows(engine: Engine, run_id: int, columns: Sequence[str]) -> list[tuple]:
    """A stored run's decisions read back, ``columns`` of each, ordered by query id."""
    q = select(*(decisions.c[c] for c in columns)).where(decisions.c.run_id == run_id)
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(q.order_by(decisions.c.query_id))]


def run_summary(engine: Engine, run_id: int) -> dict[str, Any]:
    """A stored run's summary (the strategy's figures, its flags); the run must exist."""
    q = select(runs.c.summary).where(runs.c.id == run_id)
    with engine.connect() as conn:
        return conn.execute(q).scalar_one()
