"""Dialect-aware inserts that skip rows already present (the basis of idempotent import/resume)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import ColumnElement, Connection, Float, Table, case, func


def insert_ignore(conn: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert ``rows``, silently skipping any that collide with a unique constraint."""
    if not rows:
        return
    name = conn.dialect.name
    if name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    elif name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:  # pragma: no cover - other dialects: plain insert, constraint errors surface
        conn.execute(table.insert(), list(rows))
        return
    conn.execute(insert(table).on_conflict_do_nothing(), list(rows))


#: Values in one ``IN (...)`` list: under SQLite's 999 bound parameters of older builds.
IN_LIST = 900


def in_parts(values: Sequence[Any], size: int = IN_LIST) -> Iterator[Sequence[Any]]:
    """``values`` in consecutive parts small enough for one statement's ``IN`` list."""
    for lo in range(0, len(values), size):
        yield values[lo : lo + size]


def bulk_insert_ignore(
    conn: Connection,
    table: Table,
    columns: Sequence[str],
    rows: Sequence[tuple],
    fixed: Mapping[str, int] | None = None,
) -> int:
    """Fast path for millions of rows: hand tuples straight to the driver's ``executemany``.

    SQLAlchemy's per-row parameter processing costs more than SQLite's insert itself, so on
    SQLite and PostgreSQL we write the statement once and skip it. ``fixed`` columns have one
    integer for every row (a run's id), written into the statement instead of each tuple.
    Returns the number of rows inserted.
    """
    if not rows:
        return 0
    fixed = {k: int(v) for k, v in (fixed or {}).items()}
    cols = ", ".join([*fixed, *columns])
    name = conn.dialect.name
    if name == "sqlite":
        marks = ", ".join([*map(str, fixed.values()), *"?" * len(columns)])
        sql = f"INSERT OR IGNORE INTO {table.name} ({cols}) VALUES ({marks})"
    elif name == "postgresql":
        marks = ", ".join([*map(str, fixed.values()), *["%s"] * len(columns)])
        sql = f"INSERT INTO {table.name} ({cols}) VALUES ({marks}) ON CONFLICT DO NOTHING"
    else:  # pragma: no cover
        params = [{**fixed, **dict(zip(columns, r))} for r in rows]
        return conn.execute(table.insert(), params).rowcount
    return conn.exec_driver_sql(sql, list(rows)).rowcount


def bool_mean(flag: ColumnElement[bool]) -> ColumnElement[float]:
    """Share of true values: PostgreSQL cannot cast boolean to a float, so count via CASE."""
    return func.avg(case((flag, 1.0), else_=0.0), type_=Float)


def copy_insert_ignore(
    conn: Connection, table: Table, columns: Sequence[str], rows: Sequence[tuple]
) -> int:
    """:func:`bulk_insert_ignore` for millions of rows: on PostgreSQL the rows are streamed
    with ``COPY`` into a temporary staging table of the same columns (no keys), then moved by
    one ``INSERT ... SELECT ... ON CONFLICT DO NOTHING`` (foreign keys checked set-wise where
    the role may: :func:`_set_wise_foreign_keys`); elsewhere, ``executemany``.
    Returns the number of rows inserted."""
    if conn.dialect.name != "postgresql" or not rows:
        return bulk_insert_ignore(conn, table, columns, rows)
    stage = f"uisbench_stage_{table.name}"
    cols = ", ".join(columns)
    every = ", ".join(c.name for c in table.columns if c.name != "id")
    raw = conn.connection.dbapi_connection
    with raw.cursor() as cur:  # type: ignore[union-attr]
        cur.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {stage} AS SELECT {every} FROM {table.name} "
            "WITH NO DATA"
        )
        with cur.copy(f"COPY {stage} ({cols}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        with _set_wise_foreign_keys(cur, table, columns, rows):
            cur.execute(
                f"INSERT INTO {table.name} ({cols}) SELECT {cols} FROM {stage} "
                "ON CONFLICT DO NOTHING"
            )
            added = cur.rowcount
        cur.execute(f"TRUNCATE {stage}")
    return added


def copy_insert_new(
    conn: Connection, table: Table, columns: Sequence[str], rows: Sequence[tuple]
) -> bool:
    """Insert rows whose keys are all new: True; when some key is held (or repeated among
    ``rows``), nothing is written and False. On PostgreSQL the rows go by ``COPY`` straight
    into the table (no staging table: a held key is a unique violation, rolled back to a
    savepoint), foreign keys checked set-wise where the role may; elsewhere ``executemany``."""
    if not rows:
        return True
    conn.exec_driver_sql("SAVEPOINT uisbench_new")
    if conn.dialect.name == "postgresql":
        from psycopg.errors import UniqueViolation

        raw = conn.connection.dbapi_connection
        try:
            with raw.cursor() as cur:  # type: ignore[union-attr]
                with _set_wise_foreign_keys(cur, table, columns, rows):
                    with cur.copy(f"COPY {table.name} ({', '.join(columns)}) FROM STDIN") as copy:
                        for row in rows:
                            copy.write_row(row)
            new = True
        except UniqueViolation:
            new = False
    else:
        new = bulk_insert_ignore(conn, table, columns, rows) == len(rows)
    if not new:
        conn.exec_driver_sql("ROLLBACK TO SAVEPOINT uisbench_new")
    conn.exec_driver_sql("RELEASE SAVEPOINT uisbench_new")
    return new


#: Fewer rows than this keep PostgreSQL's per-row foreign-key checks (cheap at that size).
SET_WISE_MIN_ROWS = 1_000


@contextmanager
def _set_wise_foreign_keys(
    cur: Any, table: Table, columns: Sequence[str], rows: Sequence[tuple]
) -> Iterator[None]:
    """Run the block (one statement writing ``rows`` into ``table``) with the table's
    foreign keys checked once per distinct referenced row instead of once per written row.

    PostgreSQL checks a foreign key by a trigger per inserted row, each locking its parent
    row ``FOR KEY SHARE``: at millions of rows that is most of an import (``COPY`` into
    ``samples`` runs 5x faster without its three keys). Here each key's distinct values are
    locked the same way by one ``SELECT ... FOR KEY SHARE`` and counted (every parent must
    exist), then the per-row triggers are switched off for the block alone with
    ``SET LOCAL session_replication_role = replica``. The guarantee is the one the triggers
    give: every referenced row exists and cannot be deleted or re-keyed until the transaction
    ends. Nothing else is locked (readers of the table are not blocked).

    Done only where it is allowed and changes nothing else: the role may set
    ``session_replication_role`` (a superuser, or ``GRANT SET ON PARAMETER
    session_replication_role``, PostgreSQL 15+), the table has no trigger or rule besides
    its foreign keys' own (a replica session would skip them too), and every foreign key is
    one column written here. Otherwise, or when a parent is missing (the per-row checks then
    raise the server's own error), the block runs with the per-row checks."""
    plan = _set_wise_plan(cur, table, columns) if len(rows) >= SET_WISE_MIN_ROWS else None
    if plan is not None:
        for at, parent, key in plan:
            ids = sorted({r[at] for r in rows})
            cur.execute(
                f"SELECT count(*) FROM (SELECT 1 FROM {parent} WHERE {key} = ANY(%s) "
                "FOR KEY SHARE) AS locked",
                (ids,),
            )
            if cur.fetchone()[0] != len(ids):
                plan = None
                break
    if plan is None:
        yield
        return
    cur.execute("SELECT current_setting('session_replication_role')")
    before = cur.fetchone()[0]
    cur.execute("SET LOCAL session_replication_role = replica")
    yield  # an error aborts the transaction (or its savepoint), which restores the setting
    cur.execute("SELECT set_config('session_replication_role', %s, true)", (before,))


def _set_wise_plan(
    cur: Any, table: Table, columns: Sequence[str]
) -> list[tuple[int, str, str]] | None:
    """(position in ``columns``, parent table, parent column) per foreign key of ``table`` as
    the server holds them, or None when :func:`_set_wise_foreign_keys` may not be used."""
    cur.execute(
        "SELECT current_setting('is_superuser') = 'on', current_setting('server_version_num')::int"
    )
    superuser, version = cur.fetchone()
    if not superuser:
        if version < 150000:
            return None
        cur.execute("SELECT has_parameter_privilege('session_replication_role', 'SET')")
        if not cur.fetchone()[0]:
            return None
    cur.execute(
        "SELECT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = %s::regclass "
        "AND NOT tgisinternal) OR EXISTS (SELECT 1 FROM pg_rewrite WHERE ev_class = "
        "%s::regclass)",
        (table.name, table.name),
    )
    if cur.fetchone()[0]:
        return None
    cur.execute(
        "SELECT cardinality(c.conkey), a.attname, c.confrelid::regclass::text, "
        "quote_ident(f.attname) FROM pg_constraint c "
        "JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1] "
        "JOIN pg_attribute f ON f.attrelid = c.confrelid AND f.attnum = c.confkey[1] "
        "WHERE c.conrelid = %s::regclass AND c.contype = 'f'",
        (table.name,),
    )
    plan = []
    for width, column, parent, key in cur.fetchall():
        if width != 1 or column not in columns:
            return None
        plan.append((list(columns).index(column), parent, key))
    return plan
