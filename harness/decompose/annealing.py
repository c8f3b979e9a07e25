"""Statistical annealing: sweep the significance level, watch the structure, keep the function.

For each level ``q`` (loose to strict) every linear map keeps its BH discoveries
(:mod:`uisbench.decompose.criterion`), its components are found (:mod:`uisbench.decompose.graph`)
and the masked model is compared with the dense one on calibration token sequences. The level
kept is the **strictest level whose function change is within tolerance and whose partition
equals the one at the next looser level** (the structure has stopped changing there: a plateau,
not a transient on the way to breaking blocks apart). When no level qualifies nothing is
removed, and the report says so.

What "removed" means: a removed weight is set to **zero**. Only zero removes the dependency
(the block structure needs it); reverting to the null's expected value would do the same under
the init-distribution null (its mean is 0) but would keep every dependency under the saved-init
null (``w0`` is random, not zero). The price of zeroing a weight that still holds its random
initial value is exactly what the function check measures.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from uisbench.decompose.criterion import Null, bh_thresholds
from uisbench.decompose.graph import MapComponents, components
from uisbench.errors import UisbenchError

#: Loose to strict; the default sweep of ``uisbench decompose``.
DEFAULT_LEVELS = (1e-1, 1e-2, 1e-3, 1e-4, 1e-6, 1e-8, 1e-10, 1e-12)


@dataclass(frozen=True)
class Tolerance:
    """How far the masked model may move: mean token KL(dense ‖ masked) in nats, and optionally
    the largest absolute logit difference."""

    kl: float = 0.01
    max_logit: float | None = None

    def holds(self, change: FunctionChange) -> bool:
        ok = change.mean_kl <= self.kl
        return ok and (self.max_logit is None or change.max_abs_logit <= self.max_logit)


@dataclass(frozen=True)
class FunctionChange:
    mean_kl: float
    max_abs_logit: float


@dataclass
class Level:
    q: float
    maps: dict[str, MapComponents]
    kept: dict[str, int]
    change: FunctionChange
    stable: bool = False
    within: bool = False


@dataclass
class Annealing:
    levels: list[Level]
    chosen: int | None  # index into levels; None: nothing removed
    sizes: dict[str, tuple[int, int]] = field(default_factory=dict)  # (out, in) per map
    null: str = ""
    tolerance: Tolerance = field(default_factory=Tolerance)
    rule_choice: int | None = None  # what the rule chose (differs from chosen when forced)

    @property
    def level(self) -> Level | None:
        return None if self.chosen is None else self.levels[self.chosen]


def linear_maps(model: nn.Module) -> dict[str, nn.Linear]:
    """The decomposable maps: every ``nn.Linear`` except the output head (tied to the
    embeddings in most small LMs, and a lookup-shaped map whose rows are vocabulary entries)."""
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    return {n: m for n, m in model.named_modules() if isinstance(m, nn.Linear) and m is not head}


def logits(model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    with torch.inference_mode():
        return model(**batch).logits.float()


def function_change(
    dense: torch.Tensor, other: torch.Tensor, attention_mask: torch.Tensor | None
) -> FunctionChange:
    """Mean per-token KL(dense ‖ other) and max |Δlogit| over the real (unpadded) tokens."""
    keep = (
        attention_mask.bool() if attention_mask is not None else torch.ones(dense.shape[:-1]).bool()
    )
    p_log = torch.log_softmax(dense[keep], -1)
    q_log = torch.log_softmax(other[keep], -1)
    kl = (p_log.exp() * (p_log - q_log)).sum(-1)
    return FunctionChange(float(kl.mean()), float((dense[keep] - other[keep]).abs().max()))


def anneal(
    model: nn.Module,
    null: Null,
    batch: dict[str, torch.Tensor],
    levels: tuple[float, ...] = DEFAULT_LEVELS,
    tolerance: Tolerance | None = None,
    progress: Callable[[str], None] | None = None,
    force: float | None = None,
) -> Annealing:
    """Run the sweep on ``model`` (left unchanged) and choose the level (see module docstring).

    ``force``: use this level whatever the rule says (to measure what removal costs when no
    level passes); the report keeps the rule's own choice beside it.
    """
    tolerance = tolerance or Tolerance()
    levels = tuple(sorted(levels, reverse=True))
    if force is not None and force not in levels:
        raise UisbenchError(f"forced level {force:g} is not one of the swept levels")
    maps = linear_maps(model)
    thresholds, scales = {}, {}
    for name, lin in maps.items():
        scales[name] = null.scale(name, lin.weight)
        thresholds[name] = bh_thresholds(null.scores(name, lin.weight, scales[name]), list(levels))
    dense = logits(model, batch)
    out: list[Level] = []
    for li, q in enumerate(levels):
        masks = {
            n: (null.scores(n, lin.weight, scales[n]) >= thresholds[n][li]).numpy()
            for n, lin in maps.items()
        }
        with masked(maps, masks):
            change = function_change(dense, logits(model, batch), batch.get("attention_mask"))
        comps = {n: components(m) for n, m in masks.items()}
        level = Level(q, comps, {n: int(m.sum()) for n, m in masks.items()}, change)
        level.within = tolerance.holds(change)
        level.stable = bool(out) and all(
            level.maps[n].same_partition(out[-1].maps[n]) for n in maps
        )
        out.append(level)
        if progress:
            progress(f"q={q:g}: kept {sum(level.kept.values())} weights, KL {change.mean_kl:.3g}")
    ok = [i for i, lv in enumerate(out) if lv.within and lv.stable]
    rule = ok[-1] if ok else None
    chosen = rule if force is None else levels.index(force)
    sizes = {n: tuple(lin.weight.shape) for n, lin in maps.items()}
    return Annealing(out, chosen, sizes, null.kind, tolerance, rule)


class masked:
    """Context manager: zero the removed weights of ``maps`` in place, restore them on exit."""

    def __init__(self, maps: dict[str, nn.Linear], masks: dict[str, np.ndarray]) -> None:
        self.maps, self.masks = maps, masks
        self.saved: dict[str, torch.Tensor] = {}

    def __enter__(self) -> None:
        for n, lin in self.maps.items():
            self.saved[n] = lin.weight.detach().clone()
            apply_mask(lin, self.masks[n])

    def __exit__(self, *exc: object) -> None:
        with torch.no_grad():
            for n, lin in self.maps.items():
                lin.weight.copy_(self.saved.pop(n))


def apply_mask(lin: nn.Linear, mask: np.ndarray) -> None:
    """Zero the removed weights of one map in place."""
    with torch.no_grad():
        lin.weight.mul_(torch.as_tensor(mask, device=lin.weight.device, dtype=lin.weight.dtype))


def chosen_masks(model: nn.Module, null: Null, result: Annealing) -> dict[str, np.ndarray]:
    """The kept-weight masks at the chosen level (recomputed: the sweep keeps no masks)."""
    level = result.level
    if level is None:
        return {}
    out = {}
    for name, lin in linear_maps(model).items():
        scale = null.scale(name, lin.weight)
        scores = null.scores(name, lin.weight, scale)
        out[name] = (scores >= bh_thresholds(scores, [level.q])[0]).numpy()
    return out
