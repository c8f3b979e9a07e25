"""Replaying a strategy in memory, without the database: for sweeps, benchmarks and tests.

It builds the run exactly as :class:`uisbench.runner.Runner` does (the same seeded stream
order, the meter seeded by the configuration's label) and returns the per-configuration means
the leaderboard would show — accuracy and cost per query — so a benchmark can time the
strategies themselves and a test can check quality bars in seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from uisbench.meter import Meter
from uisbench.store.arrays import BankArrays
from uisbench.strategies.base import RunContext, Strategy, make_strategy


@dataclass
class Replay:
    label: str
    family: str
    upper_bound: bool
    accuracy: float
    flops: float  # mean per query; NaN when some model's size is unknown
    dollars: float
    samples: float
    correct: np.ndarray  # per test query, in stream order
    reward: np.ndarray | None = None
    extra: list[dict[str, Any]] = field(default_factory=list)


def replay(
    arrays: BankArrays,
    train: BankArrays,
    test_pos: np.ndarray,
    strategy: Strategy | str,
    seed: int = 0,
) -> Replay:
    """Run one configuration with one seed over the test queries; nothing is written."""
    strat = make_strategy(strategy) if isinstance(strategy, str) else strategy
    rng = np.random.default_rng([seed, 0x5EED])  # the runner's stream order
    stream = test_pos[rng.permutation(len(test_pos))]
    meter = Meter(arrays, seed=seed, stream=strat.label())
    ctx = RunContext(meter=meter, stream=stream, train=train, seed=seed)
    strat.fit(train, ctx)
    qs, hs, rs, extra = [], [], [], []
    for chunk in strat.run(ctx):
        qs.append(np.asarray(chunk.q))
        hs.append(np.asarray(chunk.handle))
        rs.append(None if chunk.reward is None else np.asarray(chunk.reward))
        extra.extend(chunk.extra or [{}] * len(chunk.q))
    q = np.concatenate(qs)
    _, correct = meter.resolve(np.concatenate(hs))
    L = meter.ledger
    return Replay(
        label=strat.label(),
        family=strat.family,
        upper_bound=bool(strat.upper_bound or meter.used_oracle),
        accuracy=float(correct.mean()),
        flops=float(L.flops[q].mean()),
        dollars=float(L.dollars[q].mean()),
        samples=float(L.samples[q].mean()),
        correct=correct,
        reward=None if any(r is None for r in rs) else np.concatenate(rs),
        extra=extra,
    )


def replay_seeds(
    arrays: BankArrays, train: BankArrays, test_pos: np.ndarray, spec: str, seeds: list[int]
) -> Replay:
    """Mean over seeds of one configuration (accuracy and costs averaged)."""
    runs = [replay(arrays, train, test_pos, spec, s) for s in seeds]
    first = runs[0]
    return Replay(
        label=first.label,
        family=first.family,
        upper_bound=any(r.upper_bound for r in runs),
        accuracy=float(np.mean([r.accuracy for r in runs])),
        flops=float(np.mean([r.flops for r in runs])),
        dollars=float(np.mean([r.dollars for r in runs])),
        samples=float(np.mean([r.samples for r in runs])),
        correct=np.mean([r.correct for r in runs], axis=0),
        reward=first.reward,
        extra=first.extra,
    )
