"""Plugins that cannot be loaded or cannot run, beside one that can (``fine``)."""

from __future__ import annotations

from dataclasses import dataclass

from uisbench.strategies import Decisions, Strategy


class Fine(Strategy):
    name = "fine"
    family = "reference"
    description = "the first sample of the first model"

    def run(self, ctx):
        draw = ctx.meter.draw(ctx.models[0], ctx.stream, 1)
        yield Decisions(ctx.stream, draw.handle[:, 0])


class BadSweep(Fine):
    name = "bad-sweep"

    @classmethod
    def sweep(cls, models, max_k):
        raise RuntimeError("the sweep is broken")


class FailsInRun(Fine):
    name = "fails-in-run"

    def run(self, ctx):
        raise RuntimeError("the run is broken")
        yield


class HugeSweep(Fine):
    """A default sweep of hundreds of settings: the default job would run them all."""

    name = "huge-sweep"

    @dataclass
    class Params:
        i: int = 0

    @classmethod
    def sweep(cls, models, max_k):
        return [{"i": i} for i in range(600)]
