"""Bank validation: one rule set for both readers, conflicts refused or replaced, models.json.

Acceptance does not depend on block boundaries: the property test cuts the same rows into random
blocks, with blank lines, and requires the columnar reader, the line reader and the import to
agree (rows, or the same one-line error).
"""

from __future__ import annotations

import json
import math
import tempfile
from dataclasses import astuple
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from uisbench.errors import UisbenchError
from uisbench.store import bankfile, schema
from uisbench.store.bank import export_rows, import_file
from uisbench.store.bankfile import ALL_FIELDS, read_blocks, read_models_file, read_rows
from uisbench.store.engine import open_engine


def row(q: int = 0, model: str = "m", sample: int = 0, **change) -> dict:
    base = dict(task="t", query_id=f"q{q}", split="test", prompt=f"p{q}", reference="1")
    base |= dict(model=model, sample=sample, answer="1", correct=True, input_tokens=3)
    base |= dict(output_tokens=4, cost_usd=0.5, latency_s=0.25, logprob=-1.0)
    return {**base, **change}


def write(path: Path, rows: list[dict], blanks: frozenset[int] = frozenset()) -> Path:
    lines = []
    for i, r in enumerate(rows):
        if i in blanks:
            lines.append("")
        lines.append(json.dumps(r, separators=(",", ":")))  # NaN/Infinity written as such
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def outcome(path: Path, reader) -> list[tuple] | str:
    try:
        if reader is read_rows:
            return [tuple(getattr(r, f) for f in ALL_FIELDS) for r in read_rows(path)]
        return [tuple(r[f] for f in ALL_FIELDS) for t in read_blocks(path) for r in t.to_pylist()]
    except UisbenchError as exc:
        return f"error: {exc}"


BAD_VALUES = {
    # non-finite, negative, and finite but absurd (the plausible-range table, bankfile.BOUNDS)
    "cost_usd": [math.nan, math.inf, -math.inf, -0.5, 1e308, 1000.5],
    "latency_s": [math.nan, math.inf, -1.0, 1e300],
    "logprob": [math.nan, -math.inf, 0.5, -1e300],
    "score": [1e300, -1e10],
    "input_tokens": [-1, 10**8 + 1, 2**31, 2**53 + 1, 2**63],
    "output_tokens": [2**31],
    "sample": [10_000, 2**31, 2**63, -1],
}


@pytest.mark.parametrize("field,value", [(f, v) for f, vs in BAD_VALUES.items() for v in vs])
def test_out_of_bounds_values_are_refused_by_both_readers(tmp_path, field, value):
    rows = [row(q=i) for i in range(5)]
    rows[3][field] = value
    path = write(tmp_path / "b.jsonl", rows)
    fast, slow = outcome(path, read_blocks), outcome(path, read_rows)
    assert fast == slow
    assert isinstance(fast, str) and "line 4" in fast, fast


def test_the_largest_plausible_values_are_accepted(tmp_path):
    top = dict(cost_usd=1000.0, latency_s=86_400.0, logprob=-1e9, input_tokens=10**8)
    path = write(tmp_path / "b.jsonl", [row(sample=9_999, score=-1e9, **top)])
    rows = outcome(path, read_blocks)
    assert rows == outcome(path, read_rows) and isinstance(rows, list) and len(rows) == 1


def row_lists():
    value = st.one_of(
        st.sampled_from([0.0, 0.5, 3.0, None]),
        st.sampled_from([math.nan, math.inf, -1.0]),  # bad, rarely drawn next to the good
    )
    one = st.builds(
        lambda q, m, k, cost, lat: row(q=q, model=m, sample=k, cost_usd=cost, latency_s=lat),
        st.integers(0, 5),
        st.sampled_from(["a", "b"]),
        st.integers(0, 2),
        st.one_of(st.floats(0, 10, allow_nan=False), value),
        st.one_of(st.floats(0, 10, allow_nan=False), st.none()),
    )
    return st.lists(one, min_size=1, max_size=40)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=row_lists(),
    block=st.integers(60, 3000),
    blanks=st.frozensets(st.integers(0, 40), max_size=4),
)
def test_readers_agree_whatever_the_blocks(rows, block, blanks):
    with tempfile.TemporaryDirectory() as d:
        path = write(Path(d) / "b.jsonl", rows, blanks)
        slow = outcome(path, read_rows)
        old = bankfile.BLOCK_BYTES
        bankfile.BLOCK_BYTES = block
        try:
            fast = outcome(path, read_blocks)
        finally:
            bankfile.BLOCK_BYTES = old
    assert fast == slow


def import_outcome(path: Path, db: Path, **kw) -> tuple:
    """Stats (or the error) and the samples as held, for comparing imports."""
    engine = open_engine(str(db))
    try:
        stats = import_file(engine, path, **kw)
        result: object = (stats.rows, stats.inserted, stats.replaced)
    except UisbenchError as exc:
        result = str(exc)
    with engine.connect() as conn:
        held = sorted(astuple(r) for r in export_rows(conn, "b")) if _has_bank(conn) else []
    engine.dispose()
    return result, held


def _has_bank(conn) -> bool:
    return conn.execute(select(func.count()).select_from(schema.banks)).scalar() > 0


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=st.lists(
        st.builds(
            lambda q, m, k, ok, p: row(q=q, model=m, sample=k, correct=ok, prompt=f"p{q}{p}"),
            st.integers(0, 3),
            st.sampled_from(["a", "b"]),
            st.integers(0, 1),
            st.booleans(),
            st.sampled_from(["", "", "", "x"]),
        ),
        min_size=1,
        max_size=25,
    ),
    block=st.integers(60, 2000),
    blanks=st.frozensets(st.integers(0, 25), max_size=3),
)
def test_import_outcome_does_not_depend_on_blocks(rows, block, blanks):
    """Duplicates and conflicts within one file: same verdict on the columnar and line paths."""
    with tempfile.TemporaryDirectory() as d:
        plain = import_outcome(write(Path(d) / "b.jsonl", rows), Path(d) / "one.db")
        old = bankfile.BLOCK_BYTES
        bankfile.BLOCK_BYTES = block
        try:
            cut = import_outcome(write(Path(d) / "b.jsonl", rows, blanks), Path(d) / "two.db")
        finally:
            bankfile.BLOCK_BYTES = old
    assert plain == cut
    if isinstance(plain[0], str):
        assert plain[1] == []  # refused: nothing held


@pytest.fixture
def engine(tmp_path):
    return open_engine(str(tmp_path / "t.db"))


def test_conflicting_sample_is_refused_then_replaced(tmp_path, engine):
    base = [row(q=q, sample=k) for q in range(3) for k in range(2)]
    import_file(engine, write(tmp_path / "b.jsonl", base))
    changed = [dict(r) for r in base]
    changed[4] = dict(changed[4], answer="2", correct=False)
    again = write(tmp_path / "b.jsonl", changed)
    with pytest.raises(UisbenchError, match="another answer or correctness"):
        import_file(engine, again)
    stats = import_file(engine, again, on_conflict="replace")
    assert (stats.inserted, stats.replaced) == (0, 1)
    with engine.connect() as conn:
        held = {(r.query_id, r.sample): (r.answer, r.correct) for r in export_rows(conn, "b")}
    assert held[("q2", 0)] == ("2", False) and held[("q0", 0)] == ("1", True)
    assert import_file(engine, again).replaced == 0  # now identical: nothing to do


def test_duplicate_within_a_file_with_another_answer_is_refused(tmp_path, engine):
    rows = [row(), row(q=1), row(answer="7", correct=False)]
    with pytest.raises(UisbenchError, match="another answer"):
        import_file(engine, write(tmp_path / "b.jsonl", rows))
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(schema.samples)).scalar() == 0
    same = [row(), row(q=1), row()]
    assert import_file(engine, write(tmp_path / "b.jsonl", same)).inserted == 2


@pytest.mark.parametrize("change", [{"prompt": "other"}, {"split": "train"}, {"split": None}])
def test_query_id_with_another_prompt_or_split(tmp_path, engine, change):
    import_file(engine, write(tmp_path / "b.jsonl", [row(q=0), row(q=1)]))
    other = write(tmp_path / "c.jsonl", [row(q=0, model="n"), row(q=1, model="n", **change)])
    with pytest.raises(UisbenchError, match="'q1' of task 't' is already held with another"):
        import_file(engine, other)
    stats = import_file(engine, other, on_conflict="replace")
    assert (stats.inserted, stats.replaced) == (2, 1)
    with engine.connect() as conn:
        q1 = [r for r in export_rows(conn, "c") if r.query_id == "q1"][0]
    assert (q1.prompt, q1.split) == (change.get("prompt", "p1"), change.get("split", "test"))


@pytest.mark.parametrize(
    "meta,message",
    [
        ({"m": {"params_b": -1}}, r"m.params_b must be a number in 0..1e5 \(billions\)"),
        ({"m": {"params_b": 1e300}}, "m.params_b must be a number in 0..1e5"),
        ({"m": {"price_in_per_mtok": "x"}}, "m.price_in_per_mtok must be a number"),
        ({"m": {"price_out_per_mtok": 1e308}}, "m.price_out_per_mtok must be a number in"),
        ({"m": {"active_params_b": "x"}}, "m.active_params_b must be a number"),
        ({"m": {"train_tokens_t": True}}, "m.train_tokens_t must be a number"),
        ({"m": {"train_tokens_t": 2e4}}, "m.train_tokens_t must be a number in 0..1e4"),
        ({"m": {"family": 3}}, "m.family must be a string"),
        ({"m": 3}, "metadata of 'm' is not an object"),
    ],
)
def test_models_file_values_are_validated(tmp_path, meta, message):
    path = tmp_path / "b.models.json"
    path.write_text(json.dumps(meta))
    with pytest.raises(UisbenchError, match=message):
        read_models_file(path)


@pytest.mark.parametrize("text", [b'{"m": {"params_b": NaN}}', b'{"m": {"params_b": 1e999}}'])
def test_models_file_non_finite_numbers(tmp_path, text):
    path = tmp_path / "b.models.json"
    path.write_bytes(text)
    with pytest.raises(UisbenchError, match="b.models.json"):
        read_models_file(path)


def test_models_file_not_utf8(tmp_path):
    path = tmp_path / "b.models.json"
    path.write_bytes(b'{"m\xff": {}}')
    with pytest.raises(UisbenchError, match="not UTF-8"):
        read_models_file(path)


def test_unknown_models_are_reported(tmp_path, engine):
    models = tmp_path / "b.models.json"
    models.write_text(json.dumps({"m": {"params_b": 1}, "ghost": {"params_b": 2}}))
    stats = import_file(engine, write(tmp_path / "b.jsonl", [row()]), models)
    assert stats.unknown_models == ["ghost"]
