"""The JSON report of a decomposition: the sweep, the chosen level, and per layer what was removed.

Per map: weights, kept weights, fraction removed, number of blocks, their (outputs, inputs)
sizes, dead inputs and bias-only outputs, and the weights the block form executes. Per layer
(the maps under one ``layers.N`` prefix) the same figures summed.
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any

from uisbench.decompose.annealing import Annealing, Level
from uisbench.decompose.blocks import is_trivial

_LAYER = re.compile(r"^(.*?\.layers\.\d+)\.")


def map_summary(size: tuple[int, int], kept: int, comps: Any) -> dict[str, Any]:
    total = size[0] * size[1]
    sizes = comps.sizes()
    return {
        "shape": list(size),
        "weights": total,
        "kept": kept,
        "removed_fraction": 1 - kept / total,
        "blocks": comps.n_blocks,
        "block_sizes": sorted(sizes, reverse=True)[:16],
        "dead_inputs": int((comps.in_label < 0).sum()),
        "bias_only_outputs": int((comps.out_label < 0).sum()),
        "executed_weights": total if is_trivial(comps) else comps.block_params(),
    }


def level_summary(result: Annealing, level: Level) -> dict[str, Any]:
    maps = {n: map_summary(result.sizes[n], level.kept[n], c) for n, c in level.maps.items()}
    total = sum(m["weights"] for m in maps.values())
    kept = sum(m["kept"] for m in maps.values())
    return {
        "q": level.q,
        "removed_fraction": 1 - kept / total if total else 0.0,
        "blocks": sum(m["blocks"] for m in maps.values()),
        "executed_fraction": sum(m["executed_weights"] for m in maps.values()) / total,
        "mean_kl": level.change.mean_kl,
        "max_abs_logit": level.change.max_abs_logit,
        "stable": level.stable,
        "within_tolerance": level.within,
        "maps": maps,
    }


def per_layer(maps: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Sum the map figures of each decoder layer."""
    layers: dict[str, dict[str, Any]] = defaultdict(
        lambda: {"weights": 0, "kept": 0, "blocks": [], "executed_weights": 0}
    )
    for name, m in maps.items():
        match = _LAYER.match(name)
        layer = layers[match.group(1) if match else name]
        layer["weights"] += m["weights"]
        layer["kept"] += m["kept"]
        layer["executed_weights"] += m["executed_weights"]
        layer["blocks"].append(m["blocks"])
    for layer in layers.values():
        layer["removed_fraction"] = 1 - layer["kept"] / layer["weights"]
    return dict(layers)


def build_report(result: Annealing, **extra: Any) -> dict[str, Any]:
    """The whole report: sweep (without per-map detail), chosen level in detail, per layer."""
    sweep = []
    for lv in result.levels:
        s = level_summary(result, lv)
        s.pop("maps")
        sweep.append(s)
    report: dict[str, Any] = {
        "null": result.null,
        "tolerance": {"kl": result.tolerance.kl, "max_logit": result.tolerance.max_logit},
        "rule": "strictest level within tolerance whose partition equals the looser level's",
        "sweep": sweep,
        "chosen_q": None if result.level is None else result.level.q,
        "rule_q": None if result.rule_choice is None else result.levels[result.rule_choice].q,
        "forced": result.chosen != result.rule_choice,
        **extra,
    }
    if result.level is not None:
        chosen = level_summary(result, result.level)
        report["chosen"] = {k: v for k, v in chosen.items() if k != "maps"}
        report["maps"] = chosen["maps"]
        report["layers"] = per_layer(chosen["maps"])
    return report
