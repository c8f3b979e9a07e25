"""Decompose a model, save it, and load it back as blocks (what ``uisbench decompose`` runs).

A saved decomposition is a plain Hugging Face checkpoint of the *masked* model (removed weights
are zeros, so any transformers code loads it as the masked dense model) plus two files that make
it the block model: ``components.npz`` (block labels per output and input of every decomposed map)
and ``decomposition.json`` (the report). :func:`load_blocks` rebuilds the block form from them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from uisbench.decompose.annealing import (
    DEFAULT_LEVELS,
    Annealing,
    Tolerance,
    anneal,
    apply_mask,
    chosen_masks,
    linear_maps,
)
from uisbench.decompose.blocks import is_trivial, to_blocks
from uisbench.decompose.criterion import Null
from uisbench.decompose.graph import MapComponents
from uisbench.decompose.report import build_report
from uisbench.errors import UisbenchError

COMPONENTS_FILE = "components.npz"
REPORT_FILE = "decomposition.json"


@dataclass
class Decomposition:
    result: Annealing
    maps: dict[str, MapComponents]  # chosen level; empty when nothing is removed

    def executed_params(self, model_params: int) -> int:
        """Parameters a token multiplies by in the block form (embeddings etc. included)."""
        dense = sum(o * i for o, i in (self.result.sizes[n] for n in self.maps))
        executed = sum(_executed(self.maps[n], self.result.sizes[n]) for n in self.maps)
        return model_params - dense + executed

    def report(self, **extra: Any) -> dict[str, Any]:
        return build_report(self.result, **extra)


def _executed(comps: MapComponents, size: tuple[int, int]) -> int:
    return size[0] * size[1] if is_trivial(comps) else comps.block_params()


def decompose(
    model: nn.Module,
    null: Null,
    batch: dict[str, Any],
    levels: tuple[float, ...] = DEFAULT_LEVELS,
    tolerance: Tolerance | None = None,
    progress: Any = None,
    force: float | None = None,
) -> Decomposition:
    """Anneal, then zero the removed weights of ``model`` in place (the masked dense model)."""
    result = anneal(model, null, batch, levels, tolerance, progress, force)
    masks = chosen_masks(model, null, result)
    maps = linear_maps(model)
    for name, mask in masks.items():
        apply_mask(maps[name], mask)
    chosen = result.level.maps if result.level is not None else {}
    return Decomposition(result, dict(chosen))


def save(model: Any, tokenizer: Any, dec: Decomposition, out: Path, **extra: Any) -> dict:
    """Write the masked checkpoint, the component labels and the report into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    if tokenizer is not None:
        tokenizer.save_pretrained(out)
    arrays = {}
    for name, comps in dec.maps.items():
        arrays[f"{name}|out"] = comps.out_label.astype(np.int32)
        arrays[f"{name}|in"] = comps.in_label.astype(np.int32)
    np.savez_compressed(out / COMPONENTS_FILE, **arrays)
    report = dec.report(**extra)
    (out / REPORT_FILE).write_text(json.dumps(report, indent=1))
    return report


def read_components(folder: Path) -> dict[str, MapComponents]:
    path = folder / COMPONENTS_FILE
    if not path.exists():
        raise UisbenchError(f"{folder} is not a saved decomposition (no {COMPONENTS_FILE})")
    with np.load(path) as data:
        names = sorted({k.rpartition("|")[0] for k in data.files})
        out = {}
        for n in names:
            o, i = data[f"{n}|out"].astype(np.int64), data[f"{n}|in"].astype(np.int64)
            out[n] = MapComponents(o, i, int(max(o.max(initial=-1), i.max(initial=-1)) + 1))
    return out


def load_blocks(model: nn.Module, folder: Path) -> nn.Module:
    """Turn a masked checkpoint loaded from ``folder`` into its block form."""
    maps = read_components(folder)
    missing = sorted(set(maps) - set(linear_maps(model)))
    if missing:
        raise UisbenchError(f"{folder}: maps {', '.join(missing[:3])} are not in the model")
    return to_blocks(model, maps)
