"""Test-time scaling with one fixed model: k samples, then aggregate."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from uisbench.errors import UisbenchError
from uisbench.strategies.reference import require_model
from uisbench.strategy import Decisions, RunContext, Strategy
from uisbench.voting import majority_column, take


def powers_of_two(limit: int) -> list[int]:
    out, k = [], 1
    while k <= limit:
        out.append(k)
        k *= 2
    return out


class MajorityVote(Strategy):
    """Self-consistency (Wang et al., 2023): sample k answers, return the most frequent one.

    Ties go to the answer drawn first; samples without an extracted answer do not vote.
    """

    name = "majority"
    family = "tts"
    description = "TTS-only: k samples of one model, plurality vote (self-consistency)."

    @dataclass
    class Params:
        model: str = ""
        k: int = 1

        def validate(self) -> None:
            if self.k < 1:
                raise UisbenchError("strategy majority: k must be at least 1")

    @classmethod
    def sweep(cls, models: list[str], max_k: dict[str, int]) -> list[dict[str, Any]]:
        return [{"model": m, "k": k} for m in models for k in powers_of_two(max_k[m]) if k > 1]

    def run(self, ctx: RunContext) -> Iterator[Decisions]:
        model = require_model(ctx, self.params.model, self.name)
        draw = ctx.meter.draw(model, ctx.stream, self.params.k)
        yield Decisions(ctx.stream, take(draw.handle, majority_column(draw.answer)))
