"""The ``decomposed`` backend: a saved decomposition (``uisbench decompose --out DIR``) run as
blocks with the transformers backend's sampling, token counting and timing.

A pool entry ``backend: decomposed, identifier: DIR`` loads the masked checkpoint from ``DIR``
and swaps every decomposed map for its :class:`~uisbench.decompose.blocks.BlockLinear`, so the
latency a recording measures is that of the block execution.
"""

from __future__ import annotations

from pathlib import Path

from uisbench.decompose.pipeline import load_blocks
from uisbench.live.backends.transformers import (
    TransformersBackend,
    load_model_and_tokenizer,
    resolve_device,
)
from uisbench.live.pools import ModelSpec


class DecomposedBackend(TransformersBackend):
    """:class:`TransformersBackend` on the block form of a saved decomposition."""

    def __init__(self, spec: ModelSpec, device: str | None = None) -> None:
        model, tokenizer = load_model_and_tokenizer(spec, resolve_device(device))
        load_blocks(model, Path(spec.identifier))
        super().__init__(spec, device=device, model=model, tokenizer=tokenizer)
