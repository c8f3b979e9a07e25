"""Strategies cannot see test correctness: a plugin that reads it fails with a clear error,
while evaluation-only figures computed after the decisions still reach the database."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from tests.fakes import FakeBank, FakeModel
from uisbench.blind import HIDDEN_MESSAGE
from uisbench.errors import UisbenchError
from uisbench.runner import Runner
from uisbench.store import schema
from uisbench.store.bank import import_file
from uisbench.store.engine import open_engine
from uisbench.strategies import Decisions, RunContext, Strategy

#: One model, 4 samples on 40 queries, a third of them right; the runner draws the split.
BANK = FakeBank(models=(FakeModel("m", 1 / 3, samples=4),), queries=40)


class Peeking(Strategy):
    """Picks the first sample, having looked at the test split's correctness."""

    name = "peeking"
    family = "reference"
    description = "test plugin: reads test correctness from the meter's bank"

    def run(self, ctx: RunContext) -> Iterator[Decisions]:
        truth = ctx.meter.bank.models["m"].correct[ctx.stream]
        np.asarray(truth)  # any use of the values
        draw = ctx.meter.draw("m", ctx.stream, 1)
        yield Decisions(ctx.stream, draw.handle[:, 0])


class Evaluated(Strategy):
    """Decides blind, then reports an evaluation-only figure from the full bank."""

    name = "evaluated"
    family = "reference"
    description = "test plugin: an evaluation figure computed after its decisions"

    def run(self, ctx: RunContext) -> Iterator[Decisions]:
        yield Decisions(ctx.stream, ctx.meter.draw("m", ctx.stream, 1).handle[:, 0])

    def evaluate(self, truth, ctx):
        share = truth.models["m"].correct[ctx.stream].mean(axis=1)
        return [{"share_correct": float(v)} for v in share]


@pytest.fixture
def runner(tmp_path):
    engine = open_engine(str(tmp_path / "r.db"))
    import_file(engine, BANK.write(tmp_path), tmp_path / "toy.models.json")
    return Runner(engine, "toy", "toy")


@pytest.mark.parametrize(
    "read",
    [
        lambda c: np.asarray(c),
        lambda c: c.sum(),
        lambda c: c[0, 0] & True,
        lambda c: c.shape,
        lambda c: bool(c[0, 0]),
    ],
)
def test_every_way_of_reading_hidden_correctness_raises(runner, read):
    from uisbench.meter import Meter, local_client

    parent = Meter(runner.arrays, seed=0)
    meter = local_client(parent)  # what a strategy holds
    with pytest.raises(UisbenchError, match="hidden from strategies"):
        read(meter.bank.models["m"].correct)
    # The training split keeps it, and the meter still grades committed answers.
    assert runner.train.models["m"].correct.sum() > 0
    # Feedback grades the answer committed, against the bank's truth, and nothing else.
    q = runner.test_pos[:3]
    h = meter.draw("m", q, 4).handle
    meter.decide(q, h[:, 2])
    slot = parent.locate(h[:, 2])[2]
    assert np.array_equal(meter.feedback(h[:, 2]), runner.arrays.models["m"].correct[q, slot])
    with pytest.raises(UisbenchError, match="only for committed decisions"):
        meter.feedback(h[:, 0])


def test_a_peeking_plugin_fails_with_a_clear_error_and_leaves_no_run(runner):
    with pytest.raises(UisbenchError) as err:
        runner.run(Peeking(), seed=0)
    assert str(err.value) == f"strategy peeking: correct: {HIDDEN_MESSAGE}"
    with runner.engine.connect() as conn:
        assert conn.execute(schema.runs.select()).first() is None


def test_evaluation_figures_are_written_after_the_decisions(runner):
    res = runner.run(Evaluated(), seed=0)
    with runner.engine.connect() as conn:
        rows = (
            conn.execute(schema.decisions.select().where(schema.decisions.c.run_id == res.run_id))
            .mappings()
            .all()
        )
    correct = runner.arrays.models["m"].correct
    qpos = {int(q): i for i, q in enumerate(runner.arrays.query_ids)}
    for r in rows:
        want = correct[qpos[r["query_id"]]].mean()
        assert r["extra"]["share_correct"] == pytest.approx(want)
