"""Paired comparison of two result sets: did accuracy drop or cost rise, beyond noise?

Runs are paired by (task, configuration) and then query by query, so each query is its own
control (its difficulty cancels). Per query, outcomes are averaged over a side's seeds first.

- Change in accuracy: mean over queries of (candidate − baseline); interval by a paired
  percentile bootstrap over queries (Efron & Tibshirani 1993, ch. 13: resample query indices,
  the same indices for both sides).
- McNemar's exact test for accuracy (McNemar 1947; exact form: a two-sided binomial test of the
  discordant pairs, b ~ Binomial(b + c, 1/2)). Pairs are (query, i-th seed of each side). With
  several seeds, which pairs are discordant depends on the query, but under the null (for each
  query the candidate's outcome has the baseline's distribution) each discordant pair is
  equally likely to go either way, independently given the queries, so the exact test stays
  valid and more seeds buy power.
- Change in mean cost, relative: mean(candidate cost) / mean(baseline cost) − 1, in the first
  unit both sides know for every query (FLOPs, then dollars, then tokens), with the same paired
  bootstrap.

Online learners (bandits such as UniScale) are a caveat: their decisions depend on each other
through the seed's whole trajectory, so a bootstrap over queries understates the run-to-run
spread of their mean cost; a gate on them compares like with like only with the same seeds.

A regression is *significant and larger than its tolerance*: for accuracy, McNemar's p below
the level and a drop larger than ``max_accuracy_drop`` (absolute); for cost, the bootstrap
interval entirely above zero and a rise larger than ``max_cost_increase`` (relative). The level
is family-wise: α is divided by the number of tests (Bonferroni), so a gate over many
configurations raises a false alarm with probability at most α.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy.stats import binomtest

from uisbench.errors import UisbenchError
from uisbench.results.export import ResultSet, RunOutcomes

COST_UNITS = ("flops", "dollars", "tokens")
BOOTSTRAP = 10_000
#: Bootstrap draws × queries held in memory at once (the draws are made in chunks).
CHUNK_CELLS = 4_000_000


@dataclass(frozen=True)
class Tolerances:
    max_accuracy_drop: float = 0.01
    max_cost_increase: float = 0.05
    alpha: float = 0.05


@dataclass
class PairedResult:
    """One (task, configuration) compared query by query."""

    task: str
    config: str
    n_queries: int
    seeds_baseline: int
    seeds_candidate: int
    acc_baseline: float
    acc_candidate: float
    d_acc: float
    d_acc_low: float
    d_acc_high: float
    improved: int  # pairs wrong in the baseline, right in the candidate
    worsened: int  # pairs right in the baseline, wrong in the candidate
    p_mcnemar: float
    cost_unit: str | None
    cost_baseline: float
    cost_candidate: float
    d_cost: float  # relative change of the mean cost
    d_cost_low: float
    d_cost_high: float
    accuracy_regression: bool = False
    cost_regression: bool = False

    @property
    def failed(self) -> bool:
        return self.accuracy_regression or self.cost_regression


@dataclass
class Comparison:
    bank: str
    digest: str
    tolerances: Tolerances
    level: float  # per-test level after the Bonferroni division
    rows: list[PairedResult]
    missing: list[tuple[str, str]]  # in the baseline, not in the candidate
    new: list[tuple[str, str]]  # in the candidate only

    @property
    def failed(self) -> bool:
        return bool(self.missing) or any(r.failed for r in self.rows)

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame([{**asdict(r), "failed": r.failed} for r in self.rows])


# ---------------------------------------------------------------- statistics
def mcnemar_exact(base: np.ndarray, cand: np.ndarray) -> tuple[int, int, float]:
    """(improved, worsened, two-sided p) of paired binary outcomes; p = 1 with no discordance."""
    improved = int(np.sum((base == 0) & (cand == 1)))
    worsened = int(np.sum((base == 1) & (cand == 0)))
    n = improved + worsened
    p = 1.0 if n == 0 else float(binomtest(improved, n, 0.5).pvalue)
    return improved, worsened, p


def paired_bootstrap(
    base: np.ndarray, cand: np.ndarray, level: float, n_boot: int = BOOTSTRAP, seed: int = 0
) -> tuple[tuple[float, float], tuple[float, float]]:
    """Percentile intervals (two-sided, coverage 1 − ``level``) of the change in mean
    accuracy and of the relative change in mean cost.

    ``base`` and ``cand`` are (queries, 2) arrays of per-query (accuracy, cost); every draw
    resamples query indices once for both sides (paired). Vectorised in chunks of draws.
    """
    n = len(base)
    rng = np.random.default_rng(seed)
    d_acc, d_cost = np.empty(n_boot), np.empty(n_boot)
    step = max(1, CHUNK_CELLS // max(n, 1))
    for start in range(0, n_boot, step):
        stop = min(n_boot, start + step)
        idx = rng.integers(0, n, size=(stop - start, n))
        mb, mc = base[idx].mean(axis=1), cand[idx].mean(axis=1)  # (draws, 2)
        d_acc[start:stop] = mc[:, 0] - mb[:, 0]
        with np.errstate(divide="ignore", invalid="ignore"):
            d_cost[start:stop] = mc[:, 1] / mb[:, 1] - 1.0
    q = [100 * level / 2, 100 * (1 - level / 2)]
    acc_lo, acc_hi = np.percentile(d_acc, q)
    cost_lo, cost_hi = np.percentile(d_cost, q) if np.isfinite(d_cost).all() else (np.nan,) * 2
    return (float(acc_lo), float(acc_hi)), (float(cost_lo), float(cost_hi))


# ---------------------------------------------------------------- pairing
def _groups(results: ResultSet) -> dict[tuple[str, str], list[RunOutcomes]]:
    out: dict[tuple[str, str], list[RunOutcomes]] = {}
    for run in sorted(results.runs, key=lambda r: r.seed):
        out.setdefault((run.task, run.config), []).append(run)
    return out


def _matrix(runs: list[RunOutcomes], keys: list[str], column: str) -> np.ndarray:
    """(queries, seeds) values of ``column`` in the order of ``keys``."""
    return np.column_stack(
        [r.queries.set_index("query").loc[keys, column].to_numpy(float) for r in runs]
    )


def _cost_unit(base: list[RunOutcomes], cand: list[RunOutcomes], keys: list[str]) -> str | None:
    for unit in COST_UNITS:
        if all(not np.isnan(_matrix(side, keys, unit)).any() for side in (base, cand)):
            return unit
    return None


def pair_runs(
    key: tuple[str, str],
    base: list[RunOutcomes],
    cand: list[RunOutcomes],
    level: float,
    tol: Tolerances,
    seed: int = 0,
) -> PairedResult:
    """Compare one configuration's baseline and candidate runs query by query."""
    keys = sorted(set.intersection(*(set(r.queries["query"]) for r in base + cand)))
    if not keys:
        raise UisbenchError(f"{key[0]} {key[1]}: baseline and candidate share no query")
    cb, cc = _matrix(base, keys, "correct"), _matrix(cand, keys, "correct")
    m = min(cb.shape[1], cc.shape[1])
    improved, worsened, p = mcnemar_exact(cb[:, :m], cc[:, :m])
    unit = _cost_unit(base, cand, keys)
    zeros = np.zeros(len(keys))
    kb = _matrix(base, keys, unit).mean(axis=1) if unit else zeros
    kc = _matrix(cand, keys, unit).mean(axis=1) if unit else zeros
    pb, pc = np.column_stack([cb.mean(axis=1), kb]), np.column_stack([cc.mean(axis=1), kc])
    (alo, ahi), (clo, chi) = paired_bootstrap(pb, pc, level, seed=seed)
    acc_b, acc_c = float(pb[:, 0].mean()), float(pc[:, 0].mean())
    cost_b, cost_c = float(kb.mean()), float(kc.mean())
    d_cost = cost_c / cost_b - 1.0 if unit and cost_b > 0 else float("nan")
    res = PairedResult(
        *key,
        n_queries=len(keys),
        seeds_baseline=cb.shape[1],
        seeds_candidate=cc.shape[1],
        acc_baseline=acc_b,
        acc_candidate=acc_c,
        d_acc=acc_c - acc_b,
        d_acc_low=alo,
        d_acc_high=ahi,
        improved=improved,
        worsened=worsened,
        p_mcnemar=p,
        cost_unit=unit,
        cost_baseline=cost_b if unit else float("nan"),
        cost_candidate=cost_c if unit else float("nan"),
        d_cost=d_cost,
        d_cost_low=clo if unit else float("nan"),
        d_cost_high=chi if unit else float("nan"),
    )
    res.accuracy_regression = bool(p < level and -res.d_acc > tol.max_accuracy_drop)
    res.cost_regression = bool(res.d_cost_low > 0 and res.d_cost > tol.max_cost_increase)
    return res


def compare(
    baseline: ResultSet, candidate: ResultSet, tol: Tolerances | None = None, seed: int = 0
) -> Comparison:
    """Pair every (task, configuration) of the baseline with the candidate's."""
    tol = tol or Tolerances()
    if baseline.digest != candidate.digest:
        raise UisbenchError(
            f"the baseline was made on bank {baseline.bank!r} ({baseline.digest}) but the "
            f"candidate on {candidate.bank!r} ({candidate.digest}): results on different "
            "banks cannot be paired; re-make the baseline on this bank"
        )
    if not 0 < tol.alpha < 1:
        raise UisbenchError("--alpha must lie between 0 and 1")
    gb, gc = _groups(baseline), _groups(candidate)
    shared = [k for k in gb if k in gc]
    level = tol.alpha / max(1, 2 * len(shared))  # two tests per configuration
    rows = [pair_runs(k, gb[k], gc[k], level, tol, seed) for k in shared]
    return Comparison(
        bank=baseline.bank,
        digest=baseline.digest,
        tolerances=tol,
        level=level,
        rows=rows,
        missing=[k for k in gb if k not in gc],
        new=[k for k in gc if k not in gb],
    )
