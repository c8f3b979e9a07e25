"""Cost formulae: one place that says how a request is charged.

FLOPs use the standard dense-transformer approximation 2·N_active per token: the prompt is
processed once per request (its KV cache is shared by the n samples, as vLLM does with ``n``)
and each generated token costs 2·N_active again. Attention's context-length term is ignored;
the site names this approximation next to every FLOPs figure.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from uisbench.store.arrays import ModelArrays

FLOPS_NOTE = (
    "FLOPs ≈ 2·N_active·(prompt tokens, once per request) + 2·N_active·(generated tokens, "
    "per sample); attention over the context is not counted."
)
DOLLARS_NOTE = (
    "Dollars = pool prices × tokens with the prompt charged once per request (shared prefix); "
    "where a model has no price, the bank's recorded per-sample cost is summed instead "
    "(that cost charges the prompt per sample)."
)


def request_costs(
    meta: dict[str, Any],
    input_tokens: np.ndarray,
    output_tokens: np.ndarray,
    cost_usd: np.ndarray,
    latency_s: np.ndarray,
) -> dict[str, np.ndarray]:
    """Charges of one request of n samples per query; arrays are ``(queries, n)``.

    Returns per-query ``input_tokens, output_tokens, flops, dollars, latency_s``. Parallel
    samples cost the slowest of them in latency; unknown quantities stay NaN.
    """
    n = input_tokens.shape[1]
    prompt = input_tokens[:, 0] if n else np.zeros(len(input_tokens))
    out = output_tokens.sum(axis=1)
    active = meta.get("params_active") or meta.get("params_total")
    flops = 2.0 * active * (prompt + out) if active else np.full(len(out), np.nan)
    p_in, p_out = meta.get("price_in_per_mtok"), meta.get("price_out_per_mtok")
    if p_in is not None and p_out is not None:
        dollars = (p_in * prompt + p_out * out) / 1e6
    else:
        dollars = cost_usd.sum(axis=1)
    with np.errstate(all="ignore"):
        latency = np.max(latency_s, axis=1) if n else np.zeros(len(out))
    return {
        "input_tokens": prompt,
        "output_tokens": out,
        "flops": flops,
        "dollars": dollars,
        "latency_s": latency,
    }


def training_flops(params: float | None, tokens: float | None) -> float:
    """Pre-training compute, 6·N·D (T2's training budget)."""
    if params is None or tokens is None:
        return float("nan")
    return 6.0 * params * tokens


def sample_charges(
    arr: ModelArrays, meta: dict[str, Any], rows: np.ndarray, slot: np.ndarray
) -> dict[str, np.ndarray]:
    """Charges of one request for the samples at ``arr[rows, slot]`` (see :func:`request_costs`)."""
    return request_costs(
        meta,
        arr.input_tokens[rows, slot],
        arr.output_tokens[rows, slot],
        arr.cost_usd[rows, slot],
        arr.latency_s[rows, slot],
    )
