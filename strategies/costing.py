"""What the pool costs, learned from the training split, and drawing one arm per query.

Routers, UniScale and T2 all need a model's (and a k-sample request's) expected cost *before*
calling it. They learn it from the training split (fully visible), using the same charging rule
as the meter (:func:`uisbench.costs.sample_charges`), so a predicted cost and a
charged cost are in the same unit. The unit is FLOPs when every model's parameter count and
token counts are known, else dollars, else (a bank that recorded outcomes only) parameter-weighted
calls: FLOPs of a model of unknown size cannot be computed, and mixing units would make λ
meaningless.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from uisbench.costs import sample_charges
from uisbench.errors import UisbenchError
from uisbench.meter import Meter
from uisbench.store.arrays import BankArrays
from uisbench.strategies.base import choice


def powers_of_two(limit: int) -> list[int]:
    out, k = [], 1
    while k <= limit:
        out.append(k)
        k *= 2
    return out


#: Points a default sweep gives each strategy at least: enough for its hull not to be an
#: artifact of sweep density (AIQ and the budget-matched verdicts read the hull).
SWEEP_POINTS = 8


def log_grid(lo: float, hi: float, n: int = SWEEP_POINTS + 1) -> list[float]:
    """``n`` log-spaced values from ``lo`` to ``hi``, rounded to 2 significant digits."""
    return [float(f"{v:.2g}") for v in np.geomspace(lo, hi, n)]


def sample_counts(max_k: int, n: int = SWEEP_POINTS) -> list[int]:
    """Up to ``n`` log-spaced sample counts from 2 to ``max_k`` (both ends kept)."""
    if max_k < 2:
        return []
    return sorted({int(round(v)) for v in np.geomspace(2, max_k, n)})


def vote_counts_k(limit: int) -> list[int]:
    """Sample counts worth a majority vote: 1 and odd counts 3, 5, 9, 17, … up to ``limit``,
    plus the largest odd count held. With ties going to the first sample, maj@2 = maj@1
    (and any even k can tie), so an even k buys cost without votes."""
    if limit < 1:
        return []
    odd = {1} | {k + 1 for k in powers_of_two(limit) if 2 <= k < limit}
    return sorted(odd | {limit if limit % 2 else limit - 1})


def front_log_area(cost: np.ndarray, acc: np.ndarray, lo: float, hi: float) -> float:
    """Mean over ln c ∈ [ln lo, ln hi] of the best accuracy reachable at cost ≤ c.

    How a strategy compares candidate settings on the training split (UniScale's cost
    normalisation, the threshold router's pair): the area under the front's staircase, on a
    log-cost axis because costs of a pool span decades; 0 below the front's cheapest point.
    """
    grid = np.geomspace(lo, hi, 200)
    cost, acc = np.asarray(cost, float), np.asarray(acc, float)
    reach = cost[None, :] <= grid[:, None]
    return float(np.where(reach, acc[None, :], 0.0).max(axis=1, initial=0.0).mean())


UNITS = ("flops", "dollars", "param_calls")


def unit_option() -> Any:
    """A strategy's ``unit`` option: the cost unit it weighs, ``auto`` (:func:`cost_unit`'s
    choice for the bank) or one of :data:`UNITS`."""
    return choice("auto", *UNITS)


def cost_unit(
    model_meta: dict[str, dict[str, Any]], unit: str = "auto", bank: BankArrays | None = None
) -> str:
    """The first of :data:`UNITS` computable for every model (or the one asked for).

    ``bank`` (the training split) tells whether tokens and costs were recorded at all; an
    outcomes-only bank falls back to parameter-weighted calls (``costs.PARAM_CALLS_NOTE``).
    """
    if unit != "auto" and unit not in UNITS:
        raise UisbenchError(f"unknown cost unit {unit!r} (auto, {', '.join(UNITS)})")
    known = [u for u in UNITS if _computable(model_meta, u, bank)]
    if unit == "auto":
        if not known:
            raise UisbenchError(
                "no cost unit can be computed: neither prices, recorded costs nor every "
                "model's parameter count are known"
            )
        return known[0]
    if unit not in known:
        raise UisbenchError(
            f"unit={unit} cannot be computed for every model of this pool "
            f"(computable: {', '.join(known) or 'none'}; use unit=auto)"
        )
    return unit


def _computable(meta: dict[str, dict[str, Any]], unit: str, bank: BankArrays | None) -> bool:
    """Whether ``unit`` is known for every model; without a bank (or an empty one), sizes
    decide FLOPs and dollars are assumed recorded."""
    if unit in ("flops", "param_calls") and not all_sizes_known(meta):
        return False
    if unit == "param_calls" or bank is None or bank.n_queries == 0:
        return True
    return all(np.isfinite(request_cost(bank, m, 1, unit)).any() for m in meta)


def all_sizes_known(model_meta: dict[str, dict[str, Any]]) -> bool:
    return all((m.get("params_active") or m.get("params_total")) for m in model_meta.values())


def request_cost(bank: BankArrays, model: str, k: int, unit: str, repeat: int = 1) -> np.ndarray:
    """Per-query cost of a k-sample request of ``model`` over ``bank`` (NaN where n < k);
    ``repeat`` > 1 charges each of the k samples' outputs that many times (one prompt)."""
    arr = bank.models[model]
    out = np.full(bank.n_queries, np.nan)
    if k > arr.answer.shape[1]:
        return out
    ok = arr.n_avail >= k
    rows = np.flatnonzero(ok)[:, None]
    slot = np.repeat(np.arange(k), repeat)[None, :]
    c = sample_charges(arr, bank.model_meta[model], rows, slot)[unit]
    out[ok] = c
    return out


def expected_cost(bank: BankArrays, model: str, k: int, unit: str) -> float:
    """Mean cost of a k-sample request on ``bank``.

    Where the bank holds fewer than k samples, the request is built from the first sample
    repeated k times: its prompt charged once and its output k times, the meter's rule.
    """
    c = request_cost(bank, model, k, unit)
    if not np.isfinite(c).any():
        c = request_cost(bank, model, 1, unit, repeat=k)
    if not np.isfinite(c).any():
        raise UisbenchError(f"no {unit} cost can be computed for {model} on the training split")
    return float(np.nanmean(c))


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
