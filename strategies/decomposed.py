"""Family 5, decomposed (arXiv 2601.15871): a pool model run in its decomposed block form.

The decomposition itself happens offline (``uisbench decompose MODEL --out DIR``); recording
the saved variant (``uisbench bank record --pool DIR/pool.yaml``) puts its samples into a bank
as model ``MODEL@decomposed`` with ``params_active`` = the weights the block form multiplies
by. This strategy then answers each query with one sample of that variant through the meter,
like ``single``: its FLOPs follow from the variant's parameter count, its latency is the one
measured when recording, and its accuracy is the decomposed model's own, so it sits on the
same plots as the dense model it came from. A bank without a decomposed variant gives the
default sweep nothing to run (the strategy is then absent, not failing).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from uisbench.errors import UisbenchError
from uisbench.strategies.base import Decisions, RunContext, Strategy
from uisbench.strategies.reference import require_model

VARIANT_SUFFIX = "@decomposed"


def variant_name(model: str) -> str:
    """The bank name of ``model``'s decomposed variant."""
    return f"{model}{VARIANT_SUFFIX}"


class Decomposed(Strategy):
    """One sample per query from the decomposed variant of a model."""

    name = "decomposed"
    family = "decomposed"
    description = "Decomposed model (2601.15871): unsupported weights removed, maps run as blocks."

    @dataclass
    class Params:
        model: str = ""  # the variant, e.g. smollm2-135m-instruct@decomposed

    @classmethod
    def sweep(cls, models: list[str], max_k: dict[str, int]) -> list[dict[str, Any]]:
        return [{"model": m} for m in models if m.endswith(VARIANT_SUFFIX)]

    def run(self, ctx: RunContext) -> Iterator[Decisions]:
        model = require_model(ctx, self.params.model, self.name)
        if not model.endswith(VARIANT_SUFFIX):
            raise UisbenchError(
                f"strategy decomposed needs a decomposed variant (a model named "
                f"NAME{VARIANT_SUFFIX}); {model!r} is not one"
            )
        draw = ctx.meter.draw(model, ctx.stream, 1)
        yield Decisions(ctx.stream, draw.handle[:, 0])
