"""Answer aggregation over ``(queries, samples)`` matrices of answer codes, and its registry.

An aggregator turns k samples per query into one chosen column per query (-1: none chosen),
vectorised over queries. :data:`AGGREGATORS` names the ones a strategy may be configured with
(like lm-eval's filters or inspect's score reducers), so a strategy reads
``AGGREGATORS[arm.agg](draw)`` instead of carrying its own copy. It is a plain dict, not a
:class:`uisbench.registry.Registry`: aggregators are small pure functions of this module, not
plugins found through entry points; a new one is one line here. Its keys are part of
UniScale's arm labels (which seed its simulations and are stored in every decision), so they
do not change.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np

ROW_BLOCK = 4096  # rows per block keeps the (rows, n, n) comparison under ~20 MB at n = 64


class Samples(Protocol):
    """What an aggregator reads: a :class:`uisbench.meter.Draw`, or :class:`SampleView`."""

    @property
    def answer(self) -> np.ndarray: ...  # (m, k) answer codes, -1 = no answer

    @property
    def logprob(self) -> np.ndarray: ...  # (m, k), NaN where unknown


class SampleView:
    """Answers and log-probs of simulated draws (samples taken from a bank, not the meter)."""

    def __init__(self, answer: np.ndarray, logprob: np.ndarray) -> None:
        self.answer = answer
        self.logprob = logprob


def vote_counts(answer: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """For each sample, the (weighted) number of samples in its row with the same answer.

    Samples without an answer (code -1) get 0 and never count for others.
    """
    m, n = answer.shape
    out = np.zeros((m, n), dtype=float)
    valid = answer >= 0
    w = valid.astype(float) if weights is None else np.where(valid, weights, 0.0)
    for lo in range(0, m, ROW_BLOCK):
        a = answer[lo : lo + ROW_BLOCK]
        eq = a[:, :, None] == a[:, None, :]
        out[lo : lo + ROW_BLOCK] = np.einsum("rij,rj->ri", eq, w[lo : lo + ROW_BLOCK])
    out[~valid] = 0.0
    return out


def majority_column(answer: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Column of the winning answer per row, ties going to the earliest drawn; -1 if none.

    This is self-consistency's plurality vote (Wang et al., 2023) when ``weights`` is None.
    """
    m, n = answer.shape
    if n == 0:
        return np.full(m, -1, dtype=np.int64)
    counts = vote_counts(answer, weights)
    best = counts.max(axis=1, keepdims=True)
    is_best = (counts == best) & (counts > 0)
    col = np.argmax(is_best, axis=1)  # first (earliest) column among the tied leaders
    col[~is_best.any(axis=1)] = -1
    return col


def agreement(answer: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(plurality column, share of the row's samples voting for it) per row.

    The confidence of a vote (FrugalGPT-style cascades escalate when it is low).
    """
    col = majority_column(answer)
    top = take(vote_counts(answer), col)
    return col, np.where(col >= 0, top / answer.shape[1], 0.0)


def answered_logprob(samples: Samples) -> np.ndarray:
    """Log-probs of the samples that have an answer; NaN elsewhere."""
    return np.where(samples.answer >= 0, samples.logprob.astype(float), np.nan)


def has_logprob(samples: Samples) -> np.ndarray:
    """Per row: does some answered sample carry a log-prob?"""
    return np.isfinite(answered_logprob(samples)).any(axis=1)


def majority(samples: Samples) -> np.ndarray:
    """Self-consistency: the plurality answer's first column (Wang et al., 2023)."""
    return majority_column(samples.answer)


def best_logprob(samples: Samples) -> np.ndarray:
    """Best-of-k by log-probability: the answered sample the model is most confident in.

    The "score" selector of best-of-N (Brown et al., 2024, §4). Where no answered sample of a
    row has a log-prob (banks that did not keep them), the row falls back to the plurality vote.
    """
    lp = answered_logprob(samples)
    best = np.argmax(np.nan_to_num(lp, nan=-np.inf), axis=1)
    return np.where(np.isfinite(lp).any(axis=1), best, majority(samples))


def first_correct(ok: np.ndarray) -> np.ndarray:
    """Column of the first correct sample per row, 0 where none is (an oracle verifier's pick)."""
    return np.where(ok.any(axis=1), np.argmax(ok, axis=1), 0)


def take(values: np.ndarray, col: np.ndarray) -> np.ndarray:
    """``values[row, col[row]]`` per row, -1 where no column was chosen (``col`` < 0).

    Used on sample handles (the decision a strategy returns) and on bank slots.
    """
    out = np.take_along_axis(values, np.maximum(col, 0)[:, None], axis=1)[:, 0]
    return np.where(col >= 0, out, -1)


Aggregator = Callable[[Samples], np.ndarray]

#: Aggregators by name: ``AGGREGATORS[name](samples)`` → chosen column per row (-1: none).
AGGREGATORS: dict[str, Aggregator] = {
    "majority": majority,
    "logprob": best_logprob,
}
