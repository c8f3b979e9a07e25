"""Cost formulae: one place that says how a request is charged, in every unit.

**One convention for every unit** (tokens, FLOPs, dollars, latency). A request of n samples to
one model processes its prompt once (the n samples share its KV cache, as vLLM does with ``n``)
and generates each sample's tokens. A later request for the same (query, model) within a run
finds the prompt's prefix in the serving engine's cache (:class:`PrefixCache`: vLLM's automatic
prefix caching is block-granular and on by default; hosted APIs bill cached input at a
discount), so it processes only the uncached tail; another model pays its full prompt.

* tokens: uncached prompt tokens + generated tokens.
* FLOPs: the dense-transformer approximation 2·N_active per processed token (Kaplan et al. 2020,
  §2.1); attention over the context is not counted.
* dollars: the pool's prices × tokens, cached prompt tokens at the cached-input price where the
  pool lists one (``price_cached_in_per_mtok``), else at the input price. A model without prices
  charges the bank's recorded per-sample cost under the same rules: each sample's cost is split
  into a prompt and an output part in proportion to its tokens (an implied price per token), so
  the prompt part is paid once per request, not once per sample.
* latency: parallel samples cost the slowest of them; a cached prefix removes its share of each
  sample's recorded time (the same proportional split, which overstates prefill's share of
  wall time: prefill is batched, decode is not).
* param_calls: Σ N_active over the samples drawn, the unit of banks that record outcomes only
  (no tokens, no costs): a call to a model costs its parameter count.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from uisbench.errors import UisbenchError

if TYPE_CHECKING:
    from uisbench.store.arrays import ModelArrays

#: The prefix-cache assumption of a run that names none (vLLM's default block size).
DEFAULT_PREFIX_CACHE = "block:16"

FLOPS_NOTE = (
    "FLOPs ≈ 2·N_active·(uncached prompt tokens, once per request) + 2·N_active·(generated "
    "tokens, per sample); attention over the context is not counted."
)
DOLLARS_NOTE = (
    "Dollars = pool prices × tokens with the prompt charged once per request and a cached prompt "
    "prefix at the cached-input price where the pool lists one (else the input price); where a "
    "model has no price, each recorded per-sample cost is split into prompt and output parts in "
    "proportion to tokens and charged by the same rules."
)
PARAM_CALLS_NOTE = (
    "Outcomes-only bank (no token counts or costs recorded): cost is counted in parameter-"
    "weighted calls, Σ N_active over the samples drawn, so a call to a 70B model costs 70e9 "
    "and one to a 1B model 1e9; prompt length and prefix caching do not enter."
)
#: Every per-query charge the meter keeps, in ledger order.
CHARGES = ("input_tokens", "output_tokens", "flops", "dollars", "latency_s", "param_calls")

_PREFIX_RE = re.compile(r"^(none|full|block:([1-9][0-9]*))$")


@dataclass(frozen=True)
class PrefixCache:
    """Which part of a repeated request's prompt a serving engine finds in its cache.

    ``none``: nothing (every request prefills its prompt); ``full``: the whole prompt;
    ``block:N``: whole blocks of N tokens, ``⌊(prompt − 1)/N⌋·N``: vLLM caches full KV blocks
    only, and when every block of a prompt is cached it still recomputes the last token to get
    its logits (v1 KV cache manager: the hit length is capped at prompt length − 1).
    """

    mode: str = "block"
    block: int = 16

    @classmethod
    def parse(cls, text: str | None) -> PrefixCache:
        text = (text or DEFAULT_PREFIX_CACHE).strip().lower()
        m = _PREFIX_RE.match(text)
        if not m:
            raise UisbenchError(
                f"bad prefix cache setting {text!r} (none, full or block:N with N ≥ 1)"
            )
        if m.group(2):
            return cls("block", int(m.group(2)))
        return cls(m.group(1), 0)

    def __str__(self) -> str:
        return f"block:{self.block}" if self.mode == "block" else self.mode

    def cached(self, prompt: np.ndarray) -> np.ndarray:
        """Prompt tokens a repeated request finds cached (NaN stays NaN)."""
        prompt = np.asarray(prompt, dtype=float)
        if self.mode == "none":
            return np.where(np.isnan(prompt), np.nan, 0.0)
        if self.mode == "full":
            return prompt
        return np.floor(np.maximum(prompt - 1, 0) / self.block) * self.block


def request_costs(
    meta: dict[str, Any],
    input_tokens: np.ndarray,
    output_tokens: np.ndarray,
    cost_usd: np.ndarray,
    latency_s: np.ndarray,
    cached: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Charges of one request of n samples per query; arrays are ``(queries, n)``.

    ``cached`` holds, per query, the prompt tokens already in the cache (0 for a first request).
    Returns per-query :data:`CHARGES`; unknown quantities stay NaN.
    """
    m, n = output_tokens.shape
    prompt = input_tokens[:, 0] if n else np.zeros(m)
    hit = np.zeros(m) if cached is None else np.minimum(np.asarray(cached, dtype=float), prompt)
    hit = np.nan_to_num(hit)
    fresh = prompt - hit
    out = output_tokens.sum(axis=1)
    active = meta.get("params_active") or meta.get("params_total")
    flops = 2.0 * active * (fresh + out) if active else np.full(m, np.nan)
    return {
        "input_tokens": fresh,
        "output_tokens": out,
        "flops": flops,
        "dollars": _dollars(meta, input_tokens, output_tokens, cost_usd, fresh, hit),
        "latency_s": _latency(input_tokens, output_tokens, latency_s, hit),
        "param_calls": np.full(m, float(active) * n if active else np.nan),
    }


def _dollars(
    meta: dict[str, Any],
    input_tokens: np.ndarray,
    output_tokens: np.ndarray,
    cost_usd: np.ndarray,
    fresh: np.ndarray,
    hit: np.ndarray,
) -> np.ndarray:
    """Pool prices where listed, else the recorded cost split by tokens (module docstring)."""
    p_in, p_out = meta.get("price_in_per_mtok"), meta.get("price_out_per_mtok")
    if p_in is not None and p_out is not None:
        p_hit = meta.get("price_cached_in_per_mtok")
        p_hit = p_in if p_hit is None else p_hit
        return (p_in * fresh + p_hit * hit + p_out * output_tokens.sum(axis=1)) / 1e6
    with np.errstate(all="ignore"):
        per_token = cost_usd / (input_tokens + output_tokens)  # implied price, (m, n)
        mean_price = per_token.sum(axis=1) / per_token.shape[1]  # NaN if any sample's is
        split = mean_price * (fresh + hit) + np.sum(per_token * output_tokens, axis=1)
    whole = cost_usd.sum(axis=1)  # tokens unknown: the per-sample cost cannot be split
    return np.where(np.isfinite(split), split, whole)


def _latency(
    input_tokens: np.ndarray, output_tokens: np.ndarray, latency_s: np.ndarray, hit: np.ndarray
) -> np.ndarray:
    """The slowest sample, less the cached prefix's token share of each sample's time."""
    if latency_s.shape[1] == 0:
        return np.zeros(len(latency_s))
    with np.errstate(all="ignore"):
        saved = hit[:, None] / (input_tokens + output_tokens)
        lat = latency_s * (1.0 - np.where(np.isfinite(saved), saved, 0.0))
        return np.max(lat, axis=1)


def training_flops(params: float | None, tokens: float | None) -> float:
    """Pre-training compute, 6·N·D (T2's training budget)."""
    if params is None or tokens is None:
        return float("nan")
    return 6.0 * params * tokens


def sample_charges(
    arr: ModelArrays,
    meta: dict[str, Any],
    rows: np.ndarray,
    slot: np.ndarray,
    cached: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Charges of one request for the samples at ``arr[rows, slot]`` (see :func:`request_costs`)."""
    return request_costs(
        meta,
        arr.input_tokens[rows, slot],
        arr.output_tokens[rows, slot],
        arr.cost_usd[rows, slot],
        arr.latency_s[rows, slot],
        cached,
    )
