"""A bank's content digest: independent of file compression and row order, sensitive to any
change of a sample."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from tests.fakes import write_jsonl
from uisbench.store.bank import import_file
from uisbench.store.digest import bank_digest
from uisbench.store.engine import open_engine

SHIPPED = Path(__file__).resolve().parents[2] / "harness" / "data" / "banks"


def digest_of(tmp_path: Path, name: str, rows: list[dict], gz: bool) -> str:
    path = tmp_path / name / ("bank.jsonl.gz" if gz else "bank.jsonl")
    path.parent.mkdir()
    write_jsonl(path, rows, compact=not gz)  # the layout of the lines must not matter either
    engine = open_engine(str(tmp_path / name / "db.sqlite"))
    import_file(engine, path)
    with engine.connect() as conn:
        return bank_digest(conn, "bank")


def test_digest_depends_on_content_only(tmp_path: Path) -> None:
    with gzip.open(SHIPPED / "arith-smoke-cpu-tiny.jsonl.gz", "rt") as f:
        rows = [json.loads(next(f)) for _ in range(64)]
    plain = digest_of(tmp_path, "plain", rows, gz=False)
    assert plain.startswith("sha256:") and len(plain) == 7 + 64
    assert digest_of(tmp_path, "reversed-gz", rows[::-1], gz=True) == plain
    row = dict(rows[5], answer="not " + str(rows[5]["answer"]))
    changed = rows[:5] + [row] + rows[6:]
    assert digest_of(tmp_path, "changed", changed, gz=False) != plain


def test_bank_json_beside_the_file_is_stored(tmp_path: Path) -> None:
    engine = open_engine(str(tmp_path / "db.sqlite"))
    stats = import_file(engine, SHIPPED / "arith-smoke-cpu-tiny.jsonl.gz")
    from sqlalchemy import select

    from uisbench.store import schema

    with engine.connect() as conn:
        config = conn.execute(
            select(schema.banks.c.config).where(schema.banks.c.name == stats.bank)
        ).scalar_one()
    meta = json.loads((SHIPPED / "arith-smoke-cpu-tiny.bank.json").read_text())
    assert config == {"file": "arith-smoke-cpu-tiny.jsonl.gz", **meta}


def test_bad_bank_json_is_one_clear_error(tmp_path: Path) -> None:
    import pytest

    from uisbench.errors import UisbenchError
    from uisbench.store.bankfile import bank_meta_beside

    (tmp_path / "b.bank.json").write_text('{"licence": 3}')
    with pytest.raises(UisbenchError, match="b.bank.json: expected an object of strings"):
        bank_meta_beside(tmp_path / "b.jsonl")
    assert bank_meta_beside(tmp_path / "other.jsonl.gz") == {}


# ---- the stored digest: kept by every write, the same however the content arrived ----------
def _state(engine, bank: str = "bank") -> tuple[str, str]:
    """(stored digest, digest of a recomputation from the rows)."""
    from uisbench.store.bank import get_bank_id
    from uisbench.store.digest import digest_of, recompute_state

    with engine.connect() as conn:
        return bank_digest(conn, bank), digest_of(*recompute_state(conn, get_bank_id(conn, bank)))


def _rows(n: int = 48) -> list[dict]:
    with gzip.open(SHIPPED / "arith-smoke-cpu-tiny.jsonl.gz", "rt") as f:
        return [json.loads(next(f)) for _ in range(n)]


def test_stored_digest_is_the_same_for_one_import_or_several(tmp_path: Path) -> None:
    rows = _rows()
    whole = tmp_path / "whole" / "bank.jsonl"
    whole.parent.mkdir()
    write_jsonl(whole, rows)
    one = open_engine(str(tmp_path / "one.db"))
    import_file(one, whole)
    stored, recomputed = _state(one)
    assert stored == recomputed
    # The same rows in three imports, in another order, one of them repeated: same digest.
    parts = open_engine(str(tmp_path / "parts.db"))
    for i, part in enumerate((rows[30:], rows[:10], rows[5:30], rows[:10])):
        path = tmp_path / f"p{i}" / "bank.jsonl.gz"
        path.parent.mkdir()
        write_jsonl(path, part[::-1])
        import_file(parts, path)
    assert _state(parts) == (stored, stored)


def test_changed_cost_is_a_conflict_refused_then_replaced(tmp_path: Path) -> None:
    """Issue 20 item 12: costs ×10 re-imported were "0 new samples", even with replace."""
    from tests.fakes import FakeBank, FakeModel

    models = (
        FakeModel("small", 0.3, samples=3, cost_usd=1e-6),
        FakeModel("big", 0.7, 3, cost_usd=2e-6),
    )
    rows = [
        dict(r, latency_s=0.5 + i / 100, logprob=-1.0 - i / 100)
        for i, r in enumerate(FakeBank(models=models, queries=4).rows())
    ]
    assert all(r["cost_usd"] and r["input_tokens"] for r in rows)
    path = write_jsonl(tmp_path / "bank.jsonl", rows)
    engine = open_engine(str(tmp_path / "db.sqlite"))
    import_file(engine, path)
    before, _ = _state(engine)
    dearer = [dict(r, cost_usd=r["cost_usd"] * 10) for r in rows]
    write_jsonl(path, dearer)
    import pytest

    from uisbench.errors import UisbenchError

    with pytest.raises(UisbenchError, match="already held with other values"):
        import_file(engine, path)
    assert _state(engine) == (before, before)  # nothing written
    stats = import_file(engine, path, on_conflict="replace")
    assert (stats.inserted, stats.replaced) == (0, len(rows))
    after, recomputed = _state(engine)
    assert after == recomputed != before
    with engine.connect() as conn:
        costs = conn.exec_driver_sql("SELECT sum(cost_usd) FROM samples").scalar()
    assert costs == pytest.approx(10 * sum(r["cost_usd"] for r in rows))
    # Each other value field is a conflict too.
    for field, value in (("input_tokens", 7), ("latency_s", 9.5), ("logprob", -0.25)):
        changed = [dict(dearer[0], **{field: value}), *dearer[1:]]
        write_jsonl(path, changed)
        with pytest.raises(UisbenchError, match="already held with other values"):
            import_file(engine, path)
        assert import_file(engine, path, on_conflict="replace").replaced == 1
        assert _state(engine)[0] == _state(engine)[1]


def test_replaced_prompt_changes_every_bank_holding_the_query(tmp_path: Path) -> None:
    rows = _rows()
    engine = open_engine(str(tmp_path / "db.sqlite"))
    for name in ("a", "b"):
        import_file(engine, write_jsonl(tmp_path / f"{name}.jsonl", rows))
    b_before = _state(engine, "b")[0]
    changed = [dict(r, prompt=r["prompt"] + " (v2)") if i == 0 else r for i, r in enumerate(rows)]
    import_file(engine, write_jsonl(tmp_path / "a.jsonl", changed), on_conflict="replace")
    for name in ("a", "b"):
        stored, recomputed = _state(engine, name)
        assert stored == recomputed
    assert _state(engine, "b")[0] != b_before  # bank b's samples sit on the changed query


def test_schema_3_is_upgraded_by_a_writer_and_refused_by_a_reader(tmp_path: Path) -> None:
    import pytest

    from uisbench.errors import UisbenchError

    db = tmp_path / "db.sqlite"
    engine = open_engine(str(db))
    import_file(engine, write_jsonl(tmp_path / "bank.jsonl", _rows(2880)))
    expected = _state(engine)[0]
    from uisbench.runner import Runner

    Runner(engine, "arith-smoke", "bank").run("single:model=smollm2-135m-instruct")
    with engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE banks DROP COLUMN content_sum")
        conn.exec_driver_sql("ALTER TABLE banks DROP COLUMN content_rows")
        conn.exec_driver_sql("ALTER TABLE runs ADD COLUMN mode VARCHAR(16) NOT NULL DEFAULT 'r'")
        conn.exec_driver_sql("UPDATE uisbench_meta SET value = '3' WHERE key = 'schema_version'")
    engine.dispose()
    with pytest.raises(UisbenchError, match="schema version 3 predates stored bank digests"):
        open_engine(str(db), create=False)
    assert _state(open_engine(str(db))) == (expected, expected)
    with open_engine(str(db), create=False).connect() as conn:
        assert bank_digest(conn, "bank") == expected
        # schema-3 runs (split drawn by database id, no code version in their key) are gone
        assert conn.exec_driver_sql("SELECT count(*) FROM runs").scalar() == 0
        assert conn.exec_driver_sql("SELECT count(*) FROM decisions").scalar() == 0
        assert conn.exec_driver_sql("SELECT count(*) FROM samples").scalar() == 2880
        version = "SELECT value FROM uisbench_meta WHERE key = 'schema_version'"
        assert conn.exec_driver_sql(version).scalar() == "5"  # then 4 -> 5 (mode dropped)


def test_recording_writer_keeps_the_digest_and_skips_held_keys(tmp_path: Path) -> None:
    """What `bank record` writes goes through write_samples: held keys are left as stored
    (a concurrent recorder wrote them first) and the stored digest stays exact."""
    from uisbench.store.bank import SAMPLE_COLUMNS, get_bank_id, write_samples

    engine = open_engine(str(tmp_path / "db.sqlite"))
    rows = _rows(24)
    import_file(engine, write_jsonl(tmp_path / "bank.jsonl", rows[:12]))
    with engine.begin() as conn:
        bank_id = get_bank_id(conn, "bank")
        held = [
            tuple(r)
            for r in conn.exec_driver_sql(
                f"SELECT {', '.join(SAMPLE_COLUMNS)} FROM samples ORDER BY id"
            )
        ]
        # Two held rows (one with another answer: still left alone) and two new ones.
        changed = (*held[1][:5], "other", *held[1][6:])
        new = [(*r[:3], r[3] + 100, *r[4:]) for r in held[:2]]
        assert write_samples(conn, SAMPLE_COLUMNS, [held[0], changed, *new]) == 2
        assert bank_id == held[0][0]
    stored, recomputed = _state(engine)
    assert stored == recomputed
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM samples").scalar() == 14


def test_a_file_with_some_of_a_pair_s_samples_is_checked_against_those_only(tmp_path: Path):
    """Held samples are read a (model, query) range at a time: the held samples in a range
    that the file does not name are neither conflicts nor inserted again."""
    from tests.fakes import FakeBank, FakeModel

    rows = FakeBank(models=(FakeModel("m", 0.5, samples=10),), queries=3).rows()
    path = write_jsonl(tmp_path / "bank.jsonl", rows)
    engine = open_engine(str(tmp_path / "db.sqlite"))
    import_file(engine, path)
    before = _state(engine)
    ends = [r for r in rows if r["sample"] in (0, 9)]  # indices 1-8 of each pair left out
    write_jsonl(path, ends)
    assert import_file(engine, path).inserted == 0
    assert _state(engine) == before
    changed = [dict(ends[0], answer="another " + str(ends[0]["answer"])), *ends[1:]]
    write_jsonl(path, changed)
    import pytest

    from uisbench.errors import UisbenchError

    with pytest.raises(UisbenchError, match="already held with other values"):
        import_file(engine, path)
    stats = import_file(engine, path, on_conflict="replace")
    assert (stats.inserted, stats.replaced) == (0, 1)
    assert _state(engine)[0] == _state(engine)[1] != before[0]
    gap = [dict(r, sample=r["sample"] + 20) for r in ends]  # new indices beyond the held ones
    write_jsonl(path, gap + changed)
    assert import_file(engine, path).inserted == len(gap)
