"""The columnar import reader (pyarrow) must accept and reject exactly what the line checks do.

``read_blocks`` parses whole blocks in C++ and falls back to ``parse_line`` when anything looks
unusual; these tests pin that the two readers agree, value for value and error for error.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fakes import write_jsonl
from uisbench.errors import UisbenchError
from uisbench.store import bankfile
from uisbench.store.bankfile import ALL_FIELDS, read_blocks, read_rows

BASE = {
    "task": "t",
    "query_id": "q",
    "split": None,
    "prompt": 'say "hi" ü',
    "reference": "r",
    "model": "m",
    "sample": 0,
    "answer": "a",
    "correct": True,
    "input_tokens": 3,
    "output_tokens": 4,
    "cost_usd": 0.1,
    "latency_s": 0.2,
    "logprob": -1.0,
}

CASES = {
    "float tokens": {"input_tokens": 3.0},
    "bool sample": {"sample": True},
    "negative sample": {"sample": -1},
    "int correct": {"correct": 1},
    "null correct": {"correct": None},
    "string cost": {"cost_usd": "0.1"},
    "bool cost": {"cost_usd": True},
    "number answer": {"answer": 5},
    "negative tokens": {"output_tokens": -1},
    "bad split": {"split": "dev"},
    "empty task": {"task": ""},
    "null model": {"model": None},
    "missing logprob": "logprob",
    "missing answer": "answer",
    "int logprob": {"logprob": -1},
    "null everything optional": {
        "split": None,
        "reference": None,
        "answer": None,
        "input_tokens": None,
        "output_tokens": None,
        "cost_usd": None,
        "latency_s": None,
        "logprob": None,
    },
    "extensions": {"text": "full text", "score": 0.5},
    "unknown field": {"other": 1},
    "train split": {"split": "train"},
    "ESC in a model name": {"model": "m\x1b[2J"},
    "C1 control in a query id": {"query_id": "q\x9b1"},
    "ESC in an answer (model output: kept)": {"answer": "a\x1bb"},
}


def outcome(reader, path: Path):
    try:
        if reader is read_rows:
            return [tuple(getattr(r, f) for f in ALL_FIELDS) for r in read_rows(path)]
        return [
            tuple(row[f] for f in ALL_FIELDS) for t in read_blocks(path) for row in t.to_pylist()
        ]
    except UisbenchError as exc:
        return f"error: {exc}"


@pytest.mark.parametrize("compact", [True, False])
@pytest.mark.parametrize("case", list(CASES))
def test_columnar_reader_agrees_with_line_checks(tmp_path, case, compact):
    rows = [dict(BASE, query_id=f"q{i}", sample=i % 3) for i in range(6)]
    change = CASES[case]
    if isinstance(change, str):
        del rows[3][change]
    else:
        rows[3].update(change)
    path = write_jsonl(tmp_path / "b.jsonl", rows, compact=compact)
    assert outcome(read_blocks, path) == outcome(read_rows, path)


@pytest.mark.parametrize("compact", [True, False])
def test_valid_blocks_take_the_arrow_path(tmp_path, monkeypatch, compact):
    """Guard against the fast path silently never running (the agreement test would pass)."""

    def no_fallback(*args, **kwargs):
        raise AssertionError("fell back to line-by-line parsing")

    monkeypatch.setattr(bankfile, "_python_block", no_fallback)
    rows = [dict(BASE, query_id=f"q{i}", sample=i % 3) for i in range(6)]
    rows[2].update(CASES["null everything optional"])
    path = write_jsonl(tmp_path / "b.jsonl", rows, compact=compact)
    assert len(outcome(read_blocks, path)) == 6


def test_blocks_split_lines_correctly(tmp_path, monkeypatch):
    """Small blocks: lines cut at block edges, and error line numbers count across blocks."""
    monkeypatch.setattr(bankfile, "BLOCK_BYTES", 700)
    rows = [dict(BASE, query_id=f"q{i}", sample=i, logprob=-0.1 * i) for i in range(40)]
    path = write_jsonl(tmp_path / "b.jsonl.gz", rows, compact=True)
    good = outcome(read_blocks, path)
    assert good == outcome(read_rows, path) and len(good) == 40
    rows[33]["correct"] = "yes"
    path = write_jsonl(tmp_path / "c.jsonl.gz", rows, compact=True)
    err = outcome(read_blocks, path)
    assert err == outcome(read_rows, path) and "line 34" in err


def test_truncated_gzip_is_an_error(tmp_path):
    rows = [dict(BASE, query_id=f"q{i}") for i in range(2000)]
    path = write_jsonl(tmp_path / "b.jsonl.gz", rows, compact=True)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(UisbenchError, match="unreadable"):
        list(read_blocks(path))


@pytest.mark.parametrize("compact", [True, False])
def test_a_missing_field_beside_written_nulls_is_refused(tmp_path, compact):
    """Arrow reads a missing field as null: the block must not pass for one whose nulls are
    all written (one line without ``answer``, one with ``"answer": null``, one whose prompt
    holds the text ``"answer": null``)."""
    rows = [dict(BASE, query_id=f"q{i}", sample=i % 3) for i in range(6)]
    rows[1]["answer"] = None
    rows[2]["prompt"] = '{"answer": null}'
    del rows[4]["answer"]
    path = write_jsonl(tmp_path / "b.jsonl", rows, compact=compact)
    assert "line 5" in outcome(read_blocks, path) == outcome(read_rows, path)


def test_a_block_parsed_in_parts(tmp_path, monkeypatch):
    """A block parsed in parts on pyarrow's threads gives the rows in order, and a line longer
    than a part is parsed with the block whole (not by the line-by-line reader)."""

    def no_fallback(*args, **kwargs):
        raise AssertionError("fell back to line-by-line parsing")

    monkeypatch.setattr(bankfile, "_python_block", no_fallback)
    monkeypatch.setattr(bankfile, "PARSE_PARTS", 1000)  # parts of PARSE_PART_MIN bytes
    monkeypatch.setattr(bankfile, "PARSE_PART_MIN", 512)
    rows = [dict(BASE, query_id=f"q{i}", sample=i, logprob=-0.1 * i) for i in range(200)]
    rows[150]["prompt"] = "long " * 400  # 2,000 characters: longer than a part
    path = write_jsonl(tmp_path / "b.jsonl", rows)
    got = outcome(read_blocks, path)
    assert got == outcome(read_rows, path) and len(got) == 200
    parts = [t.column("query_id").num_chunks for t in read_blocks(path)]
    rows[150]["prompt"] = "short"
    short = write_jsonl(tmp_path / "c.jsonl", rows)
    assert [t.column("query_id").num_chunks for t in read_blocks(short)] > [1] == parts
