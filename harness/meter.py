"""The meter: the only door to model outputs, and the ledger of what each query cost.

Two sides. The parent-side :class:`Meter` holds the bank with its truth; a strategy talks only
to a :class:`MeterClient`, through a small batched protocol (:class:`MeterService` answers it,
in-process or across a process boundary, :mod:`uisbench.isolation`):

* ``draw(model, queries, n)`` → the drawn samples' content (answer codes, scores, log-probs,
  output tokens) and what each query was charged. In replay the samples come from the bank in a
  seeded random order per (query, model), without replacement within a run, so two settings of
  a sweep never share one fixed prefix of samples. A repeated request for the same (query,
  model) finds its prompt in the run's prefix cache (:class:`uisbench.costs.PrefixCache`) and
  pays only the uncached tail; the rules of every unit are in :mod:`uisbench.costs`.
* ``charge(queries, ...)``: overhead a strategy causes by itself (embedding a query, a reward
  model).
* ``decide(queries, handles)`` commits answers; ``feedback(handles)`` answers only for handles
  in decisions already committed (an online learner's reward), an error otherwise.
* ``oracle(handles)`` / ``peek(model, queries, n)`` give correctness without committing (the
  oracle verifier, the oracle's look-ahead): the parent records their use in a
  :class:`RunRecord` the strategy cannot reach, and the run is an upper bound whatever the
  strategy claims.

Handles are opaque per-run sequence numbers; the parent alone maps them to (model, query, slot),
so draw order, slots and the content of undrawn samples never reach the strategy's side. Of the
test queries the client shows a :class:`~uisbench.blind.BlindView` (positions, prompts, model
metadata, samples held per query) and keeps a mirror :class:`Ledger` of its own charges.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from uisbench.blind import BlindView, blind_view
from uisbench.costs import CHARGES, PrefixCache, sample_charges
from uisbench.errors import UisbenchError
from uisbench.sampling import sample_order, seeded_rng
from uisbench.store.arrays import BankArrays, ModelArrays

NO_ANSWER = -1
NO_DECISION = -2  # a query not decided yet (``Meter.decided``)


@dataclass
class Draw:
    """``n`` samples of one model for ``m`` queries; every array is ``(m, n)`` but ``q``."""

    model: str
    q: np.ndarray  # (m,) query positions in the bank
    answer: np.ndarray  # int codes, -1 = no answer extracted
    logprob: np.ndarray
    score: np.ndarray
    output_tokens: np.ndarray
    handle: np.ndarray  # int64 opaque reference to give back in a decision

    @property
    def n(self) -> int:
        return self.answer.shape[1]


class ArmLog:
    """Each query's arms (its draws and overhead charges, in call order) as one code per query.

    Codes are the nodes of a tree of arm sequences (a code's parent is its sequence without the
    last arm, kept as JSON text): a draw or charge moves all its queries at once (one step per
    distinct code among them, not per query), and a run's decision rows encode each distinct
    sequence once (a run of thousands of queries has a few). The tree holds one node per
    distinct step, never more than a list per query would hold, whatever a strategy calls.
    """

    def __init__(self, n: int) -> None:
        self.code = np.zeros(n, dtype=np.int64)  # 0: no arm yet
        self._parent: list[int] = [0]  # code -> the code of its sequence without its last arm
        self._text: list[str] = [""]  # code -> its last arm's JSON text
        self._next: dict[tuple[int, str], int] = {}  # (code, arm appended) -> code

    def append(self, q: np.ndarray, arm: dict[str, Any]) -> None:
        """Append ``arm`` to the arms of each query in ``q`` (a query given twice, twice)."""
        text = json.dumps(arm)
        queries, times = np.unique(np.asarray(q, dtype=np.int64), return_counts=True)
        if not queries.size:
            return
        steps = np.stack([self.code[queries], times], axis=1)
        groups, inv = np.unique(steps, axis=0, return_inverse=True)
        new = []
        for code, n in groups.tolist():
            for _ in range(n):
                code = self._step(code, text)
            new.append(code)
        self.code[queries] = np.asarray(new, dtype=np.int64)[inv.ravel()]

    def _step(self, code: int, text: str) -> int:
        nxt = self._next.get((code, text))
        if nxt is None:
            nxt = self._next[code, text] = len(self._parent)
            self._parent.append(code)
            self._text.append(text)
        return nxt

    def _texts(self, code: int) -> list[str]:
        out = []
        while code:
            out.append(self._text[code])
            code = self._parent[code]
        return out[::-1]

    def __getitem__(self, i: int) -> list[dict[str, Any]]:
        """Query ``i``'s arms."""
        return [json.loads(t) for t in self._texts(int(self.code[i]))]

    def json(self, q: np.ndarray) -> list[str]:
        """Each query's arms as the JSON text of a list (``json.dumps`` of it), in ``q``'s
        order."""
        codes, inv = np.unique(self.code[q], return_inverse=True)
        texts = ["[" + ", ".join(self._texts(c)) + "]" for c in codes.tolist()]
        return [texts[i] for i in inv.ravel().tolist()]


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
    arms: ArmLog = field(init=False)

    def __post_init__(self) -> None:
        for name in CHARGES:
            setattr(self, name, np.zeros(self.n))
        self.samples = np.zeros(self.n, dtype=np.int64)
        self.arms = ArmLog(self.n)

    def add(self, q: np.ndarray, charges: dict[str, np.ndarray], samples: int = 0) -> None:
        # np.add.at handles a query appearing twice in one call.
        for name in CHARGES:
            np.add.at(getattr(self, name), q, charges[name])
        if samples:
            np.add.at(self.samples, q, samples)


@dataclass
class RunRecord:
    """What the parent records of a run whatever the strategy claims (out of its reach)."""

    used_oracle: bool = False  # oracle() or peek() was called: the run is an upper bound


def _positions(q: Any, n_queries: int) -> np.ndarray:
    q = np.atleast_1d(np.asarray(q))
    if q.ndim != 1 or (q.size and q.dtype.kind not in "iu"):
        raise UisbenchError("query positions must be a 1-D array of integers")
    q = q.astype(np.int64)
    if q.size and (q.min() < 0 or q.max() >= n_queries):
        raise UisbenchError("a query position is outside the bank")
    return q


def _handles(h: Any) -> np.ndarray:
    h = np.atleast_1d(np.asarray(h))
    if h.size and h.dtype.kind not in "iu":
        raise UisbenchError("sample handles must be integers")
    return h.astype(np.int64)


class Meter:
    """Parent-side replay meter over a :class:`BankArrays` (the truth); see the module
    docstring. Strategies never hold one: they get a :class:`MeterClient`."""

    def __init__(
        self,
        bank: BankArrays,
        seed: int,
        stream: str = "",
        prefix_cache: PrefixCache | str | None = None,
    ) -> None:
        self.truth = bank
        if not isinstance(prefix_cache, PrefixCache):
            prefix_cache = PrefixCache.parse(prefix_cache)
        self.prefix_cache = prefix_cache
        self._prefilled: dict[str, np.ndarray] = {}  # per model: (query,) prompt already cached
        self.models = list(bank.models)
        self._model_index = {m: i for i, m in enumerate(self.models)}
        self.ledger = Ledger(bank.n_queries)
        self.record = RunRecord()
        self._seed = seed
        self._stream = stream
        self._order: dict[str, np.ndarray] = {}
        self._cursor: dict[str, np.ndarray] = {}
        # handle h (a per-run sequence number) → model index, query, slot; committed or not
        self._h_model = np.zeros(0, dtype=np.int32)
        self._h_q = np.zeros(0, dtype=np.int64)
        self._h_slot = np.zeros(0, dtype=np.int32)
        self._h_committed = np.zeros(0, dtype=bool)
        self._n_handles = 0
        self.decided = np.full(bank.n_queries, NO_DECISION, dtype=np.int64)

    @property
    def used_oracle(self) -> bool:
        return self.record.used_oracle

    def view(self) -> BlindView:
        return blind_view(self.truth)

    # ------------------------------------------------------------ drawing samples
    def _arrays(self, model: str) -> ModelArrays:
        try:
            return self.truth.models[model]
        except (KeyError, TypeError):
            raise UisbenchError(
                f"unknown model {model!r} (the pool holds: {', '.join(self.models)})"
            ) from None

    def draw_order(self, model: str) -> np.ndarray:
        """Seeded random order of each query's samples (``(queries, width)`` slots), padding
        last; internal to the parent (never sent to a strategy)."""
        if model not in self._order:
            arr = self._arrays(model)
            rng = seeded_rng(self._seed, f"{self._stream}\0{model}")
            order = sample_order(rng, arr.n_avail, arr.answer.shape[1])
            self._order[model] = order.astype(np.int32)
            self._cursor[model] = np.zeros(self.truth.n_queries, dtype=np.int32)
        return self._order[model]

    def _new_handles(self, mi: int, q: np.ndarray, slot: np.ndarray) -> np.ndarray:
        m, n = slot.shape
        need = self._n_handles + m * n
        if need > len(self._h_q):
            cap = max(need, 2 * len(self._h_q), 1024)
            for name in ("_h_model", "_h_q", "_h_slot", "_h_committed"):
                old = getattr(self, name)
                new = np.zeros(cap, dtype=old.dtype)
                new[: self._n_handles] = old[: self._n_handles]
                setattr(self, name, new)
        sl = slice(self._n_handles, need)
        self._h_model[sl] = mi
        self._h_q[sl] = np.repeat(q, n)
        self._h_slot[sl] = slot.ravel()
        handle = np.arange(self._n_handles, need, dtype=np.int64).reshape(m, n)
        self._n_handles = need
        return handle

    def draw_charged(self, model: str, q: Any, n: int) -> tuple[Draw, dict[str, np.ndarray]]:
        """:meth:`draw`, with what each query was charged (the client's mirror ledger)."""
        if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1:
            raise UisbenchError(f"asked for {n} samples; n must be an integer of at least 1")
        n = int(n)
        arr = self._arrays(model)
        order = self.draw_order(model)
        q = _positions(q, self.truth.n_queries)
        if len(np.unique(q)) != len(q):
            raise UisbenchError("one draw asked for the same query twice")
        cur = self._cursor[model]
        start = cur[q]
        short = start + n > arr.n_avail[q]
        if short.any():
            i = int(np.flatnonzero(short)[0])
            raise UisbenchError(
                f"bank {self.truth.bank!r} holds {int(arr.n_avail[q[i]])} samples of {model} "
                f"for query {self.truth.query_keys[q[i]]}; the strategy asked for "
                f"{int(start[i]) + n} (record more with `uisbench bank record`)"
            )
        pos = start[:, None] + np.arange(n)[None, :]
        slot = np.take_along_axis(order[q], pos, axis=1)
        cur[q] = start + n
        rows = q[:, None]
        charges = sample_charges(
            arr, self.truth.model_meta[model], rows, slot, self._cached_prompt(model, q, slot)
        )
        self.ledger.add(q, charges, n)
        self.ledger.arms.append(q, {"model": model, "n": n})
        handle = self._new_handles(self._model_index[model], q, slot)
        draw = Draw(
            model=model,
            q=q,
            answer=arr.answer[rows, slot].astype(np.int64),
            logprob=arr.logprob[rows, slot].astype(np.float64),
            score=arr.score[rows, slot].astype(np.float64),
            output_tokens=arr.output_tokens[rows, slot].astype(np.float64),
            handle=handle,
        )
        return draw, {
            k: np.asarray(v, dtype=np.float64) + np.zeros(len(q)) for k, v in charges.items()
        }

    def draw(self, model: str, q: Any, n: int) -> Draw:
        """Draw ``n`` new samples of ``model`` for each query in ``q`` and charge them.

        Asking for more samples than the bank holds for a query is an error, not a silent
        reuse: the estimate would no longer be what it claims.
        """
        return self.draw_charged(model, q, n)[0]

    def _cached_prompt(self, model: str, q: np.ndarray, slot: np.ndarray) -> np.ndarray:
        """Prompt tokens of each query's request already in the cache; marks them cached."""
        seen = self._prefilled.setdefault(model, np.zeros(self.truth.n_queries, dtype=bool))
        prompt = self._arrays(model).input_tokens[q, slot[:, 0]] if slot.shape[1] else 0.0
        cached = np.where(seen[q], self.prefix_cache.cached(prompt), 0.0)
        seen[q] = True
        return cached

    def charge(
        self,
        q: Any,
        *,
        flops: float | np.ndarray = 0.0,
        dollars: float | np.ndarray = 0.0,
        latency_s: float | np.ndarray = 0.0,
        label: str,
    ) -> dict[str, np.ndarray]:
        """Charge a strategy's own overhead (router embedding, reward model) to queries."""
        q = _positions(q, self.truth.n_queries)
        charges = overhead_charges(len(q), flops, dollars, latency_s)
        self.ledger.add(q, charges)
        self.ledger.arms.append(q, {"overhead": str(label)})
        return charges

    # ------------------------------------------------------------ answers and grading
    def _check_drawn(self, handle: np.ndarray) -> None:
        if handle.size and (handle.min() < NO_ANSWER or handle.max() >= self._n_handles):
            raise UisbenchError("a strategy gave a sample handle the meter never handed out")

    def locate(self, handle: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(model index, query, slot) of drawn handles; parent-side only (tests, grading)."""
        handle = _handles(handle)
        self._check_drawn(handle)
        h = np.maximum(handle, 0)
        return self._h_model[h], self._h_q[h], self._h_slot[h]

    def resolve(self, handle: Any) -> tuple[np.ndarray, np.ndarray]:
        """(answer code, correct) of drawn sample handles; -1 handles mean "no answer"
        (incorrect). Parent-side grading: strategies get :meth:`feedback` instead."""
        handle = _handles(handle)
        mi, q, slot = self.locate(handle)
        answer = np.full(handle.shape, NO_ANSWER, dtype=np.int64)
        correct = np.zeros(handle.shape, dtype=bool)
        valid = handle >= 0
        for i, model in enumerate(self.models):
            sel = valid & (mi == i)
            if sel.any():
                arr = self.truth.models[model]
                answer[sel] = arr.answer[q[sel], slot[sel]]
                correct[sel] = arr.correct[q[sel], slot[sel]]
        return answer, correct

    def commit(self, q: Any, handle: Any) -> None:
        """Commit answers: ``handle[i]`` (a sample drawn for ``q[i]``, or -1) is final for
        query ``q[i]``; committing a query again with another answer is an error."""
        q = _positions(q, self.truth.n_queries)
        handle = _handles(handle)
        if handle.shape != q.shape:
            raise UisbenchError("strategy returned decisions of mismatched lengths")
        if len(np.unique(q)) != len(q):
            raise UisbenchError("strategy decided the same query twice")
        _, hq, _ = self.locate(handle)
        drawn = handle >= 0
        if (hq[drawn] != q[drawn]).any():
            raise UisbenchError("strategy answered a query with a sample drawn for another query")
        before = self.decided[q]
        if ((before != NO_DECISION) & (before != handle)).any():
            raise UisbenchError("strategy decided the same query twice")
        self.decided[q] = handle
        self._h_committed[handle[drawn]] = True

    def feedback(self, handle: Any) -> np.ndarray:
        """Correctness of answers already committed to (:meth:`commit`): the online learner's
        reward signal. A handle not in a committed decision is an error."""
        handle = _handles(handle)
        self._check_drawn(handle)
        drawn = handle >= 0
        if not self._h_committed[handle[drawn]].all():
            raise UisbenchError(
                "meter.feedback() answers only for committed decisions: call "
                "meter.decide(queries, handles) (or yield the Decisions) first"
            )
        return self.resolve(handle)[1]

    def oracle(self, handle: Any) -> np.ndarray:
        """Correctness of drawn samples (oracle verifier); the run becomes an upper bound."""
        self.record.used_oracle = True
        return self.resolve(handle)[1]

    def peek(
        self, model: str, q: Any, n: int, unit: str | None = None
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Correctness of each query's next ``n`` undrawn samples, without drawing or charging,
        and (given a cost ``unit``) what drawing the first ``j`` of them would cost, ``(m, n)``
        each. Only the oracle looks ahead; the run becomes an upper bound."""
        self.record.used_oracle = True
        order = self.draw_order(model)
        arr = self._arrays(model)
        q = _positions(q, self.truth.n_queries)
        n = int(n)
        pos = self._cursor[model][q][:, None] + np.arange(n)[None, :]
        ok = pos < arr.n_avail[q][:, None]
        slot = np.take_along_axis(order[q], np.minimum(pos, order.shape[1] - 1), axis=1)
        correct = arr.correct[q[:, None], slot] & ok
        if unit is None:
            return correct, None
        if unit not in CHARGES:
            raise UisbenchError(f"unknown cost unit {unit!r} (units: {', '.join(CHARGES)})")
        cost = np.full((len(q), n), np.nan)
        meta = self.truth.model_meta[model]
        for j in range(1, n + 1):
            cost[:, j - 1] = sample_charges(arr, meta, q[:, None], slot[:, :j])[unit]
        return correct, cost

    def answer_text(self, codes: np.ndarray) -> list[str | None]:
        labels = self.truth.answer_labels
        return [labels[c] if c >= 0 else None for c in np.asarray(codes).tolist()]


def overhead_charges(
    m: int, flops: Any = 0.0, dollars: Any = 0.0, latency_s: Any = 0.0
) -> dict[str, np.ndarray]:
    """The charges of :meth:`Meter.charge` for ``m`` queries (zero tokens)."""
    z = np.zeros(m)
    out = {"input_tokens": z, "output_tokens": z, "param_calls": z}
    for name, v in (("flops", flops), ("dollars", dollars), ("latency_s", latency_s)):
        v = np.asarray(v, dtype=np.float64)
        if v.ndim > 1 or (v.ndim == 1 and len(v) != m):
            raise UisbenchError(f"charge(): {name} must be a number or one value per query")
        out[name] = z + v
    return out


# ---------------------------------------------------------------------------- the protocol
#: Operations a client may ask of the parent, and nothing else.
OPS = ("draw", "charge", "commit", "feedback", "oracle", "peek")


class MeterService:
    """The parent's side of the protocol: each op's arguments checked, answered from the
    :class:`Meter`; replies hold plain arrays and strings only (no handle decoding, no
    order, nothing of an undrawn sample)."""

    def __init__(self, meter: Meter) -> None:
        self.meter = meter

    def call(self, op: str, args: dict[str, Any]) -> dict[str, Any]:
        if op not in OPS:
            raise UisbenchError(f"strategy asked the meter for an unknown operation {op!r}")
        return getattr(self, "_" + op)(**args)

    def _draw(self, model: str, q: np.ndarray, n: int) -> dict[str, Any]:
        d, charges = self.meter.draw_charged(model, q, n)
        return {
            "answer": d.answer,
            "logprob": d.logprob,
            "score": d.score,
            "output_tokens": d.output_tokens,
            "handle": d.handle,
            **{"charge_" + k: v for k, v in charges.items()},
        }

    def _charge(self, q, flops, dollars, latency_s, label: str) -> dict[str, Any]:
        charges = self.meter.charge(
            q, flops=flops, dollars=dollars, latency_s=latency_s, label=label
        )
        return {"charge_" + k: v for k, v in charges.items()}

    def _commit(self, q: np.ndarray, handle: np.ndarray) -> dict[str, Any]:
        self.meter.commit(q, handle)
        return {}

    def _feedback(self, handle: np.ndarray) -> dict[str, Any]:
        return {"correct": self.meter.feedback(handle)}

    def _oracle(self, handle: np.ndarray) -> dict[str, Any]:
        return {"correct": self.meter.oracle(handle)}

    def _peek(self, model: str, q: np.ndarray, n: int, unit: str | None) -> dict[str, Any]:
        correct, cost = self.meter.peek(model, q, n, unit)
        return {"correct": correct} if cost is None else {"correct": correct, "cost": cost}


Transport = Callable[[str, dict[str, Any]], dict[str, Any]]


class ClientError(UisbenchError, AttributeError):
    """A strategy asked its meter client for something it does not offer."""


class MeterClient:
    """The strategy's meter: asks the parent through ``transport`` (in-process: a
    :class:`MeterService`'s ``call``; isolated: a pipe to the parent) and keeps a mirror ledger
    of its own charges. ``bank`` is a :class:`~uisbench.blind.BlindView`."""

    def __init__(self, view: BlindView, transport: Transport) -> None:
        self.bank = view
        self.models = list(view.models)
        self.ledger = Ledger(view.n_queries)
        self._call = transport
        self._drawn = {m: np.zeros(view.n_queries, dtype=np.int64) for m in self.models}

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        raise ClientError(
            f"the meter has no {name!r} for strategies: they draw(), charge(), decide(), ask "
            "feedback() on committed decisions, and oracle()/peek() (an upper bound)"
        )

    def draw(self, model: str, q: np.ndarray | int, n: int) -> Draw:
        """Draw ``n`` new samples of ``model`` for each query in ``q`` (charged)."""
        q = np.atleast_1d(np.asarray(q, dtype=np.int64))
        r = self._call("draw", {"model": model, "q": q, "n": int(n)})
        self.ledger.add(q, {k: r["charge_" + k] for k in CHARGES}, int(n))
        np.add.at(self._drawn[model], q, int(n))
        return Draw(
            model, q, r["answer"], r["logprob"], r["score"], r["output_tokens"], r["handle"]
        )

    def available(self, model: str, q: np.ndarray | int) -> np.ndarray:
        """Samples of ``model`` still undrawn for each query in ``q``."""
        q = np.atleast_1d(np.asarray(q, dtype=np.int64))
        return self.bank.models[model].n_avail[q] - self._drawn[model][q]

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
        args = {"flops": flops, "dollars": dollars, "latency_s": latency_s}
        args = {k: np.asarray(v, dtype=np.float64) for k, v in args.items()}
        r = self._call("charge", {"q": q, **args, "label": str(label)})
        self.ledger.add(q, {k: r["charge_" + k] for k in CHARGES})

    def decide(self, q: np.ndarray, handle: np.ndarray) -> None:
        """Commit answers now (before yielding them), e.g. to ask :meth:`feedback`."""
        q = np.atleast_1d(np.asarray(q, dtype=np.int64))
        self._call("commit", {"q": q, "handle": np.atleast_1d(np.asarray(handle, np.int64))})

    def feedback(self, handle: np.ndarray | int) -> np.ndarray:
        """Correctness of answers already committed: the online learner's reward signal."""
        return self._call("feedback", {"handle": _handles(handle)})["correct"]

    def oracle(self, draw: Draw | np.ndarray) -> np.ndarray:
        """Correctness of drawn samples (oracle verifier); the run becomes an upper bound."""
        handle = draw.handle if isinstance(draw, Draw) else draw
        return self._call("oracle", {"handle": _handles(handle)})["correct"]

    def peek(
        self, model: str, q: np.ndarray, n: int, unit: str | None = None
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Look-ahead for the oracle reference (see :meth:`Meter.peek`); an upper bound."""
        q = np.atleast_1d(np.asarray(q, dtype=np.int64))
        r = self._call("peek", {"model": model, "q": q, "n": int(n), "unit": unit})
        return r["correct"], r.get("cost")


def local_client(meter: Meter) -> MeterClient:
    """A client served in-process (built-in strategies, replay): same protocol, no copy."""
    return MeterClient(meter.view(), MeterService(meter).call)
