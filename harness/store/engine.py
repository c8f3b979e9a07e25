"""Opening the database: URL resolution, SQLite tuning, schema creation and version check.

SQLite is opened in WAL mode with a long busy timeout. Engines that write use ``BEGIN
IMMEDIATE`` transactions, so that several processes can write the same file at once: each
transaction takes the write lock up front instead of failing when it upgrades from a read lock.
Read-only engines (``create=False``: report, info, export, site, compare) use deferred
transactions and ``query_only``: a WAL reader reads its snapshot and never waits for a writer.
"""

from __future__ import annotations

import os
import uuid
from contextlib import closing
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, inspect, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError

from uisbench.errors import UisbenchError
from uisbench.redact import redact
from uisbench.store import schema
from uisbench.store.dialect import insert_ignore

ENV_VAR = "UISBENCH_DB"
BUSY_TIMEOUT_S = 300
#: SQLite files this process created: a command that fails must not leave them behind empty.
_CREATED: set[Path] = set()


def default_db_path() -> Path:
    """The default SQLite file: ``uisbench.db`` in the working directory (where the default
    job's ``_site/`` goes too), never inside the installed package."""
    return Path.cwd().resolve() / "uisbench.db"


def resolve_url(db: str | None = None) -> str:
    """``--db`` wins, then ``$UISBENCH_DB``, then the default SQLite file; paths mean SQLite."""
    value = db or os.environ.get(ENV_VAR) or str(default_db_path())
    if "://" not in value:
        return f"sqlite:///{Path(value).expanduser().resolve()}"
    return value


def _tune_sqlite(engine: Engine, *, write: bool) -> None:
    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn, _record):  # pragma: no cover - exercised by every sqlite test
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_S * 1000}")
        cur.execute("PRAGMA synchronous = NORMAL")
        cur.execute("PRAGMA foreign_keys = ON")
        if not write:
            cur.execute("PRAGMA query_only = ON")
        cur.close()

    begin = "BEGIN IMMEDIATE" if write else "BEGIN"

    @event.listens_for(engine, "begin")
    def _begin(conn):  # pragma: no cover
        conn.exec_driver_sql(begin)


def _use_wal(engine: Engine) -> None:
    """WAL (persistent in the file), set only once the file is known to be ours: a foreign
    database must be left byte for byte as it was."""
    import sqlite3

    raw = engine.raw_connection()
    try:
        raw.cursor().execute("PRAGMA journal_mode = WAL")
    except sqlite3.Error as exc:  # an immutable or read-only file: the driver's own error
        raise OperationalError("PRAGMA journal_mode = WAL", None, exc) from None
    finally:
        raw.close()


def open_engine(db: str | None = None, *, create: bool = True) -> Engine:
    """Open (and with ``create`` initialise) the database; refuse another schema version.

    ``create=False`` is for read-only commands: a missing database is an error, not a new file.
    """
    url_text = resolve_url(db)
    try:
        url = make_url(url_text)
    except (ArgumentError, ValueError) as exc:  # ValueError: a port that is not a number
        raise UisbenchError(f"invalid database URL {redact(url_text)!r}: {exc}") from None
    is_sqlite = url.get_backend_name() == "sqlite"
    connect_args: dict = {}
    if is_sqlite and url.database not in (None, "", ":memory:"):
        path = Path(url.database)
        _refuse_hot_journal(path)
        if not create and path.exists():
            connect_args["creator"] = _read_only_connect(path)
        if not path.exists():
            if not create:
                raise UisbenchError(
                    f"no database at {path} (run `uisbench bank import` or `uisbench run` first)"
                )
            path.parent.mkdir(parents=True, exist_ok=True)
            _CREATED.add(path)
    try:
        engine = create_engine(url, future=True, **connect_args)
    except Exception as exc:  # missing driver, bad URL parts
        raise UisbenchError(f"cannot open database {url.render_as_string()}: {exc}") from None
    if is_sqlite:
        _tune_sqlite(engine, write=create)
    try:
        _ensure_schema(engine, create=create)
        if is_sqlite and create:
            _use_wal(engine)
    except OperationalError as exc:
        engine.dispose()
        msg = str(exc.orig).splitlines()[0] if exc.orig else str(exc)
        raise UisbenchError(f"cannot open database {url.render_as_string()}: {msg}") from None
    except Exception:
        engine.dispose()
        raise
    return engine


def _refuse_hot_journal(path: Path) -> None:
    """A rollback journal beside the file is a write that did not finish (uisbench writes in
    WAL mode, so not one of ours): any connection, even a read, would roll it back, so the
    database is refused before it is opened."""
    journal = Path(f"{path}-journal")
    if journal.is_file() and journal.stat().st_size > 0:
        raise UisbenchError(
            f"database {path} has a hot journal ({journal.name}: a write by another program "
            "that did not finish); refusing to open it, which would roll that write back"
        )


def _read_only_connect(path: Path):
    """Connections of read-only commands: ``mode=ro``, so that nothing (not even a journal or
    WAL index) is created; on a read-only file system, where a WAL database's index cannot be
    made, ``immutable=1`` (nothing can write the file there)."""
    import sqlite3
    from urllib.parse import quote

    uri = f"file:{quote(str(path))}?mode=ro"

    def connect():
        conn = sqlite3.connect(uri, uri=True, check_same_thread=False)
        try:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.OperationalError:
            conn.close()
            if not os.statvfs(path).f_flag & os.ST_RDONLY:
                raise
            conn = sqlite3.connect(f"{uri}&immutable=1", uri=True, check_same_thread=False)
        return conn

    return connect


def _foreign_objects(engine: Engine, tables: set[str]) -> list[str]:
    """What makes a database without uisbench's tables someone else's: its tables and views,
    or (SQLite) a user_version or application_id that some program set."""
    found = sorted(tables | set(inspect(engine).get_view_names()))
    if engine.dialect.name == "sqlite" and not found:
        with engine.connect() as conn:
            for pragma in ("user_version", "application_id"):
                value = conn.exec_driver_sql(f"PRAGMA {pragma}").scalar()
                if value:
                    found.append(f"{pragma} {value}")
            conn.rollback()
    return found


def _ensure_schema(engine: Engine, *, create: bool) -> None:
    existing = set(inspect(engine).get_table_names())
    if schema.meta.name not in existing:
        existing = set(_foreign_objects(engine, existing))
        if existing:  # someone else's database (or a damaged one): never write into it
            shown = ", ".join(sorted(existing)[:5]) + (", ..." if len(existing) > 5 else "")
            raise UisbenchError(
                f"database is not a uisbench database (it holds {shown}); "
                "refusing to use it: give an empty or new database"
            )
        if not create:
            raise UisbenchError(
                "database is empty (run `uisbench bank import` or `uisbench run` first)"
            )
        with engine.begin() as conn:
            schema.metadata.create_all(conn)
            insert_ignore(
                conn,
                schema.meta,
                [
                    {"key": "schema_version", "value": str(schema.SCHEMA_VERSION)},
                    {"key": "instance", "value": uuid.uuid4().hex},  # keys caches beside it
                ],
            )
        return
    with engine.connect() as conn:
        found = conn.execute(
            select(schema.meta.c.value).where(schema.meta.c.key == "schema_version")
        ).scalar()
    if found == "3":  # before banks kept their digest: upgraded in place by a writer
        if not create:
            raise UisbenchError(
                "database schema version 3 predates stored bank digests (version 4): open it "
                "once with a command that writes (`uisbench bank import`, `uisbench run`) to "
                "upgrade it in place"
            )
        from uisbench.store.digest import upgrade_from_3

        upgrade_from_3(engine)
        found = "4"
    if found == "4":  # before runs lost their mode column: upgraded in place by a writer
        if not create:
            raise UisbenchError(
                "database schema version 4 has a runs.mode column that version 5 dropped: open "
                "it once with a command that writes (`uisbench bank import`, `uisbench run`) to "
                "upgrade it in place"
            )
        from uisbench.store.runs import upgrade_from_4

        upgrade_from_4(engine)
        return
    if found != str(schema.SCHEMA_VERSION):
        raise UisbenchError(
            f"database schema version {found} is not the version this uisbench writes "
            f"({schema.SCHEMA_VERSION}); use a new database file or the matching uisbench release"
        )


def created_databases() -> set[Path]:
    """The SQLite files this process created (a command clears it when it starts)."""
    return _CREATED


def discard_new_empty_databases() -> None:
    """Remove SQLite files this process created that hold no samples and no runs.

    Called when a command fails: ``run --db NEW`` with a bad option must not leave an empty
    database behind (a later command would take it for a real one).
    """
    import sqlite3

    for path in list(_CREATED):
        _CREATED.discard(path)
        try:
            with closing(sqlite3.connect(path)) as conn:
                held = conn.execute(
                    "SELECT (SELECT count(*) FROM samples) + (SELECT count(*) FROM runs)"
                ).fetchone()[0]
        except sqlite3.Error:
            held = 0  # no uisbench tables: an empty shell
        if held == 0:
            for extra in ("", "-wal", "-shm", "-journal"):
                Path(f"{path}{extra}").unlink(missing_ok=True)
