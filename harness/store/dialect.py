"""Dialect-aware inserts that skip rows already present (the basis of idempotent import/resume)."""

from __future__ import annotations

from collections.abc import Sequence
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


def bulk_insert_ignore(
    conn: Connection, table: Table, columns: Sequence[str], rows: Sequence[tuple]
) -> int:
    """Fast path for millions of rows: hand tuples straight to the driver's ``executemany``.

    SQLAlchemy's per-row parameter processing costs more than SQLite's insert itself, so on
    SQLite and PostgreSQL we write the statement once and skip it.
    Returns the number of rows inserted.
    """
    if not rows:
        return 0
    cols = ", ".join(columns)
    name = conn.dialect.name
    if name == "sqlite":
        marks = ", ".join("?" * len(columns))
        sql = f"INSERT OR IGNORE INTO {table.name} ({cols}) VALUES ({marks})"
    elif name == "postgresql":
        marks = ", ".join(["%s"] * len(columns))
        sql = f"INSERT INTO {table.name} ({cols}) VALUES ({marks}) ON CONFLICT DO NOTHING"
    else:  # pragma: no cover
        return conn.execute(table.insert(), [dict(zip(columns, r)) for r in rows]).rowcount
    return conn.exec_driver_sql(sql, list(rows)).rowcount


def bool_mean(flag: ColumnElement[bool]) -> ColumnElement[float]:
    """Share of true values: PostgreSQL cannot cast boolean to a float, so count via CASE."""
    return func.avg(case((flag, 1.0), else_=0.0), type_=Float)


def copy_insert_ignore(
    conn: Connection, table: Table, columns: Sequence[str], rows: Sequence[tuple]
) -> int:
    """:func:`bulk_insert_ignore` for millions of rows: on PostgreSQL the rows are streamed
    with ``COPY`` into a temporary staging table of the same columns (no keys), then moved by
    one ``INSERT ... SELECT ... ON CONFLICT DO NOTHING``; elsewhere, ``executemany``.
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
        cur.execute(
            f"INSERT INTO {table.name} ({cols}) SELECT {cols} FROM {stage} ON CONFLICT DO NOTHING"
        )
        added = cur.rowcount
        cur.execute(f"TRUNCATE {stage}")
    return added
