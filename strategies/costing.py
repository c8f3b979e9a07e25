"""What the pool costs, learned from the training split, and drawing one arm per query.

Routers, UniScale and T2 all need a model's (and a k-sample request's) expected cost *before*
calling it. They learn it from the training split (fully visible), using the same charging rule
as the meter (:func:`uisbench.costs.sample_charges`), so a predicted cost and a
charged cost are in the same unit. The unit is FLOPs when every model's parameter count is
known, else dollars: FLOPs of a model of unknown size cannot be computed, and mixing units
would make λ meaningless.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from uisbench.costs import sample_charges
from uisbench.errors import UisbenchError
from uisbench.meter import Meter
from uisbench.store.arrays import BankArrays


def powers_of_two(limit: int) -> list[int]:
    out, k = [], 1
    while k <= limit:
        out.append(k)
        k *= 2
    return out


def spread(values: list[Any], n: int) -> list[Any]:
    """At most ``n`` items of ``values``, evenly spread and keeping both ends."""
    if len(values) <= n:
        return list(values)
    idx = np.unique(np.round(np.linspace(0, len(values) - 1, n)).astype(int))
    return [values[i] for i in idx]


def cost_unit(model_meta: dict[str, dict[str, Any]], unit: str = "auto") -> str:
    """``flops`` when every model's size is known (or asked for), else ``dollars``."""
    if unit in ("flops", "dollars"):
        if unit == "flops" and not all_sizes_known(model_meta):
            raise UisbenchError(
                "unit=flops needs every model's parameter count; some are unknown in this pool "
                "(use unit=dollars or unit=auto)"
            )
        return unit
    if unit != "auto":
        raise UisbenchError(f"unknown cost unit {unit!r} (auto, flops or dollars)")
    return "flops" if all_sizes_known(model_meta) else "dollars"


def all_sizes_known(model_meta: dict[str, dict[str, Any]]) -> bool:
    return all((m.get("params_active") or m.get("params_total")) for m in model_meta.values())


def request_cost(bank: BankArrays, model: str, k: int, unit: str) -> np.ndarray:
    """Per-query cost of a k-sample request of ``model`` over ``bank`` (NaN where n < k)."""
    arr = bank.models[model]
    out = np.full(bank.n_queries, np.nan)
    if k > arr.answer.shape[1]:
        return out
    ok = arr.n_avail >= k
    rows = np.flatnonzero(ok)[:, None]
    slot = np.arange(k)[None, :]
    c = sample_charges(arr, bank.model_meta[model], rows, slot)[unit]
    out[ok] = c
    return out


def expected_cost(bank: BankArrays, model: str, k: int, unit: str) -> float:
    """Mean cost of a k-sample request on ``bank``; k × the 1-sample cost where n < k."""
    c = request_cost(bank, model, k, unit)
    if np.isfinite(c).any():
        return float(np.nanmean(c))
    c1 = request_cost(bank, model, 1, unit)
    if not np.isfinite(c1).any():
        raise UisbenchError(f"no {unit} cost can be computed for {model} on the training split")
    return float(np.nanmean(c1)) * k


def mean_correct(bank: BankArrays, model: str) -> np.ndarray:
    """Per-query share of correct samples (the expected k=1 correctness); NaN where none."""
    arr = bank.models[model]
    held = np.arange(arr.correct.shape[1])[None, :] < arr.n_avail[:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        return (arr.correct & held).sum(axis=1) / arr.n_avail


def draw_by_choice(
    meter: Meter, models: list[str], q: np.ndarray, choice: np.ndarray, k: int = 1
) -> np.ndarray:
    """Draw ``k`` samples of ``models[choice[i]]`` for each query; return the first handles."""
    handle = np.full(len(q), -1, dtype=np.int64)
    for i, model in enumerate(models):
        sel = choice == i
        if sel.any():
            handle[sel] = meter.draw(model, q[sel], k).handle[:, 0]
    return handle
