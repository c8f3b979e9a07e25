"""The runner: one decision per test query, a complete run skipped, resume, seeded splits."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.fakes import FakeBank, FakeModel
from uisbench.runner import Runner
from uisbench.store import schema
from uisbench.store.bank import import_file
from uisbench.store.engine import open_engine

#: 3 models x 8 samples on 60 queries; no split, so the runner draws one.
TOY = FakeBank(
    models=tuple(
        FakeModel(m, acc, samples=8, params_b=p, price_in_per_mtok=p, price_out_per_mtok=2 * p)
        for m, acc, p in (("m-small", 0.3, 0.1), ("m-mid", 0.5, 1.0), ("m-big", 0.7, 10.0))
    ),
    queries=60,
)


@pytest.fixture
def engine(tmp_path):
    e = open_engine(str(tmp_path / "r.db"))
    import_file(e, TOY.write(tmp_path), tmp_path / "toy.models.json")
    return e


def decisions(engine, run_id: int) -> pd.DataFrame:
    with engine.connect() as conn:
        query = schema.decisions.select().where(schema.decisions.c.run_id == run_id)
        rows = conn.execute(query.order_by(schema.decisions.c.query_id)).mappings().all()
    return pd.DataFrame(rows).drop(columns=["id"])


def test_one_decision_per_test_query_and_rerun_is_skipped(engine):
    runner = Runner(engine, "toy", "toy")
    res = runner.run("majority:model=m-mid,k=4", seed=1)
    df = decisions(engine, res.run_id)
    assert len(df) == len(runner.test_pos) == df["query_id"].nunique()
    assert (df["samples_used"] == 4).all()
    assert df["flops"].iloc[0] == pytest.approx(2 * 1e9 * (20 + df["output_tokens"].iloc[0]))
    again = Runner(engine, "toy", "toy").run("majority:model=m-mid,k=4", seed=1)
    assert again.skipped and again.run_id == res.run_id


def test_resume_writes_only_missing_decisions_with_identical_results(engine):
    spec = "majority:model=m-big,k=8"
    full = Runner(engine, "toy", "toy").run(spec, seed=2)
    reference = decisions(engine, full.run_id)
    with engine.begin() as conn:  # simulate a kill: half the rows lost, status still running
        drop = reference["query_id"].iloc[::2].tolist()
        conn.execute(schema.decisions.delete().where(schema.decisions.c.query_id.in_(drop)))
        conn.execute(schema.runs.update().values(status="running"))
    resumed = Runner(engine, "toy", "toy").run(spec, seed=2)
    assert resumed.resumed and resumed.run_id == full.run_id
    pd.testing.assert_frame_equal(decisions(engine, full.run_id), reference)


def test_seeded_split_is_reused_and_depends_on_the_seed(engine):
    a = Runner(engine, "toy", "toy", split_seed=5)
    b = Runner(engine, "toy", "toy", split_seed=5)
    c = Runner(engine, "toy", "toy", split_seed=6)
    assert list(a.split) == list(b.split) and list(a.split) != list(c.split)
    assert 0 < len(a.train_pos) < len(a.test_pos)


def test_a_new_run_is_written_and_closed_in_one_transaction(engine):
    """Its runs row, decision rows, summary and status: one commit (the per-run cost of
    writing), and a complete run is then found without writing anything."""
    from sqlalchemy import event

    runner = Runner(engine, "toy", "toy")
    commits: list[int] = []
    event.listen(engine, "commit", lambda conn: commits.append(1))
    res = runner.run("majority:model=m-mid,k=4", seed=3)
    assert len(commits) == 1 and len(decisions(engine, res.run_id)) == len(runner.test_pos)
    assert runner.run("majority:model=m-mid,k=4", seed=3).skipped and len(commits) == 1


def test_a_run_stopped_between_commits_resumes_to_the_rows_of_one_never_stopped(
    engine, tmp_path, monkeypatch
):
    """Rows are committed as the run goes (here after every chunk, FLUSH_S = 0): a run stopped
    by Ctrl-C after a few chunks keeps them, and its resume writes the rest, so the run ends
    with the rows of a run that was never stopped."""
    import uisbench.runner as runner_module
    import uisbench.strategies.uniscale as uniscale
    from uisbench.strategies.base import STRATEGIES

    monkeypatch.setattr(uniscale, "CHUNK", 8)  # a bandit yielding 8 queries at a time
    spec = "uniscale:batch=4"
    reference_db = open_engine(str(tmp_path / "ref.db"))
    import_file(reference_db, TOY.write(tmp_path), tmp_path / "toy.models.json")
    reference = decisions(reference_db, Runner(reference_db, "toy", "toy").run(spec).run_id)
    cls = STRATEGIES.get("uniscale")
    real = cls.run

    def stopped(self, ctx):
        for i, chunk in enumerate(real(self, ctx)):
            yield chunk
            if i == 2:
                raise KeyboardInterrupt

    monkeypatch.setattr(runner_module, "FLUSH_S", 0.0)
    monkeypatch.setattr(cls, "run", stopped)
    with pytest.raises(KeyboardInterrupt):
        Runner(engine, "toy", "toy").run(spec)
    with engine.connect() as conn:
        assert conn.execute(schema.runs.select()).one().status == "running"
        kept = conn.execute(schema.decisions.select()).all()
    assert 0 < len(kept) < len(reference)  # the committed chunks, not the whole run
    monkeypatch.setattr(cls, "run", real)
    resumed = Runner(engine, "toy", "toy").run(spec)
    assert resumed.resumed
    got = decisions(engine, resumed.run_id)
    pd.testing.assert_frame_equal(got.drop(columns="run_id"), reference.drop(columns="run_id"))
