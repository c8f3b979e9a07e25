"""The run loop: the one place a run's seeded stream, meter and fit-then-run are set up.

:class:`uisbench.runner.Runner` drives a replay and writes its decisions to the database;
:func:`replay_in_memory` drives the same replay in memory (sweeps, benchmarks, tests) and
returns the per-configuration means the leaderboard would show. Both start from :func:`start`, so a
configuration and seed give the same decisions either way:

* the test queries arrive in a seeded permutation that depends on the seed only, so every
  strategy sees the same stream (an online learner's order matters);
* the meter is seeded by (seed, the configuration's label), so two settings of a sweep draw
  different samples (:mod:`uisbench.sampling`);
* the strategy gets a :class:`~uisbench.meter.MeterClient`, never the parent's
  :class:`~uisbench.meter.Meter`: each yielded chunk is committed (:meth:`Meter.commit`) before
  the strategy resumes, and graded by the parent.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from uisbench.costs import PrefixCache
from uisbench.errors import UisbenchError
from uisbench.fitcache import FitCache
from uisbench.meter import Meter, local_client
from uisbench.store.arrays import BankArrays
from uisbench.strategies.base import Decisions, RunContext, Strategy, make_strategy

STREAM_SALT = 0x5EED  # second seed word of the stream order (the meter's is a label's CRC-32)


def arrival_order(test_pos: np.ndarray, seed: int) -> np.ndarray:
    """The order in which the test queries arrive: a permutation seeded by ``seed`` alone."""
    rng = np.random.default_rng([seed, STREAM_SALT])
    return test_pos[rng.permutation(len(test_pos))]


def start(
    strategy: Strategy,
    arrays: BankArrays,
    train: BankArrays,
    test_pos: np.ndarray,
    seed: int,
    prefix_cache: PrefixCache | str | None = None,
) -> tuple[RunContext, Meter]:
    """A fresh run of ``strategy`` with ``seed``: the seeded stream behind a fresh parent-side
    meter that charges repeated requests under ``prefix_cache`` (default block:16), and the
    strategy's context, whose meter is an in-process client of it."""
    meter = meter_for(strategy.label(), arrays, seed, prefix_cache)
    ctx = RunContext(local_client(meter), arrival_order(test_pos, seed), train, seed)
    return ctx, meter


def meter_for(
    label: str, arrays: BankArrays, seed: int, prefix_cache: PrefixCache | str | None = None
) -> Meter:
    """The parent-side meter of a run of configuration ``label`` with ``seed``."""
    return Meter(arrays, seed, label, prefix_cache)


def decide(strategy: Strategy, ctx: RunContext, meter: Meter) -> Iterator[Decisions]:
    """Fit on the training split, then yield the strategy's decisions chunk by chunk, each
    committed to ``meter`` before it is passed on."""
    strategy.fit(ctx.train, ctx)
    for chunk in strategy.run(ctx):
        meter.commit(chunk.q, chunk.handle)
        yield chunk


def evaluation(strategy: Strategy, ctx: RunContext, truth: BankArrays) -> dict[int, dict]:
    """The strategy's evaluation-only figures (:meth:`Strategy.evaluate`) by query position,
    computed once its decisions are all committed; empty when it has none."""
    return figures_by_position(strategy.label(), strategy.evaluate(truth, ctx), ctx.stream)


def figures_by_position(label: str, figures: list | None, stream: np.ndarray) -> dict[int, dict]:
    """Evaluation figures (one dict per query of ``stream``) by query position."""
    if figures is None:
        return {}
    if len(figures) != len(stream):
        raise UisbenchError(
            f"strategy {label}: evaluate() gave {len(figures)} figures for {len(stream)} queries"
        )
    return {int(p): f or {} for p, f in zip(stream.tolist(), figures)}


@dataclass
class InMemoryRun:
    """One configuration and seed replayed in memory; costs are means per test query."""

    label: str
    family: str
    upper_bound: bool
    accuracy: float
    flops: float  # NaN when some model's size is unknown
    dollars: float
    samples: float
    correct: np.ndarray  # per test query, in stream order (replay_seeds_in_memory: by position)
    reward: np.ndarray | None = None
    extra: list[dict[str, Any]] = field(default_factory=list)
    q: np.ndarray | None = None  # the query position of each entry of ``correct``


def replay_in_memory(
    arrays: BankArrays,
    train: BankArrays,
    test_pos: np.ndarray,
    strategy: Strategy | str,
    seed: int = 0,
    cache: FitCache | None = None,
) -> InMemoryRun:
    """Run one configuration with one seed over the test queries; nothing is written. Fits
    go to ``cache`` (pass one to share them between calls), else to a cache of this call."""
    strat = make_strategy(strategy)
    ctx, meter = start(strat, arrays, train, test_pos, seed)
    ctx.cache = cache if cache is not None else ctx.cache
    chunks = list(decide(strat, ctx, meter))
    q = np.concatenate([np.asarray(c.q) for c in chunks])
    figures = evaluation(strat, ctx, arrays)
    _, correct = meter.resolve(np.concatenate([np.asarray(c.handle) for c in chunks]))
    rewards = [c.reward for c in chunks]
    ledger = meter.ledger
    return InMemoryRun(
        label=strat.label(),
        family=strat.family,
        upper_bound=bool(strat.upper_bound or meter.used_oracle),
        accuracy=float(correct.mean()),
        flops=float(ledger.flops[q].mean()),
        dollars=float(ledger.dollars[q].mean()),
        samples=float(ledger.samples[q].mean()),
        correct=correct,
        reward=None if any(r is None for r in rewards) else np.concatenate(rewards),
        extra=[
            {**(e or {}), **figures.get(int(p), {})}
            for e, p in zip([e for c in chunks for e in (c.extra or [{}] * len(c.q))], q)
        ],
        q=q,
    )


def replay_seeds_in_memory(
    arrays: BankArrays,
    train: BankArrays,
    test_pos: np.ndarray,
    spec: str,
    seeds: list[int],
    cache: FitCache | None = None,
) -> InMemoryRun:
    """Mean over seeds of one configuration (accuracy and costs averaged); the seeds share one
    fit cache (``cache``, else one of this call).

    Each seed's stream arrives in its own order, so per-query correctness is averaged by query
    position (``correct[i]`` belongs to ``q[i]``, positions ascending), never by arrival index.
    """
    cache = cache if cache is not None else FitCache()
    runs = [replay_in_memory(arrays, train, test_pos, spec, s, cache) for s in seeds]
    by_pos = [r.correct[np.argsort(r.q)] for r in runs]
    first = runs[0]
    return InMemoryRun(
        label=first.label,
        family=first.family,
        upper_bound=any(r.upper_bound for r in runs),
        accuracy=float(np.mean([r.accuracy for r in runs])),
        flops=float(np.mean([r.flops for r in runs])),
        dollars=float(np.mean([r.dollars for r in runs])),
        samples=float(np.mean([r.samples for r in runs])),
        correct=np.mean(by_pos, axis=0),
        reward=first.reward,
        extra=first.extra,
        q=np.sort(first.q),
    )
