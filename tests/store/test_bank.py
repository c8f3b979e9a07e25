"""Bank import/export/info: validation, idempotence, exact round trip, real shared banks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.fakes import FakeBank, FakeModel, write_jsonl
from uisbench.errors import UisbenchError
from uisbench.store.bank import export_rows, import_file, info
from uisbench.store.bankfile import read_rows, row_to_json
from uisbench.store.engine import open_engine
from uisbench.store.loading import load_arrays

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "banks"
needs_shared = pytest.mark.skipif(
    not SHARED.is_dir(), reason="../shared/data/banks not present (only in the dev checkout)"
)


#: 4 queries x 2 models x 3 samples, every field filled (costs, latencies, log-probs).
TOY = FakeBank(
    models=(
        FakeModel("small", 0.25, samples=3, cost_usd=1e-6),
        FakeModel("big", 0.75, samples=3, cost_usd=2e-6),
    ),
    queries=4,
)


def accuracy(rows: list[dict], model: str) -> float:
    """Brute force: the share of a model's rows that are correct."""
    mine = [r["correct"] for r in rows if r["model"] == model]
    return sum(mine) / len(mine)


@pytest.fixture
def engine(tmp_path):
    return open_engine(str(tmp_path / "t.db"))


def test_import_twice_adds_nothing_and_round_trips(tmp_path, engine):
    src = write_jsonl(tmp_path / "toy.jsonl.gz", TOY.rows())
    first = import_file(engine, src)
    assert (first.rows, first.inserted) == (24, 24)
    second = import_file(engine, src)
    assert (second.rows, second.inserted) == (24, 0)
    with engine.connect() as conn:
        exported = [json.loads(row_to_json(r)) for r in export_rows(conn, "toy")]
    key = lambda r: (r["model"], r["query_id"], r["sample"])  # noqa: E731
    assert sorted(exported, key=key) == sorted(TOY.rows(), key=key)


def test_info_and_dense_arrays(tmp_path, engine):
    import_file(engine, write_jsonl(tmp_path / "toy.jsonl", TOY.rows()))
    with engine.connect() as conn:
        df = info(conn).set_index("model")
        arrays = load_arrays(conn, "toy", "toy")
    rows = TOY.rows()
    assert df.loc["small", "accuracy"] == pytest.approx(accuracy(rows, "small"))
    assert df.loc["big", "accuracy"] == pytest.approx(accuracy(rows, "big"))
    big = arrays.models["big"]
    assert big.answer.shape == (4, 3) and (big.n_avail == 3).all()
    assert big.correct.mean() == pytest.approx(accuracy(rows, "big"))
    # Answer codes are shared across models: equal text means equal code.
    labels = arrays.answer_labels
    first = next(r for r in rows if (r["model"], r["query_id"], r["sample"]) == ("big", "q000", 0))
    assert first["correct"] and labels[big.answer[0, 0]] == first["answer"] == "0"


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda r: r.pop("correct"), "missing field"),
        (lambda r: r.update(sample=-1), "sample must be"),
        (lambda r: r.update(split="dev"), "split must be"),
        (lambda r: r.update(correct="yes"), "correct must be"),
        (lambda r: r.update(input_tokens=1.5), "input_tokens"),
    ],
)
def test_malformed_line_is_refused_and_nothing_written(tmp_path, engine, mutate, message):
    rows = TOY.rows()
    mutate(rows[7])
    path = write_jsonl(tmp_path / "bad.jsonl", rows)
    with pytest.raises(UisbenchError, match=rf"line 8: .*{message}"):
        import_file(engine, path)
    with engine.connect() as conn:
        assert info(conn).empty  # the transaction rolled back: no half-written rows


def test_truncated_gzip_is_refused(tmp_path, engine):
    path = write_jsonl(tmp_path / "t.jsonl.gz", TOY.rows())
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(UisbenchError, match="t.jsonl.gz"):
        list(read_rows(path))
    with pytest.raises(UisbenchError):
        import_file(engine, path)
    with engine.connect() as conn:
        assert info(conn).empty


def test_other_schema_version_is_refused(tmp_path):
    url = str(tmp_path / "v.db")
    engine = open_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE uisbench_meta SET value = '999' WHERE key = 'schema_version'")
    engine.dispose()
    with pytest.raises(UisbenchError, match="schema version 999"):
        open_engine(url)


def test_missing_database_for_read_commands(tmp_path):
    with pytest.raises(UisbenchError, match="no database"):
        open_engine(str(tmp_path / "absent.db"), create=False)


@needs_shared
def test_mmlu_ladder_accuracies(tmp_path, engine):
    import_file(
        engine,
        SHARED / "mmlu-llama-ladder.jsonl",
        SHARED / "mmlu-llama-ladder.models.json",
    )
    with engine.connect() as conn:
        df = info(conn)
    assert len(df) == 5
    accs = sorted(df["accuracy"].round(2))
    assert accs == pytest.approx([0.42, 0.57, 0.63, 0.81, 0.85], abs=0.01)
    assert (df["queries"] == 1816).all()


def test_foreign_database_is_refused_and_left_unchanged(tmp_path):
    import sqlite3

    path = tmp_path / "other.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE accounts (id integer, owner text)")
    before = path.read_bytes()
    with pytest.raises(UisbenchError, match="not a uisbench database .*accounts"):
        open_engine(str(path))
    with sqlite3.connect(path) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
    assert tables == ["accounts"] and path.read_bytes() == before


def test_export_writes_provenance_back(tmp_path: Path) -> None:
    """``NAME.bank.json`` (source, licence) survives import → export → import."""
    from uisbench.cli.main import main
    from uisbench.store.bank import bank_config

    src = FakeBank().write(tmp_path, "prov")
    meta = {"source": "made by a test", "licence": "CC0-1.0"}
    (tmp_path / "prov.bank.json").write_text(json.dumps(meta))
    first, second = tmp_path / "a.db", tmp_path / "b.db"
    out = tmp_path / "out" / "prov.jsonl.gz"
    for args in (
        ["bank", "import", str(src), "--db", str(first)],
        ["bank", "export", "--bank", "prov", "--out", str(out), "--db", str(first)],
        ["bank", "import", str(out), "--db", str(second)],
    ):
        try:
            main(args)
        except SystemExit as exc:  # only failures exit; a success returns
            pytest.fail(f"{args[:2]} exited {exc.code}")
    with open_engine(str(second)).connect() as conn:
        config = bank_config(conn, "prov")
    assert {k: config[k] for k in meta} == meta
