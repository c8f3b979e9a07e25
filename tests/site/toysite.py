"""The site tests' database: a fake bank full of HTML-breaking strings, every test strategy run.

Shared by ``test_site.py`` and ``test_site_browser.py``. The bank carries XSS probes in prompts,
query ids, references and wrong answers; every page must escape them. A stub online strategy
records rewards so that regret curves are exercised.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sqlalchemy import Engine

from tests.fakes import FakeBank, FakeModel
from uisbench import Runner, import_file, open_engine
from uisbench.store.bankfile import models_file_beside
from uisbench.strategies.base import Decisions, RunContext, Strategy

XSS_SCRIPT = "<script>window.__xss=1</script>"
XSS_ATTR = "\"'><img src=x onerror=window.__xss=2>"
MODELS = {  # name: (params in billions, skill)
    "toy-small": (1.0, 0.35),
    "toy-mid": (8.0, 0.6),
    "toy-large": (70.0, 0.85),
}
STRATEGIES = [
    "single:model=toy-small",
    "single:model=toy-mid",
    "single:model=toy-large",
    "majority:model=toy-small,k=4",
    "majority:model=toy-mid,k=4",
    "random",
    "oracle:k=4",
]


class StubOnline(Strategy):
    """Sends every query to one model and records reward = correct, best fixed reward = 1."""

    name = "stub-online"
    family = "uniscale"
    description = "test stub of an online strategy"

    @dataclass
    class Params:
        model: str = "toy-mid"

    def run(self, ctx: RunContext) -> Iterator[Decisions]:
        for chunk in np.array_split(ctx.stream, 3):
            draw = ctx.meter.draw(self.params.model, chunk, 1)
            ctx.meter.decide(chunk, draw.handle[:, 0])
            ok = ctx.meter.feedback(draw.handle[:, 0]).astype(float)
            extra = [{"best_fixed_reward": 1.0, "oracle_reward": 1.0} for _ in chunk]
            yield Decisions(chunk, draw.handle[:, 0], reward=ok, extra=extra)


def _prompt(q: int) -> str:
    probe = f" {XSS_SCRIPT} {XSS_ATTR}" if q % 5 == 0 else ""
    return f"What is {q} mod 10?{probe}"


def toy_bank(task: str = "toy-task", n_queries: int = 70) -> FakeBank:
    """3 models x 4 samples, 20 train queries; every fifth prompt, query 1's id, query 2's
    reference and every wrong answer are XSS probes."""
    return FakeBank(
        models=tuple(
            FakeModel(m, skill, params_b=p, price_in_per_mtok=p / 10, price_out_per_mtok=p / 5)
            for m, (p, skill) in MODELS.items()
        ),
        queries=n_queries,
        task=task,
        seed=7,
        train=20,
        input_tokens=30,
        output_tokens=(20, 30),
        wrong_answers=(XSS_SCRIPT, XSS_ATTR),
        query_id=lambda q: f"q{q:03d}{XSS_ATTR if q == 1 else ''}",
        prompt=lambda q: (
            f"What is {q} mod 10?" + (f" {XSS_SCRIPT} {XSS_ATTR}" if q % 5 == 0 else "")
        ),
        reference=lambda q: XSS_SCRIPT if q == 2 else str(q % 10),
    )


def make_toy_db(folder: Path, synthetic_too: bool = False, url: str | None = None) -> Engine:
    """Import the toy bank, run every test strategy (and the stub with two seeds)."""
    engine = open_engine(url or str(folder / "toy.db"))
    bank = toy_bank().write(folder)
    import_file(engine, bank, models_file_beside(bank))
    runner = Runner(engine, "toy-task", "toy-task")
    for spec in STRATEGIES:
        runner.run(spec, 0, command="pytest")
    for seed in (0, 1):
        runner.run(StubOnline(), seed, command="pytest")
    if synthetic_too:
        syn = toy_bank(task="toy-synthetic", n_queries=30).write(folder)
        import_file(engine, syn, models_file_beside(syn), synthetic=True)
        Runner(engine, "toy-synthetic", "toy-synthetic").run("single:model=toy-mid", 0)
    return engine


#: Three tasks in one database, each with its own number of configurations (item 1 of issue 19:
#: every task section's chart must draw that task's points, not the first task's).
THREE_TASKS = {
    "alpha-task": STRATEGIES[:3],
    "beta-task": STRATEGIES[:5],
    "gamma-task": STRATEGIES[:3] + ["random"],
}


def make_three_task_db(folder: Path) -> Engine:
    """One database, three banks, three tasks with 3, 5 and 4 configurations."""
    engine = open_engine(str(folder / "three.db"))
    for task, specs in THREE_TASKS.items():
        bank = toy_bank(task=task, n_queries=40).write(folder)
        import_file(engine, bank, models_file_beside(bank))
        runner = Runner(engine, task, task)
        for spec in specs:
            runner.run(spec, 0, command="pytest")
    return engine
