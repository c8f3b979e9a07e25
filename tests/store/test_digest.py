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

    from uisbench.store import schema as s

    with engine.connect() as conn:
        config = conn.execute(
            select(s.banks.c.config).where(s.banks.c.name == stats.bank)
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
