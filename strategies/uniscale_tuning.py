"""UniScale's settings chosen by replaying the bandit on the training split, never the test split.

UniScale (arXiv 2605.30898) leaves three choices open that decide how well it does: how a cost
becomes the reward's ``1 − normalised cost`` term, the exploration width α, and the context's
dimension. This module replays LinUCB on the training split — exactly the bandit of
:mod:`.uniscale`, with every arm's outcome on every training query simulated from the bank
(:func:`.uniscale.simulate_arm`) — and picks them:

* the training queries are split in two halves (seeded, fixed): the bandit is warm-started on
  the first and plays the second online, in a seeded order, with batch B as in the real run;
* **normalisation** (one per pool, shared by every cost weight so the front is one family):
  the one whose sweep of cost weights reaches the larger area under its accuracy-vs-log-cost
  staircase on the played half, over the cost range shared by the candidates;
* **α and dimension** (per cost weight): the pair with the highest mean reward on the played
  half, from ``ALPHAS`` × ``DIMS``.

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
DIMS = (4, 8, 16)
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
    """A fixed seeded split of the training queries into (warm-start half, played half)."""
    perm = np.random.default_rng(SPLIT_SEED).permutation(n)
    return np.sort(perm[: n // 2]), perm[n // 2 :]


def replay_on_train(
    out: Outcomes,
    context: Callable[[int], tuple[np.ndarray, np.ndarray]],
    weights: tuple[float, float, float],
    norm: str,
    alpha: float,
    dim: int,
    batch: int,
) -> tuple[float, float, float]:
    """(mean reward, accuracy, mean cost) of the bandit on the played half.

    ``context(dim)`` gives the (warm-start half, played half) context rows for ``dim``.
    """
    fit, held = split_halves(len(out.correct))
    R = out.rewards(weights, norm)
    x_fit, x_play = context(dim)
    A_inv, b = warm_start(x_fit, R[fit])
    a = play(x_play, np.nan_to_num(R[held], nan=-1e9), A_inv, b, alpha, batch)
    rows = held
    return (
        float(np.nanmean(R[rows, a])),
        float(np.nanmean(out.correct[rows, a])),
        float(np.nanmean(out.cost[rows, a])),
    )


def choose_norm(runs: dict[str, list[tuple[float, float]]]) -> tuple[str, dict[str, float]]:
    """The normalisation whose (cost, accuracy) sweep has the largest staircase area."""
    costs = [c for pts in runs.values() for c, _ in pts if c > 0]
    lo, hi = min(costs), max(costs)
    area = {
        norm: front_log_area(np.array([c for c, _ in pts]), np.array([a for _, a in pts]), lo, hi)
        for norm, pts in runs.items()
    }
    return max(area, key=lambda n: (area[n], -NORMS.index(n))), area
