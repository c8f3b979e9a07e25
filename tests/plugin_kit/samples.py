"""Strategy classes for ``test_check_strategy.py``: one that keeps the contract and one that
breaks each clause ``uisbench.testing.check_strategy`` checks (a module of their own, so that
their own process imports them by reference)."""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass

import numpy as np

from uisbench.strategies import AGGREGATORS, Decisions, Strategy, bounded, choice, take


class Vote(Strategy):
    """Majority of k samples of one model: keeps the contract."""

    name = "kit-vote"
    family = "tts"
    description = "majority of k samples of one model"
    needs_answers = True

    @dataclass
    class Params:
        model: str = "mid"
        k: int = bounded(3, ge=1)
        mode: str = choice("plain", "strict")

    @classmethod
    def sweep(cls, models, max_k):
        return [{"model": m, "k": 3} for m in models]

    def run(self, ctx):
        draw = ctx.meter.draw(self.params.model, ctx.stream, self.params.k)
        yield Decisions(ctx.stream, take(draw.handle, AGGREGATORS["majority"](draw)))


class Unseeded(Vote):
    """Picks one of its samples with an unseeded generator."""

    name = "kit-unseeded"

    def run(self, ctx):
        draw = ctx.meter.draw(self.params.model, ctx.stream, self.params.k)
        rng = np.random.default_rng(int.from_bytes(os.urandom(8), "little"))
        pick = rng.integers(self.params.k, size=len(ctx.stream))
        yield Decisions(ctx.stream, draw.handle[np.arange(len(ctx.stream)), pick])


class Oracle(Vote):
    """Answers with a correct sample where it has one, but does not say it is a bound."""

    name = "kit-oracle"

    def run(self, ctx):
        draw = ctx.meter.draw(self.params.model, ctx.stream, self.params.k)
        right = ctx.meter.oracle(draw)
        yield Decisions(ctx.stream, take(draw.handle, right.argmax(axis=1)))


_COUNTER = itertools.count()


class Restless(Vote):
    """A label that changes with every object."""

    name = "kit-restless"

    def label(self):
        return f"{super().label()},n={next(_COUNTER)}"


class OutOfBounds(Vote):
    """Its default sweep asks k=0, below its own bound."""

    name = "kit-bounds"

    @classmethod
    def sweep(cls, models, max_k):
        return [{"k": 0}]


class NoFamily(Vote):
    name = "kit-nofamily"
    family = "magic"
