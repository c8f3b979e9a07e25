"""Test-time scaling with one fixed model: k samples, then aggregate.

* ``majority`` — self-consistency (Wang et al., 2023): plurality vote over k samples.
* ``best-of-k`` — return the sample with the highest log-probability (the "score" selector of
  best-of-N; Large Language Monkeys, Brown et al. 2024, §4 compare such selectors with voting).
* ``pass-at-k`` — coverage with an oracle verifier (Brown et al., 2024, eq. 1): the query counts
  as solved if any of the k samples is correct. It asks the meter's oracle, so the run is flagged
  as an **upper bound**, never a realisable accuracy.
* ``adaptive`` — Adaptive-Consistency (Aggarwal et al., 2023, §2.2, Beta stopping criterion):
  draw one sample at a time and stop once P(p₁ > p₂ | votes) ≥ ``confidence``, where p₁, p₂ are
  the shares of the two leading answers under a uniform prior, i.e.
  ``1 − I_{1/2}(v₁ + 1, v₂ + 1) ≥ confidence`` (I: regularised incomplete Beta), or at ``k``.

k is swept over powers of two up to what the bank holds; the meter draws k of the recorded
samples in a seeded random order per run, so settings never share one fixed prefix.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import betainc

from uisbench.errors import UisbenchError
from uisbench.meter import Draw
from uisbench.strategies.aggregators import (
    AGGREGATORS,
    first_correct,
    has_logprob,
    majority_column,
    take,
    vote_counts,
)
from uisbench.strategies.base import Decisions, RunContext, Strategy, bounded
from uisbench.strategies.costing import SWEEP_POINTS, powers_of_two, sample_counts
from uisbench.strategies.reference import require_model

__all__ = ["AdaptiveConsistency", "BestOfK", "MajorityVote", "PassAtK", "powers_of_two"]


@dataclass
class _ModelK:
    model: str = ""
    k: int = bounded(1, ge=1)


def _few_k(models: list[str], max_k: dict[str, int]) -> list[dict[str, Any]]:
    """k > 1 per model, log-spaced, at least :data:`SWEEP_POINTS` in all where the pool allows."""
    per_model = max(2, -(-SWEEP_POINTS // max(1, len(models))))
    return [{"model": m, "k": k} for m in models for k in sample_counts(max_k[m], per_model)]


def _check_k(ctx: RunContext, model: str, k: int, name: str) -> None:
    held = ctx.max_samples(model)
    if k > held:
        raise UisbenchError(
            f"strategy {name}: k={k} but the bank holds only {held} samples of {model} for "
            "some test query"
        )


class MajorityVote(Strategy):
    """Self-consistency (Wang et al., 2023): sample k answers, return the most frequent one.

    Ties go to the answer drawn first; samples without an extracted answer do not vote.
    """

    name = "majority"
    family = "tts"
    description = "TTS-only: k samples of one model, plurality vote (self-consistency)."
    needs_answers = True

    @dataclass
    class Params(_ModelK):
        pass

    @classmethod
    def sweep(cls, models: list[str], max_k: dict[str, int]) -> list[dict[str, Any]]:
        return [{"model": m, "k": k} for m in models for k in sample_counts(max_k[m])]

    def run(self, ctx: RunContext) -> Iterator[Decisions]:
        model = require_model(ctx, self.params.model, self.name)
        draw = ctx.meter.draw(model, ctx.stream, self.params.k)
        yield Decisions(ctx.stream, take(draw.handle, AGGREGATORS["majority"](draw)))


class _FewK(Strategy):
    """A fixed model and k, swept over a few k > 1; the draw checks the bank holds k samples."""

    family = "tts"

    @dataclass
    class Params(_ModelK):
        pass

    @classmethod
    def sweep(cls, models: list[str], max_k: dict[str, int]) -> list[dict[str, Any]]:
        return _few_k(models, max_k)

    def draw_k(self, ctx: RunContext) -> Draw:
        model = require_model(ctx, self.params.model, self.name)
        _check_k(ctx, model, self.params.k, self.name)
        return ctx.meter.draw(model, ctx.stream, self.params.k)


class BestOfK(_FewK):
    """Best-of-k by log-probability: the sample the model itself is most confident in.

    Where a sample has no log-prob it ranks last; where none of a query's k samples has one
    (banks that did not keep log-probs), the choice falls back to the plurality vote and the
    decision says so in ``extra`` (``selector: majority``).
    """

    name = "best-of-k"
    description = "TTS-only: k samples of one model, keep the highest log-prob sample."
    needs_answers = True

    def run(self, ctx: RunContext) -> Iterator[Decisions]:
        draw = self.draw_k(ctx)
        col = AGGREGATORS["logprob"](draw)
        extra = [{"selector": "logprob" if h else "majority"} for h in has_logprob(draw).tolist()]
        yield Decisions(ctx.stream, take(draw.handle, col), extra=extra)


class PassAtK(_FewK):
    """pass@k coverage: correct if any of k samples is — an oracle-verifier upper bound."""

    name = "pass-at-k"
    description = "TTS-only: pass@k coverage with an oracle verifier (upper bound)."
    upper_bound = True

    def run(self, ctx: RunContext) -> Iterator[Decisions]:
        draw = self.draw_k(ctx)
        col = first_correct(ctx.meter.oracle(draw))
        yield Decisions(ctx.stream, take(draw.handle, col))


def decided(counts_top: np.ndarray, counts_second: np.ndarray) -> np.ndarray:
    """P(p₁ > p₂ | v₁, v₂) under a uniform Beta prior (Adaptive-Consistency's Beta criterion)."""
    return 1.0 - betainc(counts_top + 1.0, counts_second + 1.0, 0.5)


class AdaptiveConsistency(Strategy):
    """Adaptive-Consistency: sample one at a time, stop once the vote is decided."""

    name = "adaptive"
    family = "tts"
    description = "TTS-only: sample until the leading answer is decided at a confidence (Beta)."
    needs_answers = True

    @dataclass
    class Params:
        model: str = ""
        k: int | None = bounded(None, ge=1)  # most samples per query; None: all the bank holds
        confidence: float = bounded(0.95, ge=0.5, le=0.999999)

    @classmethod
    def sweep(cls, models: list[str], max_k: dict[str, int]) -> list[dict[str, Any]]:
        levels = (0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.97, 0.99)  # cost grows as 1 − c shrinks
        pool = [m for m in models if max_k[m] >= 4]
        return [{"model": m, "k": max_k[m], "confidence": c} for m in pool for c in levels]

    def run(self, ctx: RunContext) -> Iterator[Decisions]:
        model = require_model(ctx, self.params.model, self.name)
        k = self.params.k or ctx.max_samples(model)  # the default adapts to the bank
        _check_k(ctx, model, k, self.name)
        q = ctx.stream
        answer = np.full((len(q), k), -1, dtype=np.int64)
        handle = np.full((len(q), k), -1, dtype=np.int64)
        used = np.zeros(len(q), dtype=np.int64)
        open_ = np.arange(len(q))
        prob = np.zeros(len(q))
        for step in range(k):
            d = ctx.meter.draw(model, q[open_], 1)
            answer[open_, step] = d.answer[:, 0]
            handle[open_, step] = d.handle[:, 0]
            used[open_] += 1
            counts = vote_counts(answer[open_, : step + 1])
            # vote count of each distinct answer: top and second among distinct codes
            top, second = _top_two(answer[open_, : step + 1], counts)
            prob[open_] = decided(top, second)
            open_ = open_[prob[open_] < self.params.confidence]
            if not len(open_):
                break
        col = majority_column(np.where(np.arange(k)[None, :] < used[:, None], answer, -1))
        extra = [{"samples": int(u), "p_decided": float(p)} for u, p in zip(used, prob)]
        yield Decisions(q, take(handle, col), extra=extra)


def _top_two(answer: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Votes of the leading answer and of the runner-up per row (0 when absent)."""
    top = counts.max(axis=1) if counts.shape[1] else np.zeros(len(answer))
    leader = np.take_along_axis(answer, np.argmax(counts, axis=1)[:, None], axis=1)
    other = np.where((answer != leader) & (answer >= 0), counts, 0.0)
    return top, other.max(axis=1)
