"""Bank import/export/info: validation, idempotence, exact round trip, real shared banks."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from uisbench.errors import UisbenchError
from uisbench.store.arrays import load_arrays
from uisbench.store.bank import export_rows, import_file, info
from uisbench.store.bankfile import read_rows, row_to_json
from uisbench.store.engine import open_engine

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "banks"
needs_shared = pytest.mark.skipif(
    not SHARED.is_dir(), reason="../shared/data/banks not present (only in the dev checkout)"
)


def tiny_rows() -> list[dict]:
    rows = []
    for q in range(4):
        for model, acc in (("small", 0.25), ("big", 0.75)):
            for k in range(3):
                correct = (q + k) % 4 < acc * 4
                rows.append({
                    "task": "toy", "query_id": f"q{q}", "split": None, "prompt": f"What is {q}?",
                    "reference": str(q), "model": model, "sample": k,
                    "answer": str(q) if correct else str(q + 1 + k), "correct": correct,
                    "input_tokens": 10 + q, "output_tokens": 3 + k, "cost_usd": 1e-6 * (k + 1),
                    "latency_s": 0.1 * (k + 1), "logprob": -0.5 * k,
                })  # fmt: skip
    return rows


def write_bank(path: Path, rows: list[dict]) -> Path:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wt", encoding="utf-8") as fh:
        for r in rows:
            fh.write(json.dumps(r) + "\n")
    return path


@pytest.fixture
def engine(tmp_path):
    return open_engine(str(tmp_path / "t.db"))


def test_import_twice_adds_nothing_and_round_trips(tmp_path, engine):
    src = write_bank(tmp_path / "toy.jsonl.gz", tiny_rows())
    first = import_file(engine, src)
    assert (first.rows, first.inserted) == (24, 24)
    second = import_file(engine, src)
    assert (second.rows, second.inserted) == (24, 0)
    with engine.connect() as conn:
        exported = [json.loads(row_to_json(r)) for r in export_rows(conn, "toy")]
    key = lambda r: (r["model"], r["query_id"], r["sample"])  # noqa: E731
    assert sorted(exported, key=key) == sorted(tiny_rows(), key=key)


def test_info_and_dense_arrays(tmp_path, engine):
    import_file(engine, write_bank(tmp_path / "toy.jsonl", tiny_rows()))
    with engine.connect() as conn:
        df = info(conn).set_index("model")
        arrays = load_arrays(conn, "toy", "toy")
    assert df.loc["small", "accuracy"] == pytest.approx(3 / 12)
    assert df.loc["big", "accuracy"] == pytest.approx(9 / 12)
    big = arrays.models["big"]
    assert big.answer.shape == (4, 3) and (big.n_avail == 3).all()
    assert big.correct.mean() == pytest.approx(0.75)
    # Answer codes are shared across models: equal text means equal code.
    labels = arrays.answer_labels
    assert labels[big.answer[0, 0]] == "0"


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
    rows = tiny_rows()
    mutate(rows[7])
    path = write_bank(tmp_path / "bad.jsonl", rows)
    with pytest.raises(UisbenchError, match=rf"line 8: .*{message}"):
        import_file(engine, path)
    with engine.connect() as conn:
        assert info(conn).empty  # the transaction rolled back: no half-written rows


def test_truncated_gzip_is_refused(tmp_path, engine):
    path = write_bank(tmp_path / "t.jsonl.gz", tiny_rows())
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
