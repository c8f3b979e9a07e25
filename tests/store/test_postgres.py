"""The SQLite round trip, repeated on a real PostgreSQL server (started by ``postgres_url``).

Everything is compared with the same steps on SQLite rather than with constants, so a dialect
difference anywhere (JSON, booleans, casts, paramstyle, ordering) shows up as a mismatch.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, inspect, select, update

from tests.fakes import FakeBank, FakeModel
from uisbench.errors import UisbenchError
from uisbench.runner import Runner
from uisbench.store import schema
from uisbench.store.bank import export_rows, import_file, info
from uisbench.store.bankfile import models_file_beside, row_to_json
from uisbench.store.engine import open_engine

SHARED_BANK = Path(__file__).resolve().parents[3] / "shared" / "data" / "banks" / "date-mot.jsonl"
TEXT_COLS = ("task", "model", "synthetic")
STRATEGIES = ("majority:model=llama-2-13b,k=4", "single:model=gpt-4")


def tiny_bank(folder: Path) -> tuple[Path, Path]:
    """A small bank with date-mot's model names, for clones without ../shared: sample counts
    differ by model, some samples lack an answer or a log-prob, prompts carry quotes and
    non-ASCII text, one model has only a size and the others only prices."""
    gpt = {"family": "gpt", "params_b": None, "train_tokens_t": None, "cost_usd": 1e-6}
    bank = FakeBank(
        models=(
            FakeModel(
                "llama-2-13b",
                0.4,
                samples=6,
                params_b=13,
                train_tokens_t=2.0,
                family="llama",
                cost_usd=2e-6,
            ),
            FakeModel(
                "gpt-3.5-turbo",
                0.6,
                samples=6,
                price_in_per_mtok=0.5,
                price_out_per_mtok=1.5,
                **gpt,
            ),
            FakeModel(
                "gpt-4", 0.9, samples=3, price_in_per_mtok=30.0, price_out_per_mtok=60.0, **gpt
            ),
        ),
        queries=40,
        task="toy-dates",
        missing=0.15,
        prompt=lambda q: f'What day is {q} days after 2020-01-01? "quoted" ünïcode',
        reference=lambda q: f"d{q}",
    )
    path = bank.write(folder)
    return path, models_file_beside(path)


@pytest.fixture(scope="module")
def bank_files(tmp_path_factory) -> tuple[Path, Path | None]:
    if SHARED_BANK.is_file():
        models = SHARED_BANK.with_name("date-mot.models.json")
        return SHARED_BANK, models if models.is_file() else None
    return tiny_bank(tmp_path_factory.mktemp("bank"))


def round_trip(url: str, bank: Path, models: Path | None) -> dict:
    """Every step of the round trip on one database; returns what must match across dialects."""
    engine = open_engine(url)
    try:
        assert set(schema.metadata.tables) <= set(inspect(engine).get_table_names())
        first = import_file(engine, bank, models)
        again = import_file(engine, bank, models)
        assert first.inserted == first.rows > 0
        assert (again.rows, again.inserted) == (first.rows, 0), "a second import added rows"
        with engine.connect() as conn:
            df = info(conn, first.bank)
            exported = [json.loads(row_to_json(r)) for r in export_rows(conn, first.bank)]
            synthetic = conn.execute(select(schema.banks.c.synthetic)).scalar_one()
        (task,) = first.tasks
        runner = Runner(engine, task, first.bank)
        decisions, accuracy = {}, {}
        for spec in STRATEGIES:
            res = runner.run(spec, seed=3)
            assert not res.skipped
            assert runner.run(spec, seed=3).skipped, "a complete run was not found again"
            accuracy[spec] = res.accuracy
            with engine.connect() as conn:
                rows = conn.execute(
                    select(
                        schema.queries.c.query_key,
                        schema.decisions.c.position,
                        schema.decisions.c.arms,
                        schema.decisions.c.samples_used,
                        schema.decisions.c.answer,
                        schema.decisions.c.correct,
                        schema.decisions.c.input_tokens,
                        schema.decisions.c.output_tokens,
                        schema.decisions.c.flops,
                        schema.decisions.c.dollars,
                        schema.decisions.c.latency_s,
                    )
                    .join(schema.queries, schema.decisions.c.query_id == schema.queries.c.id)
                    .where(schema.decisions.c.run_id == res.run_id)
                    .order_by(schema.queries.c.query_key)
                ).all()
                summary = conn.execute(
                    select(schema.runs.c.summary, schema.runs.c.status).where(
                        schema.runs.c.id == res.run_id
                    )
                ).one()
            assert summary.status == "complete" and summary.summary["accuracy"] == res.accuracy
            assert len(rows) == res.n_queries
            decisions[spec] = [tuple(r) for r in rows]
        return {
            "info": df.drop(columns=["bank"]).to_dict("records"),
            "exported": exported,
            "synthetic": synthetic,
            "decisions": decisions,
            "accuracy": accuracy,
            "bank": first.bank,
        }
    finally:
        engine.dispose()


def _close(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b))
    return a == b


def test_postgres_round_trip_matches_sqlite(postgres_db, tmp_path, bank_files):
    bank, models = bank_files
    lite = round_trip(str(tmp_path / "lite.db"), bank, models)
    pg = round_trip(postgres_db, bank, models)

    assert pg["synthetic"] is False and lite["synthetic"] is False
    assert len(pg["info"]) == len(lite["info"]) >= 3
    for a, b in zip(pg["info"], lite["info"]):
        assert a.keys() == b.keys()
        for k in a:
            x, y = (a[k], b[k]) if k in TEXT_COLS else (float(a[k]), float(b[k]))
            assert _close(x, y), (k, a[k], b[k])
    # The exported records are the file's records, in the same order on both databases.
    assert pg["exported"] == lite["exported"]
    source = [json.loads(line) for line in bank.read_text(encoding="utf-8").splitlines()]
    key = lambda r: (r["task"], r["model"], r["query_id"], r["sample"])  # noqa: E731
    assert sorted(pg["exported"], key=key) == sorted(source, key=key)
    # Same decisions: answers, correctness, tokens, FLOPs, dollars, latency, arms, stream order.
    for spec in STRATEGIES:
        a, b = pg["decisions"][spec], lite["decisions"][spec]
        assert len(a) == len(b) > 0
        for ra, rb in zip(a, b):
            assert all(_close(x, y) for x, y in zip(ra, rb)), (spec, ra, rb)
        assert _close(pg["accuracy"][spec], lite["accuracy"][spec])
    # k=4 majority vote of one model differs from one sample of another: the test can fail.
    assert pg["decisions"][STRATEGIES[0]] != pg["decisions"][STRATEGIES[1]]


def test_postgres_refuses_another_schema_version(postgres_db):
    engine = open_engine(postgres_db)
    with engine.begin() as conn:
        conn.execute(
            update(schema.meta).where(schema.meta.c.key == "schema_version").values(value="999")
        )
    engine.dispose()
    with pytest.raises(UisbenchError, match="schema version 999"):
        open_engine(postgres_db)


def test_postgres_refuses_foreign_tables(postgres_db):
    import psycopg
    from sqlalchemy.engine import make_url

    url = make_url(postgres_db)
    with psycopg.connect(
        host=url.host, port=url.port, user=url.username, dbname=url.database, autocommit=True
    ) as conn:
        conn.execute("CREATE TABLE samples (x integer)")
    with pytest.raises(UisbenchError, match="not a uisbench database"):
        open_engine(postgres_db)


def test_postgres_digest_and_conflicts_match_sqlite(postgres_db, tmp_path, monkeypatch):
    """COPY import, re-import, a changed cost refused then replaced: the stored digest is
    the same on both databases and equals a recomputation from the rows. The same file again
    adds nothing by its digest sum on both (no row compared); the changed one is compared."""
    from tests.fakes import write_jsonl
    from uisbench.errors import UisbenchError
    from uisbench.store import bank as bank_module
    from uisbench.store import staging
    from uisbench.store.bank import get_bank_id
    from uisbench.store.digest import bank_digest, digest_of, recompute_state

    ways: list[str] = []
    held = bank_module._import_held

    def import_held(*args, **kwargs):
        try:
            stats = held(*args, **kwargs)
        except staging.Unstageable:
            ways.append("compared")
            raise
        ways.append("same content")
        return stats

    monkeypatch.setattr(bank_module, "_import_held", import_held)

    bank, _ = tiny_bank(tmp_path)
    rows = [json.loads(line) for line in bank.read_text(encoding="utf-8").splitlines()]
    dearer = [dict(rows[0], cost_usd=(rows[0]["cost_usd"] or 1e-6) * 10), *rows[1:]]
    out = {}
    for label, url in (("lite", str(tmp_path / "lite.db")), ("pg", postgres_db)):
        engine = open_engine(url)
        (tmp_path / label).mkdir()
        path = write_jsonl(tmp_path / label / "b.jsonl", rows)
        assert import_file(engine, path).inserted == len(rows)
        assert import_file(engine, path).inserted == 0
        write_jsonl(path, dearer)
        with pytest.raises(UisbenchError, match="already held with other values"):
            import_file(engine, path)
        assert import_file(engine, path, on_conflict="replace").replaced == 1
        with engine.connect() as conn:
            stored = bank_digest(conn, "b")
            assert stored == digest_of(*recompute_state(conn, get_bank_id(conn, "b")))
        out[label] = stored
        engine.dispose()
    assert out["pg"] == out["lite"]
    assert ways == ["same content", "compared", "compared"] * 2


#: What PostgreSQL refuses and SQLite would store: refused on both, before writing.
HOSTILE = {
    "tokens above 2^31": {"input_tokens": 2**31},
    "NUL in a prompt": {"prompt": "a\0b"},
    "NUL in an answer": {"answer": "x\0"},
    "model name of 201 characters": {"model": "m" * 201},
    "query id of 301 characters": {"query_id": "q" * 301},
    "task of 201 characters": {"task": "t" * 201},
}


def _refusal(url: str, path: Path) -> tuple[str, dict]:
    engine = open_engine(url)
    try:
        with pytest.raises(UisbenchError) as exc:
            import_file(engine, path)
        with engine.connect() as conn:
            counts = {
                t.name: conn.execute(select(func.count()).select_from(t)).scalar()
                for t in (schema.samples, schema.queries, schema.models, schema.tasks, schema.banks)
            }
        return str(exc.value), counts
    finally:
        engine.dispose()


def hostile_bank(folder: Path, change: dict) -> Path:
    good = dict(task="t", query_id="q0", split="test", prompt="p", reference="1", model="m")
    good |= dict(sample=0, answer="1", correct=True, input_tokens=3, output_tokens=4)
    good |= dict(cost_usd=0.5, latency_s=0.25, logprob=-1.0)
    path = folder / "hostile.jsonl"
    lines = [good, {**good, "query_id": "q1", **change}]
    path.write_text("".join(json.dumps(r) + "\n" for r in lines), encoding="utf-8")
    return path


@pytest.mark.parametrize("case", list(HOSTILE))
def test_sqlite_refuses_what_postgres_refuses(case, tmp_path):
    """One rule set: SQLite refuses the line PostgreSQL could not store, naming it."""
    path = hostile_bank(tmp_path, HOSTILE[case])
    message, counts = _refusal(str(tmp_path / "lite.db"), path)
    assert "line 2" in message and set(counts.values()) == {0}, (message, counts)


@pytest.mark.parametrize("case", list(HOSTILE))
def test_postgres_and_sqlite_refuse_alike(postgres_db, case, tmp_path):
    path = hostile_bank(tmp_path, HOSTILE[case])
    lite = _refusal(str(tmp_path / "lite.db"), path)
    pg = _refusal(postgres_db, path)
    assert pg == lite
