"""The columnar first import (store/staging.py) stores what the row-by-row import stores.

Every case imports the same files twice, into two databases: once as uisbench does (staged
through ADBC whenever it can) and once with staging switched off, then compares everything
stored by content (ids aside), the bank's digest, the import's figures and any error line.
Each case also says which way the first database went, so that a fallback cannot pass for the
columnar path or the reverse.
"""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import pytest

from tests.fakes import FakeBank, FakeModel, write_jsonl
from uisbench.errors import UisbenchError
from uisbench.store import bank, staging
from uisbench.store.engine import open_engine

pytest.importorskip("adbc_driver_sqlite")
USABLE = staging.usable

BANK = FakeBank(
    models=(
        FakeModel("small", 0.3, samples=4, cost_usd=1e-6),
        FakeModel("mid", 0.6, samples=2, cost_usd=3e-6),
        FakeModel("big", 0.8, samples=3, cost_usd=9e-6),
    ),
    queries=40,
    missing=0.2,  # answers and log-probs null in places
    train=10,
)


def write(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_jsonl(path, rows)


def rows_of(bank_: FakeBank = BANK, **change) -> list[dict]:
    rows = bank_.rows()
    for i, r in enumerate(rows):
        if i % 7 == 0:
            r["text"], r["score"] = f"output {i}", i / 10
        if i % 11 == 0:
            r["task"] = "other"  # two tasks, interleaved within a block
    return [dict(r, **change) for r in rows]


def content(db: Path) -> dict[str, list]:
    """Everything stored, by names instead of ids, with SQLite's storage class per value."""
    conn = sqlite3.connect(db)
    try:
        sample_cols = """s.sample_index, s.answer, s.correct, typeof(s.correct), s.text, s.score,
        s.input_tokens, typeof(s.input_tokens), s.output_tokens, s.cost_usd, typeof(s.cost_usd),
        s.latency_s, s.logprob, typeof(s.logprob)"""
        return {
            "samples": conn.execute(
                f"SELECT b.name, t.name, q.query_key, m.name, {sample_cols} FROM samples s "
                "JOIN banks b ON b.id = s.bank_id JOIN queries q ON q.id = s.query_id "
                "JOIN tasks t ON t.id = q.task_id JOIN models m ON m.id = s.model_id "
                "ORDER BY s.id"
            ).fetchall(),
            "queries": conn.execute(
                "SELECT t.name, t.description, q.query_key, q.split, q.prompt, q.reference "
                "FROM queries q JOIN tasks t ON t.id = q.task_id ORDER BY q.id"
            ).fetchall(),
            "models": conn.execute(
                "SELECT name, family, params_total, price_in_per_mtok FROM models ORDER BY name"
            ).fetchall(),
            "banks": conn.execute(
                "SELECT name, source, config, synthetic, content_sum, content_rows FROM banks "
                "ORDER BY name"
            ).fetchall(),
        }
    finally:
        conn.close()


class Ways:
    """Which way each import into the staged database went."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.seen: list[str] = []
        stage = staging.stage

        def way(name, function):
            def wrapped(*args, **kwargs):
                try:
                    stats = function(*args, **kwargs)
                except staging.Unstageable as exc:
                    self.seen.append(f"fallback: {exc}")
                    raise
                self.seen.append(name)
                return stats

            return wrapped

        @contextlib.contextmanager
        def staged_or_not(*args, **kwargs):
            with stage(*args, **kwargs) as staged:
                if staged is None:
                    self.seen.append("fallback: not staged")
                yield staged

        monkeypatch.setattr(bank, "_import_staged", way("staged", bank._import_staged))
        monkeypatch.setattr(bank, "_import_held", way("held: same content", bank._import_held))
        monkeypatch.setattr(staging, "stage", staged_or_not)


def both(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, files: list[Path], **kw):
    """Import ``files`` in turn into a staged and a row-by-row database: (outcomes, contents,
    ways of the staged one). An outcome is the import's figures or its error line."""
    ways = Ways(monkeypatch)
    out = {}
    for way in ("staged", "rows"):
        db = tmp_path / f"{way}.db"
        engine = open_engine(str(db))
        usable = USABLE if way == "staged" else (lambda e: False)
        monkeypatch.setattr(staging, "usable", usable)
        results = []
        for f in files:
            try:
                models = f.with_suffix("").with_suffix(".models.json")
                s = bank.import_file(engine, f, models if models.exists() else None, **kw)
                results.append(vars(s))
            except UisbenchError as exc:
                results.append(str(exc))
        engine.dispose()
        out[way] = (results, content(db))
        if way == "staged":
            seen = list(ways.seen)
    assert out["staged"] == out["rows"]
    return out["staged"][0], out["staged"][1], seen


def test_a_first_import_is_staged_and_stores_what_rows_store(tmp_path, monkeypatch):
    f = write(tmp_path / "b.jsonl.gz", rows_of())
    (tmp_path / "b.models.json").write_text(
        '{"small": {"family": "f", "params_total": 1.0, "price_in_per_mtok": 0.1}, '
        '"ghost": {"family": "g"}, "embed:minilm": {"price_in_per_mtok": 0.02}}'
    )
    results, stored, ways = both(tmp_path, monkeypatch, [f], describe=lambda t: f"about {t}")
    assert ways == ["staged"]
    assert results[0]["inserted"] == len(rows_of()) == len(stored["samples"])
    assert results[0]["unknown_models"] == ["ghost"]
    assert {r[0] for r in stored["queries"]} == {"toy", "other"}
    assert stored["banks"][0][5] == len(rows_of())  # the digest's row count kept


def test_a_second_file_into_the_same_bank_goes_row_by_row(tmp_path, monkeypatch):
    rows = rows_of()
    a = write(tmp_path / "a" / "b.jsonl", rows[:200])
    b = write(tmp_path / "b" / "b.jsonl", rows[150:])  # 50 rows held, the rest new
    results, stored, ways = both(tmp_path, monkeypatch, [a, b, b, a])
    # only the first: the others have another number of lines than the bank has samples,
    # so they cannot be its content and are compared row by row without a first read
    assert ways == ["staged"]
    assert [r["inserted"] for r in results] == [200, len(rows) - 200, 0, 0]


def test_the_same_file_again_adds_nothing_without_a_row_compared(tmp_path, monkeypatch):
    f = write(tmp_path / "a" / "b.jsonl.gz", rows_of())
    again = write(tmp_path / "b" / "b.jsonl.gz", rows_of())  # with a models file this time
    (again.parent / "b.models.json").write_text(
        '{"small": {"family": "f", "params_b": 1.5}, "embed:x": {"price_in_per_mtok": 0.1}}'
    )
    results, stored, ways = both(tmp_path, monkeypatch, [f, again])
    assert ways == ["staged", "held: same content"]
    assert [r["inserted"] for r in results] == [len(rows_of()), 0]
    # metadata still empty is filled, as by the row-by-row import
    assert ("small", "f", 1.5e9, None) in stored["models"]
    assert ("embed:x", None, None, 0.1) in stored["models"]


@pytest.mark.parametrize(
    "change",
    [
        {"correct": None},  # one sample's correctness flipped (set below)
        {"cost_usd": 5e-6},
        {"prompt": "another prompt"},  # every row of one query
    ],
)
def test_the_same_file_changed_is_compared_row_by_row(tmp_path, monkeypatch, change):
    rows = rows_of()
    a = write(tmp_path / "a" / "b.jsonl", rows)
    changed = [dict(r) for r in rows]
    if "prompt" in change:
        for r in changed:
            if (r["task"], r["query_id"]) == (rows[1]["task"], rows[1]["query_id"]):
                r.update(change)
    elif "correct" in change:
        changed[17]["correct"] = not rows[17]["correct"]
    else:
        changed[17].update(change)
    b = write(tmp_path / "b" / "b.jsonl", changed)
    for conflict in ("refuse", "replace"):
        folder = tmp_path / conflict
        folder.mkdir()
        results, stored, ways = both(folder, monkeypatch, [a, b], on_conflict=conflict)
        assert ways == ["staged", "fallback: the file's content is not the bank's"]
        if conflict == "refuse":
            assert "already held" in results[1]
        else:
            assert results[1]["replaced"] > 0


def test_another_bank_of_the_same_queries_is_staged(tmp_path, monkeypatch):
    a = write(tmp_path / "a.jsonl", rows_of())
    b = write(tmp_path / "b.jsonl", rows_of(BANK))
    results, _, ways = both(tmp_path, monkeypatch, [a, b])
    assert ways == ["staged", "staged"]  # the queries are held, with the same content
    assert [r["bank"] for r in results] == ["a", "b"]


@pytest.mark.parametrize("change", [{"prompt": "another prompt"}, {"reference": "another"}])
def test_a_query_held_with_other_content_falls_back(tmp_path, monkeypatch, change):
    a = write(tmp_path / "a.jsonl", rows_of())
    rows = rows_of()
    for r in rows:  # every row of the first query: the file agrees with itself
        if (r["task"], r["query_id"]) == (rows[1]["task"], rows[1]["query_id"]):
            r.update(change)
    b = write(tmp_path / "b.jsonl", rows)
    for conflict in ("refuse", "replace"):
        folder = tmp_path / conflict
        folder.mkdir()
        results, _, ways = both(folder, monkeypatch, [a, b], on_conflict=conflict)
        assert ways == ["staged", "fallback: a query is held with other content"]
        if "prompt" in change and conflict == "refuse":
            assert "already held with another prompt or split" in results[1]
        else:
            assert results[1]["inserted"] == len(rows)


def test_rows_of_one_query_that_disagree_are_left_to_the_rows_import(tmp_path, monkeypatch):
    rows = rows_of()
    rows[-1]["prompt"] = "not the prompt of its query's first row"
    f = write(tmp_path / "b.jsonl", rows)
    results, _, ways = both(tmp_path, monkeypatch, [f])
    assert ways == ["fallback: not staged"]
    assert "already held with another prompt or split" in results[0]


@pytest.mark.parametrize("same", [True, False])
def test_a_repeated_sample_key_is_left_to_the_rows_import(tmp_path, monkeypatch, same):
    rows = rows_of()
    again = dict(rows[5]) if same else dict(rows[5], correct=not rows[5]["correct"])
    f = write(tmp_path / "b.jsonl", [*rows, again])
    results, stored, ways = both(tmp_path, monkeypatch, [f])
    assert ways == ["fallback: a sample key repeats"]
    if same:  # skipped as the rows import skips it
        assert results[0]["inserted"] == len(rows) == len(stored["samples"])
    else:
        assert "already held with other values" in results[0]
        assert stored["samples"] == []  # nothing of the import kept


def test_bad_files_are_refused_alike_and_leave_nothing(tmp_path, monkeypatch):
    empty = tmp_path / "e" / "empty.jsonl"
    empty.parent.mkdir()
    empty.write_text("")
    lines = [*rows_of()[:30]]
    bad = write(tmp_path / "x" / "bad.jsonl", lines)
    bad.write_text(bad.read_text() + '{"task": "toy", "oops": 1}\n')
    results, stored, ways = both(tmp_path, monkeypatch, [empty, bad])
    assert all(isinstance(r, str) for r in results), results
    assert stored["samples"] == [] and stored["banks"] == []
    assert ways == []  # neither reached the database's transaction


def test_the_scratch_file_is_removed(tmp_path, monkeypatch):
    import tempfile

    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    f = write(tmp_path / "b.jsonl", rows_of())
    engine = open_engine(str(tmp_path / "t.db"))
    assert bank.import_file(engine, f).inserted == len(rows_of())
    assert list(scratch.iterdir()) == []


def test_row_by_row_when_adbc_is_missing(monkeypatch, tmp_path):
    import importlib.util

    engine = open_engine(str(tmp_path / "t.db"))
    assert staging.usable(engine)
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda n, *a: None if n == "adbc_driver_sqlite" else real(n)
    )
    assert not staging.usable(engine)


def test_a_scratch_file_that_cannot_be_written_falls_back(tmp_path, monkeypatch):
    """A full temp folder (ADBC's error while staging): the import goes row by row, which
    needs no scratch space, and stores the same."""
    from adbc_driver_manager import AdbcStatusCode, OperationalError

    fill = staging.Staged.fill

    def full(self, conn, blocks, sha, packing=None):
        if conn is None:  # a held bank's read: no scratch file
            return fill(self, conn, blocks, sha, packing)
        raise OperationalError("database or disk is full", status_code=AdbcStatusCode.IO)

    monkeypatch.setattr(staging.Staged, "fill", full)
    f = write(tmp_path / "b.jsonl", rows_of())
    results, stored, ways = both(tmp_path, monkeypatch, [f, f])
    assert ways == ["fallback: not staged", "held: same content"]
    assert [r["inserted"] for r in results] == [len(rows_of()), 0]


def test_the_same_samples_with_a_blank_line_are_compared_row_by_row(tmp_path, monkeypatch):
    """A line more than the bank has samples: not read for its digest first (a blank line
    is counted), compared row by row, and adds nothing either way."""
    f = write(tmp_path / "a" / "b.jsonl", rows_of())
    blank = tmp_path / "b" / "b.jsonl"
    blank.parent.mkdir()
    blank.write_text(f.read_text() + "\n")
    results, _, ways = both(tmp_path, monkeypatch, [f, blank])
    assert ways == ["staged"]
    assert [r["inserted"] for r in results] == [len(rows_of()), 0]


def test_count_lines(tmp_path):
    from uisbench.store.bankfile import count_lines

    plain, gz = tmp_path / "a.jsonl", tmp_path / "b.jsonl.gz"
    for text, n in (("", 0), ("{}\n", 1), ("{}\n{}", 2), ("{}\n\n{}\n", 3)):
        plain.write_text(text)
        write_jsonl(gz, [{}] * n)
        assert (count_lines(plain), count_lines(gz)) == (n, n)
    gz.write_bytes(gz.read_bytes()[:-5])  # a truncated gzip member
    assert count_lines(gz) == -1 and count_lines(tmp_path / "missing.jsonl") == -1


def test_foreign_keys_hold_around_the_copy(tmp_path, monkeypatch):
    """The copy's foreign keys are checked set-wise (the pragma off for its transaction): a
    query id that is not stored is refused with nothing written, and the connection goes back
    to the pool with its foreign keys on, after a copy and after a fallback."""
    import sqlalchemy

    f = write(tmp_path / "b.jsonl", rows_of())
    engine = open_engine(str(tmp_path / "t.db"))
    move = staging.Staged.move
    monkeypatch.setattr(
        staging.Staged,
        "move",
        lambda self, conn, bank_id, q, m: move(self, conn, bank_id, [i + 10**6 for i in q], m),
    )
    with pytest.raises(UisbenchError, match="referenced ids are not stored"):
        bank.import_file(engine, f)
    monkeypatch.setattr(staging.Staged, "move", move)
    assert content(tmp_path / "t.db")["samples"] == []

    def orphan() -> None:
        with engine.begin() as conn:
            conn.exec_driver_sql(
                "INSERT INTO samples (bank_id, query_id, model_id, sample_index, correct) "
                "VALUES (1, 1, 424242, 0, 1)"
            )

    for rows in (rows_of(), [*rows_of(), rows_of()[0]]):  # copied; a repeated key: fallback
        db = tmp_path / f"{len(rows)}.db"
        engine = open_engine(str(db))
        bank.import_file(engine, write(tmp_path / f"{len(rows)}" / "b.jsonl", rows))
        for _ in range(3):  # whichever pooled connection
            with pytest.raises(sqlalchemy.exc.IntegrityError, match="FOREIGN KEY"):
                orphan()
        engine.dispose()
