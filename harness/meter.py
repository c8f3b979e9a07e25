"""The meter: the only door to model outputs, and the ledger of what each query cost.

A strategy asks ``meter.draw(model, queries, n)`` and gets ``n`` samples per query; the meter
charges tokens, FLOPs, dollars and latency to each query's ledger. In replay the samples come
from the bank in a seeded random order per (query, model), without replacement within a run, so
two settings of a sweep never share one fixed prefix of samples. A repeated request for the same
(query, model) finds its prompt in the run's prefix cache (:class:`uisbench.costs.PrefixCache`)
and pays only the uncached tail; the rules of every unit are in :mod:`uisbench.costs`. Overhead
a strategy causes by itself (embedding a query, a reward model) is charged with
:meth:`Meter.charge`.

Correctness is not in a :class:`Draw`, and ``meter.bank`` is a blind view of the bank
(:mod:`uisbench.blind`: reading its ``correct`` raises): a strategy learns whether an answer was
right only through :meth:`Meter.feedback` (after it has committed to the answer, as an online
learner would) or :meth:`Meter.oracle` (which marks the run as an oracle upper bound).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from uisbench.blind import blind
from uisbench.costs import CHARGES, PrefixCache, sample_charges
from uisbench.errors import UisbenchError
from uisbench.sampling import sample_order, seeded_rng
from uisbench.store.arrays import BankArrays, ModelArrays

QBITS = 24  # handle = model << (QBITS + SBITS) | query << SBITS | slot
SBITS = 16
NO_ANSWER = -1


@dataclass
class Draw:
    """``n`` samples of one model for ``m`` queries; every array is ``(m, n)`` but ``q``."""

    model: str
    q: np.ndarray  # (m,) query positions in the meter's bank
    answer: np.ndarray  # int codes, -1 = no answer extracted
    logprob: np.ndarray
    score: np.ndarray
    output_tokens: np.ndarray
    handle: np.ndarray  # int64 reference to give back in a decision

    @property
    def n(self) -> int:
        return self.answer.shape[1]


@dataclass
class Ledger:
    """Per-query running totals (arrays indexed by query position)."""

    n: int
    input_tokens: np.ndarray = field(init=False)
    output_tokens: np.ndarray = field(init=False)
    flops: np.ndarray = field(init=False)
    dollars: np.ndarray = field(init=False)
    latency_s: np.ndarray = field(init=False)
    param_calls: np.ndarray = field(init=False)
    samples: np.ndarray = field(init=False)
    arms: list[list[dict[str, Any]]] = field(init=False)

    def __post_init__(self) -> None:
        for name in CHARGES:
            setattr(self, name, np.zeros(self.n))
        self.samples = np.zeros(self.n, dtype=np.int64)
        self.arms = [[] for _ in range(self.n)]


class Meter:
    """Replay meter over a :class:`BankArrays`; see the module docstring for the rules."""

    def __init__(
        self,
        bank: BankArrays,
        seed: int,
        stream: str = "",
        prefix_cache: PrefixCache | str | None = None,
    ) -> None:
        self.bank = blind(bank)  # what strategies see
        self.__truth = bank  # correctness, for grading committed answers only
        if not isinstance(prefix_cache, PrefixCache):
            prefix_cache = PrefixCache.parse(prefix_cache)
        self.prefix_cache = prefix_cache
        self._prefilled: dict[str, np.ndarray] = {}  # per model: (query,) prompt already cached
        self.models = list(bank.models)
        self._model_index = {m: i for i, m in enumerate(self.models)}
        self.ledger = Ledger(bank.n_queries)
        self.used_oracle = False
        self._seed = seed
        self._stream = stream
        self._order: dict[str, np.ndarray] = {}
        self._cursor: dict[str, np.ndarray] = {}

    # ------------------------------------------------------------ drawing samples
    def _arrays(self, model: str) -> ModelArrays:
        try:
            return self.bank.models[model]
        except KeyError:
            raise UisbenchError(
                f"unknown model {model!r} (the pool holds: {', '.join(self.models)})"
            ) from None

    def draw_order(self, model: str) -> np.ndarray:
        """Seeded random order of each query's samples (``(queries, width)`` slots), padding last.

        Samples are drawn in this order; the oracle reference reads it to price its look-ahead.
        """
        if model not in self._order:
            arr = self._arrays(model)
            rng = seeded_rng(self._seed, f"{self._stream}\0{model}")
            order = sample_order(rng, arr.n_avail, arr.answer.shape[1])
            self._order[model] = order.astype(np.int32)
            self._cursor[model] = np.zeros(self.bank.n_queries, dtype=np.int32)
        return self._order[model]

    def available(self, model: str, q: np.ndarray | int) -> np.ndarray:
        """Samples of ``model`` still undrawn for each query in ``q``."""
        self.draw_order(model)
        q = np.atleast_1d(np.asarray(q, dtype=np.int64))
        return self._arrays(model).n_avail[q] - self._cursor[model][q]

    def draw(self, model: str, q: np.ndarray | int, n: int) -> Draw:
        """Draw ``n`` new samples of ``model`` for each query in ``q`` and charge them.

        Asking for more samples than the bank holds for a query is an error, not a silent
        reuse: the estimate would no longer be what it claims.
        """
        if n < 1:
            raise UisbenchError(f"asked for {n} samples; n must be at least 1")
        order = self.draw_order(model)
        arr = self._arrays(model)
        q = np.atleast_1d(np.asarray(q, dtype=np.int64))
        cur = self._cursor[model]
        start = cur[q]
        short = start + n > arr.n_avail[q]
        if short.any():
            i = int(np.flatnonzero(short)[0])
            raise UisbenchError(
                f"bank {self.bank.bank!r} holds {int(arr.n_avail[q[i]])} samples of {model} for "
                f"query {self.bank.query_keys[q[i]]}; the strategy asked for "
                f"{int(start[i]) + n} (record more with `uisbench bank record`)"
            )
        pos = start[:, None] + np.arange(n)[None, :]
        slot = np.take_along_axis(order[q], pos, axis=1)
        cur[q] = start + n
        rows = q[:, None]
        charges = sample_charges(
            arr, self.bank.model_meta[model], rows, slot, self._cached_prompt(model, q, slot)
        )
        self._charge(q, charges, {"model": model, "n": n})
        mi = self._model_index[model]
        handle = (np.int64(mi) << (QBITS + SBITS)) | (rows << SBITS) | slot.astype(np.int64)
        return Draw(
            model=model,
            q=q,
            answer=arr.answer[rows, slot],
            logprob=arr.logprob[rows, slot],
            score=arr.score[rows, slot],
            output_tokens=arr.output_tokens[rows, slot],
            handle=handle,
        )

    def _cached_prompt(self, model: str, q: np.ndarray, slot: np.ndarray) -> np.ndarray:
        """Prompt tokens of each query's request already in the cache; marks them cached."""
        seen = self._prefilled.setdefault(model, np.zeros(self.bank.n_queries, dtype=bool))
        prompt = self._arrays(model).input_tokens[q, slot[:, 0]] if slot.shape[1] else 0.0
        cached = np.where(seen[q], self.prefix_cache.cached(prompt), 0.0)
        seen[q] = True
        return cached

    def _charge(self, q: np.ndarray, charges: dict[str, np.ndarray], arm: dict | None) -> None:
        L = self.ledger
        # np.add.at handles a query appearing twice in one call.
        for name in CHARGES:
            np.add.at(getattr(L, name), q, charges[name])
        if arm is not None:
            np.add.at(L.samples, q, arm["n"])
            for i in q.tolist():
                L.arms[i].append(arm)

    def charge(
        self,
        q: np.ndarray | int,
        *,
        flops: float | np.ndarray = 0.0,
        dollars: float | np.ndarray = 0.0,
        latency_s: float | np.ndarray = 0.0,
        label: str,
    ) -> None:
        """Charge a strategy's own overhead (router embedding, reward model) to queries."""
        q = np.atleast_1d(np.asarray(q, dtype=np.int64))
        z = np.zeros(len(q))
        self._charge(
            q,
            {
                "input_tokens": z,
                "output_tokens": z,
                "flops": z + flops,
                "dollars": z + dollars,
                "latency_s": z + latency_s,
                "param_calls": z,
            },
            None,
        )
        for i in q.tolist():
            self.ledger.arms[i].append({"overhead": label})

    # ------------------------------------------------------------ answers and grading
    def _decode(self, handle: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        handle = np.asarray(handle, dtype=np.int64)
        mi = handle >> (QBITS + SBITS)
        q = (handle >> SBITS) & ((1 << QBITS) - 1)
        slot = handle & ((1 << SBITS) - 1)
        return mi, q, slot

    def resolve(self, handle: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(answer code, correct) of sample handles; -1 handles mean "no answer" (incorrect).

        Only samples that were drawn, and so paid for, can be chosen.
        """
        handle = np.asarray(handle, dtype=np.int64)
        answer = np.full(handle.shape, NO_ANSWER, dtype=np.int64)
        correct = np.zeros(handle.shape, dtype=bool)
        valid = handle >= 0
        mi, q, slot = self._decode(handle)
        for i, model in enumerate(self.models):
            sel = valid & (mi == i)
            if not sel.any():
                continue
            arr = self.__truth.models[model]
            order = self.draw_order(model)
            rank = np.argmax(order[q[sel]] == slot[sel, None], axis=1)
            if (rank >= self._cursor[model][q[sel]]).any():
                raise UisbenchError(f"a strategy chose a sample of {model} it never drew")
            answer[sel] = arr.answer[q[sel], slot[sel]]
            correct[sel] = arr.correct[q[sel], slot[sel]]
        return answer, correct

    def feedback(self, handle: np.ndarray | int) -> np.ndarray:
        """Correctness of answers already committed to: the online learner's reward signal."""
        return self.resolve(np.atleast_1d(handle))[1]

    def oracle(self, draw: Draw) -> np.ndarray:
        """Correctness of every drawn sample (oracle verifier); marks an upper bound."""
        self.used_oracle = True
        return self.resolve(draw.handle)[1]

    def peek(self, model: str, q: np.ndarray, n: int) -> np.ndarray:
        """Correctness of the next ``n`` samples in draw order, without drawing or charging.

        Only the oracle reference point may look ahead; it flags the run as an upper bound.
        """
        self.used_oracle = True
        order = self.draw_order(model)
        arr = self._arrays(model)
        q = np.atleast_1d(np.asarray(q, dtype=np.int64))
        pos = self._cursor[model][q][:, None] + np.arange(n)[None, :]
        ok = pos < arr.n_avail[q][:, None]
        slot = np.take_along_axis(order[q], np.minimum(pos, order.shape[1] - 1), axis=1)
        return self.__truth.models[model].correct[q[:, None], slot] & ok

    def answer_text(self, codes: np.ndarray) -> list[str | None]:
        labels = self.bank.answer_labels
        return [labels[c] if c >= 0 else None for c in np.asarray(codes).tolist()]
