"""PostgreSQL import's foreign keys checked set-wise (a role that may) or per row (any role).

Both ways must store the same rows, digest and conflicts as SQLite; the set-wise way must lock
what the server's own per-row checks lock (the referenced rows, not the table), leave other
triggers firing, and let a missing parent be the server's own error.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from tests.store.test_postgres import tiny_bank
from uisbench.errors import UisbenchError
from uisbench.store import bank as bank_mod
from uisbench.store import dialect, schema
from uisbench.store.bank import (
    ensure_bank,
    ensure_models,
    export_rows,
    get_bank_id,
    import_file,
)
from uisbench.store.bankfile import row_to_json
from uisbench.store.digest import bank_digest, digest_of, recompute_state
from uisbench.store.engine import open_engine


def _connect(url: str, **kw) -> psycopg.Connection:
    u = make_url(url)
    return psycopg.connect(host=u.host, port=u.port, user=u.username, dbname=u.database, **kw)


@pytest.fixture()
def plain_db(postgres_url: str):
    """A database owned by a role without superuser rights (nor SET on
    session_replication_role): the server's per-row checks."""
    role, name = f"plain_{uuid.uuid4().hex[:8]}", f"p_{uuid.uuid4().hex[:12]}"
    admin = make_url(postgres_url).set(database="postgres").render_as_string(False)
    with _connect(admin, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN")
        conn.execute(f"CREATE DATABASE {name} OWNER {role}")
    yield make_url(postgres_url).set(username=role, database=name).render_as_string(False)
    with contextlib.suppress(Exception), _connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE {name} WITH (FORCE)")
        conn.execute(f"DROP ROLE {role}")


@pytest.fixture()
def small_chunks(monkeypatch):
    """Every block set-wise (the tiny bank is below the row threshold) and cut in chunks of
    100 rows, so that a repeated key falls in a later chunk than its first."""
    monkeypatch.setattr(dialect, "SET_WISE_MIN_ROWS", 1)
    monkeypatch.setattr(bank_mod, "CHUNK", 100)


def _spy_plans(monkeypatch) -> list:
    plans: list = []
    real = dialect._set_wise_plan

    def spy(*a, **kw):
        plans.append(real(*a, **kw))
        return plans[-1]

    monkeypatch.setattr(dialect, "_set_wise_plan", spy)
    return plans


def _steps(url: str, folder: Path, rows: list[dict]) -> dict:
    """Import with repeats in the file, again, a changed cost refused then replaced."""
    from tests.fakes import write_jsonl

    folder.mkdir()
    out: dict = {}
    engine = open_engine(url)
    try:
        repeated = [*rows, rows[0], rows[len(rows) // 2]]  # identical repeats: skipped
        path = write_jsonl(folder / "b.jsonl", repeated)
        out["first"] = import_file(engine, path).inserted
        out["again"] = import_file(engine, path).inserted
        other = dict(rows[3], answer="changed", correct=not rows[3]["correct"])
        write_jsonl(path, [*rows, other])  # a repeat with another answer: refused
        with pytest.raises(UisbenchError, match="already held with other values"):
            import_file(engine, path)
        dearer = [dict(rows[0], cost_usd=(rows[0]["cost_usd"] or 1e-6) * 10), *rows[1:]]
        write_jsonl(path, dearer)
        out["replaced"] = import_file(engine, path, on_conflict="replace").replaced
        with engine.connect() as conn:
            out["digest"] = bank_digest(conn, "b")
            assert out["digest"] == digest_of(*recompute_state(conn, get_bank_id(conn, "b")))
            out["rows"] = [json.loads(row_to_json(r)) for r in export_rows(conn, "b")]
    finally:
        engine.dispose()
    return out


def test_set_wise_and_per_row_checks_store_what_sqlite_stores(
    postgres_db, plain_db, tmp_path, small_chunks, monkeypatch
):
    bank, _ = tiny_bank(tmp_path)
    rows = [json.loads(line) for line in bank.read_text(encoding="utf-8").splitlines()]
    assert len(rows) > 300  # several chunks of 100
    lite = _steps(str(tmp_path / "lite.db"), tmp_path / "lite", rows)
    plans = _spy_plans(monkeypatch)
    pg = _steps(postgres_db, tmp_path / "pg", rows)
    assert plans and all(p is not None for p in plans), "the superuser did not go set-wise"
    plans.clear()
    plain = _steps(plain_db, tmp_path / "plain", rows)
    assert plans and all(p is None for p in plans), "a plain role cannot skip the triggers"
    assert lite["first"] == len(rows) and lite["again"] == 0 and lite["replaced"] == 1
    assert pg == lite
    assert plain == lite


def _held_ids(conn) -> tuple[int, int, int]:
    bank = conn.execute(select(schema.banks.c.id)).scalar_one()
    model = conn.execute(select(schema.models.c.id)).scalars().first()
    query = (
        conn.execute(select(schema.queries.c.id).order_by(schema.queries.c.id)).scalars().first()
    )
    return bank, model, query


COLUMNS = ("bank_id", "query_id", "model_id", "sample_index", "correct")


def test_set_wise_locks_the_parents_as_the_triggers_do_and_not_the_readers(
    postgres_db, tmp_path, monkeypatch
):
    """While the import's transaction is open, a bank and a model that nothing else
    references yet cannot be deleted (the delete waits, as for the per-row checks' locks:
    without them it would go through and leave the new samples orphaned), the table can be
    read, and the same transaction is back to ordinary trigger firing."""
    monkeypatch.setattr(dialect, "SET_WISE_MIN_ROWS", 1)
    bank, _ = tiny_bank(tmp_path)
    engine = open_engine(postgres_db)
    try:
        import_file(engine, bank, name="held")
        with engine.begin() as conn:
            query_id = _held_ids(conn)[2]
            new_bank = ensure_bank(conn, "new", "import", {})
            new_model = ensure_models(conn, {"fresh-model": {}})["fresh-model"]
        plans = _spy_plans(monkeypatch)
        with engine.begin() as conn:
            rows = [(new_bank, query_id, new_model, k, True) for k in range(5)]
            assert dialect.copy_insert_new(conn, schema.samples, COLUMNS, rows)
            assert plans[-1] is not None
            setting = "SELECT current_setting('session_replication_role')"
            assert conn.exec_driver_sql(setting).scalar() == "origin"
            with _connect(postgres_db, autocommit=True) as other:
                other.execute("SET lock_timeout = '300ms'")
                assert other.execute("SELECT count(*) FROM samples").fetchone()[0] > 0
                with pytest.raises(psycopg.errors.LockNotAvailable):
                    other.execute(f"DELETE FROM models WHERE id = {new_model}")
                with pytest.raises(psycopg.errors.LockNotAvailable):
                    other.execute(f"DELETE FROM banks WHERE id = {new_bank}")
        with engine.connect() as conn:
            sc = schema.samples.c
            new = select(func.count()).where(sc.bank_id == new_bank, sc.model_id == new_model)
            assert conn.execute(new).scalar() == 5
    finally:
        engine.dispose()


@pytest.mark.parametrize("bulk", ["copy_insert_new", "copy_insert_ignore"])
def test_a_missing_parent_is_the_servers_error(postgres_db, tmp_path, monkeypatch, bulk):
    monkeypatch.setattr(dialect, "SET_WISE_MIN_ROWS", 1)
    bank, _ = tiny_bank(tmp_path)
    engine = open_engine(postgres_db)
    try:
        import_file(engine, bank, name="held")
        with engine.connect() as conn:
            bank_id, model_id, query_id = _held_ids(conn)
            before = conn.execute(select(func.count()).select_from(schema.samples)).scalar()
        rows = [(bank_id, query_id, model_id, 900 + k, True) for k in range(5)]
        rows.append((bank_id, query_id, 10**6, 0, True))  # no such model
        with pytest.raises(psycopg.errors.ForeignKeyViolation), engine.begin() as conn:
            getattr(dialect, bulk)(conn, schema.samples, COLUMNS, rows)
        with engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(schema.samples)).scalar() == before
    finally:
        engine.dispose()


def test_a_table_with_its_own_trigger_keeps_the_per_row_checks(postgres_db, tmp_path, monkeypatch):
    """A replica session skips every trigger: where someone added one to samples, the import
    does not go set-wise, and that trigger fires for every row."""
    monkeypatch.setattr(dialect, "SET_WISE_MIN_ROWS", 1)
    engine = open_engine(postgres_db)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE audit (n integer)")
        conn.exec_driver_sql(
            "CREATE FUNCTION audit_row() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN INSERT INTO audit VALUES (1); RETURN NEW; END $$"
        )
        conn.exec_driver_sql(
            "CREATE TRIGGER audit_samples AFTER INSERT ON samples "
            "FOR EACH ROW EXECUTE FUNCTION audit_row()"
        )
    plans = _spy_plans(monkeypatch)
    try:
        bank, _ = tiny_bank(tmp_path)
        stats = import_file(engine, bank)
        assert plans and all(p is None for p in plans)
        with engine.connect() as conn:
            audited = conn.exec_driver_sql("SELECT count(*) FROM audit").scalar()
        assert audited == stats.inserted > 0
    finally:
        engine.dispose()
