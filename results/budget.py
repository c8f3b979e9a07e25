"""Budget-matched comparison: each family against each single model at that model's cost.

A leaderboard that ranks by one area (AIQ) rewards sweep density and the dear end of the cost
axis. This module asks the question a reader has instead: *at the budget of each single model,
how accurate is each family, and is the difference real?* Three rules keep the answer honest:

* **Selection off the scored queries.** A family's hull at a budget is the best of dozens of
  configurations; chosen on the queries it is then scored on, it is the luckiest of them. The
  mixture that represents the family is chosen on one random half of the test queries and
  scored on the other, both ways, over :data:`~uisbench.results.crossfit.HALVINGS` seeded
  halvings (:mod:`.crossfit`; runs hold no training-split results to select on). The
  in-sample figure is kept beside it (``accuracy_in_sample``) to show the difference.
* **Multiplicity.** A "best at this budget" claim is tested against every rival at that
  budget (paired sign-flip randomisation test per query, :func:`sign_flip_p`) and the
  p-values are Holm-corrected over every (budget, family) compared (:func:`holm`).
* **Reach within a tolerance.** Configurations that play the same model draw other samples
  than the single model, so their costs differ by a few percent by chance: a family whose
  cheapest configuration costs at most :data:`REACH_TOLERANCE` more than the budget reaches it
  and is scored at that cheapest cost.

Intervals are percentile intervals of the paired bootstrap over queries (the same resample for
every configuration). Costs are held at their means over all queries (they vary far less between
resamples than accuracy does). RouteLLM's APGR and CPT and the cost to match the best single
model get percentile intervals the same way (:func:`curve_intervals`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from uisbench.results.crossfit import HALVINGS, crossfit, half_accuracy, halvings, in_sample
from uisbench.results.pareto import apgr, cost_to_match, cpt

N_BOOT = 500
LEVEL = 0.95
CHUNK = 64  # bootstrap resamples per matrix product (bounds memory on large banks)
N_FLIPS = 10_000  # random sign flips per paired randomisation test
ALPHA = 0.05  # family-wise error rate of the "best at this budget" claims (Holm)
#: A family reaches a budget if its cheapest configuration costs at most this much more.
REACH_TOLERANCE = 0.02
#: How the verdicts are made, in one sentence for the page.
METHOD = (
    f"Each family's configuration (or mixture of two) at a budget is chosen on one random half "
    f"of the test queries and scored on the other, both ways, averaged over {HALVINGS} seeded "
    f"halvings (no run holds training-split results to choose on); the gain's 95% interval is a "
    f"paired bootstrap over queries; “best at this budget” needs a Holm-adjusted p ≤ {ALPHA} "
    f"against every rival at that budget (paired sign-flip randomisation test, {N_FLIPS:,} "
    f"flips), corrected over every budget × family compared; a family reaches a budget if its "
    f"cheapest configuration costs at most {REACH_TOLERANCE:.0%} more (it is then scored at "
    f"that cost)."
)


@dataclass
class Resampled:
    """Accuracy of every configuration on the observed queries and on each resample."""

    labels: list[str]  # configurations, the rows of ``boot``'s second axis
    observed: np.ndarray  # (configs,)
    boot: np.ndarray  # (n_boot, configs)

    def index(self, labels: list[str]) -> np.ndarray:
        pos = {c: i for i, c in enumerate(self.labels)}
        return np.array([pos[c] for c in labels], dtype=np.int64)


def resample(per_query: pd.DataFrame, n_boot: int = N_BOOT, seed: int = 0) -> Resampled:
    """Paired bootstrap of accuracy from a (configuration × query) table of per-query accuracy
    (mean over seeds); a query a configuration lacks counts as missing for it only."""
    acc = per_query.to_numpy(dtype=float)
    held = np.isfinite(acc)
    a = np.where(held, acc, 0.0)
    rng = np.random.default_rng(seed)
    n_q = acc.shape[1]
    boot = np.empty((n_boot, acc.shape[0]))
    for lo in range(0, n_boot, CHUNK):
        hi = min(n_boot, lo + CHUNK)
        w = rng.multinomial(n_q, np.full(n_q, 1.0 / n_q), size=hi - lo).astype(float)
        with np.errstate(invalid="ignore", divide="ignore"):
            boot[lo:hi] = (w @ a.T) / (w @ held.T)
    with np.errstate(invalid="ignore", divide="ignore"):
        observed = a.sum(axis=1) / held.sum(axis=1)
    return Resampled(list(per_query.index), observed, boot)


def interval(values: np.ndarray) -> tuple[float, float]:
    """Percentile interval of bootstrap values (NaN resamples are dropped)."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return (np.nan, np.nan)
    alpha = (1 - LEVEL) / 2
    return float(np.quantile(v, alpha)), float(np.quantile(v, 1 - alpha))


def holm(p: np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p-values (family-wise error control for any dependence):
    the i-th smallest of m is multiplied by m − i + 1, then made non-decreasing, capped at 1."""
    p = np.asarray(p, dtype=float)
    order = np.argsort(p, kind="stable")
    m = len(p)
    adj = np.minimum(1.0, np.maximum.accumulate(p[order] * (m - np.arange(m))))
    out = np.empty(m)
    out[order] = adj
    return out


def sign_flip_p(diffs: np.ndarray, n_flips: int = N_FLIPS, seed: int = 0) -> np.ndarray:
    """Paired randomisation test of each row of ``diffs`` (tests × queries, per-query
    differences): one-sided p-value of mean > 0 under the null that each query's difference is
    as likely negative as positive. Signs are flipped at random per query (the same flips for
    every row), p = (1 + #{flipped sum ≥ observed}) / (1 + n_flips), which is a valid p-value
    at any number of flips; all-zero differences give p = 1."""
    return sign_flip_both(diffs, n_flips, seed)[0]


def sign_flip_both(
    diffs: np.ndarray, n_flips: int = N_FLIPS, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`sign_flip_p` of ``diffs`` and of ``-diffs`` from the same flips (one pass)."""
    d = np.atleast_2d(np.asarray(diffs, dtype=float))
    observed = d.sum(axis=1)
    tol = 1e-9 * np.maximum(1.0, np.abs(d).sum(axis=1))
    rng = np.random.default_rng(seed)
    up = np.zeros(len(d), dtype=np.int64)
    down = np.zeros(len(d), dtype=np.int64)
    step = max(1, (1 << 21) // max(1, d.shape[1]))
    for lo in range(0, n_flips, step):
        signs = rng.integers(0, 2, size=(min(step, n_flips - lo), d.shape[1])) * 2.0 - 1.0
        flipped = signs @ d.T
        up += (flipped >= observed - tol).sum(axis=0)
        down += (flipped <= observed + tol).sum(axis=0)
    return (1.0 + up) / (1.0 + n_flips), (1.0 + down) / (1.0 + n_flips)


@dataclass
class _Cell:
    """One family at one budget: where it is scored and its per-query accuracies."""

    reach: str  # "yes", "within tolerance" or "no"
    spend: float  # the budget it is scored at (its cheapest cost when within tolerance)
    excess: float  # its cheapest configuration's cost over the budget, minus 1
    crossfit: np.ndarray | None  # per query, chosen on other queries
    in_sample: np.ndarray | None  # per query, chosen on all of them (optimistic)


def _cell(
    acc: np.ndarray, cost: np.ndarray, budget: float, masks: np.ndarray, half_acc: np.ndarray
) -> _Cell:
    cheapest = float(cost.min())
    excess = cheapest / budget - 1.0 if budget > 0 else np.inf
    if cheapest <= budget:
        reach, spend = "yes", budget
    elif excess <= REACH_TOLERANCE:
        reach, spend = "within tolerance", cheapest
    else:
        return _Cell("no", np.nan, excess, None, None)
    chosen_off = crossfit(acc, cost, spend, masks, half_acc)
    return _Cell(reach, spend, excess, chosen_off, in_sample(acc, cost, spend))


def _mean(x: np.ndarray | None) -> float:
    return float(x.mean()) if x is not None else np.nan


def budget_table(
    per_query: pd.DataFrame,
    cost: pd.Series,
    groups: dict[str, list[str]],
    singles: list[str],
    seed: int = 0,
) -> pd.DataFrame:
    """Per (budget = a single model's cost, group): the group's cross-fitted accuracy there
    (:mod:`.crossfit`; NaN where it cannot spend that little, within :data:`REACH_TOLERANCE`),
    the paired gain over that single model with a bootstrap interval and a Holm-adjusted
    randomisation p-value, and the "best at this budget" claim (see :func:`_claims`).

    ``per_query``: (configuration × query) accuracy, averaged over seeds, indexed by label;
    queries some configuration lacks are left out, so that every comparison is paired.
    ``cost``: mean cost per query by label; ``groups``: label lists per family.
    """
    labels = list(dict.fromkeys([*singles, *(c for g in groups.values() for c in g)]))
    table = per_query.loc[labels]
    table = table.loc[:, table.notna().all(axis=0)]
    acc = table.to_numpy(dtype=float)
    n_q = acc.shape[1]
    if n_q < 2:  # no query (or one) that every configuration holds: nothing to pair or halve
        return pd.DataFrame()
    masks = halvings(n_q, seed=seed)
    half_acc = half_accuracy(acc, masks)
    weights = np.random.default_rng(seed).multinomial(n_q, np.full(n_q, 1.0 / n_q), size=N_BOOT)
    pos = {c: i for i, c in enumerate(labels)}
    rows, cells = [], {}
    for single in singles:
        base = acc[pos[single]]
        budget = float(cost[single])
        for name, members in groups.items():
            idx = [pos[c] for c in members]
            c = cost[members].to_numpy(float)
            cell = _cell(acc[idx], c, budget, masks, half_acc[:, idx])
            cells[single, name] = cell
            gain = cell.crossfit - base if cell.crossfit is not None else None
            lo, hi = interval(weights @ gain / n_q) if gain is not None else (np.nan, np.nan)
            rows.append(
                dict(
                    budget_of=single,
                    budget=budget,
                    group=name,
                    reach=cell.reach,
                    cost_excess=cell.excess,
                    spend=cell.spend,
                    accuracy=_mean(cell.crossfit),
                    accuracy_in_sample=_mean(cell.in_sample),
                    single_accuracy=float(base.mean()),
                    gain=_mean(gain),
                    gain_low=lo,
                    gain_high=hi,
                    gain_in_sample=_mean(cell.in_sample) - float(base.mean()),
                )
            )
    out = pd.DataFrame(rows)
    return _claims(out, cells, {s: acc[pos[s]] for s in singles}, seed)


def _claims(
    out: pd.DataFrame,
    cells: dict[tuple[str, str], _Cell],
    singles: dict[str, np.ndarray],
    seed: int,
) -> pd.DataFrame:
    """Holm-corrected p-values of the gain over the single model (two-sided) and of "best at
    this budget", over every (budget, family) the family reaches.

    "F is best at B" is an intersection of one-sided hypotheses (F beats each other family
    reaching B and the single model), so its p-value is the largest of those paired
    randomisation p-values; Holm then corrects over budgets × families. A claim is made where
    the adjusted p-value is at most :data:`ALPHA`.
    """
    keys = [(r.budget_of, r.group) for r in out.itertuples()]
    reached = [k for k in keys if cells[k].crossfit is not None]
    diffs, pairs = [], []
    for single, name in reached:
        mine = cells[single, name].crossfit
        rivals = {s_name: c.crossfit for (b, s_name), c in cells.items() if b == single}
        rivals = {n: x for n, x in rivals.items() if x is not None and n != name}
        rivals[single] = singles[single]
        for rival, x in rivals.items():
            pairs.append((single, name, rival))
            diffs.append(mine - x)
    p_one, p_neg = sign_flip_both(np.array(diffs), seed=seed) if diffs else ([], [])
    best_p, best_rival, gain_p = {}, {}, {}
    for (single, name, rival), p, q in zip(pairs, p_one, p_neg):
        if rival == single:
            gain_p[single, name] = min(1.0, 2 * min(p, q))
        if p >= best_p.get((single, name), -1.0):
            best_p[single, name], best_rival[single, name] = p, rival
    adj_best = dict(zip(reached, holm(np.array([best_p[k] for k in reached]))))
    adj_gain = dict(zip(reached, holm(np.array([gain_p[k] for k in reached]))))
    out["p_gain"] = [gain_p.get(k, np.nan) for k in keys]
    out["p_gain_holm"] = [adj_gain.get(k, np.nan) for k in keys]
    out["p_best"] = [best_p.get(k, np.nan) for k in keys]
    out["p_best_holm"] = [adj_best.get(k, np.nan) for k in keys]
    out["best"] = out["p_best_holm"] <= ALPHA
    top = out.loc[out["accuracy"].notna()].groupby("budget_of")["accuracy"].idxmax()
    out["claim"] = [
        _claim_text(r, best_rival.get(k), len(reached), i in set(top))
        for i, (k, r) in enumerate(zip(keys, out.itertuples()))
    ]
    return out


def _claim_text(r, rival: str | None, m: int, top: bool) -> str:
    """The verdict cell: whether the family reaches the budget, then (for the most accurate
    family there, if it beats the model) the claim or the test that withholds it."""
    if r.reach == "no":
        return f"cannot spend this little (cheapest configuration +{r.cost_excess:.1%})"
    parts = []
    if r.reach == "within tolerance":
        parts.append(f"reached within tolerance (cheapest configuration +{r.cost_excess:.1%})")
    if top and r.accuracy > r.single_accuracy:
        test = f"Holm-adjusted p = {r.p_best_holm:.2g} over {m} budget × family tests"
        parts.append(
            f"best at this budget ({test})"
            if r.best
            else f"not shown best: {test}, closest rival {rival}"
        )
    return "; ".join(parts)


def curve_intervals(
    res: Resampled,
    cost: pd.Series,
    labels: list[str],
    weak: str,
    strong: str,
) -> dict[str, float]:
    """APGR, CPT(50 %), CPT(80 %) and the cost to match ``strong`` for one strategy's
    configurations, each with a paired-bootstrap percentile interval."""
    idx, w, s = res.index(labels), res.index([weak])[0], res.index([strong])[0]
    c = cost[labels].to_numpy(float)
    cw, cs = float(cost[weak]), float(cost[strong])
    rows = np.vstack([res.observed, res.boot])
    if np.isfinite(c).all() and np.isfinite(rows[:, [*idx, w, s]]).all():
        table = curve_metrics(c, rows[:, idx], cw, cs, rows[:, w], rows[:, s])
    else:  # some resample lacks a configuration: point by point, as pareto drops it
        table = np.array([_curve_metrics_one(c, r[idx], cw, cs, r[w], r[s]) for r in rows])
    names = ("apgr", "cpt50", "cpt80", "match")
    out: dict[str, float] = {}
    for i, name in enumerate(names):
        lo, hi = interval(table[1:, i])
        out[name], out[f"{name}_low"], out[f"{name}_high"] = float(table[0, i]), lo, hi
    return out


def _curve_metrics_one(
    c: np.ndarray, q: np.ndarray, cw: float, cs: float, qw: float, qs: float
) -> list[float]:
    """APGR, CPT(50 %), CPT(80 %) and cost to match for one row, by :mod:`.pareto`."""
    wk, st = (cw, qw), (cs, qs)
    pgr_at = [apgr(c, q, wk, st), cpt(c, q, wk, st, 0.5), cpt(c, q, wk, st, 0.8)]
    return [*pgr_at, cost_to_match(c, q, qs)]


def curve_metrics(
    c: np.ndarray, q: np.ndarray, cw: float, cs: float, qw: np.ndarray, qs: np.ndarray
) -> np.ndarray:
    """:func:`_curve_metrics_one` for many rows of accuracies ``q`` (rows × configurations,
    with the weak and strong models' accuracies ``qw``/``qs`` per row) at fixed finite costs:
    the curve's abscissae (shares of the cost gap) are the same on every row, so APGR's
    interpolation is one matrix (built by :func:`numpy.interp` on unit vectors, the same rule
    as :func:`uisbench.results.pareto.apgr`) and CPT a first crossing per row."""
    n = len(q)
    out = np.full((n, 4), np.nan)
    hit = q >= qs[:, None] - 1e-12
    out[:, 3] = np.where(hit.any(axis=1), np.where(hit, c[None, :], np.inf).min(axis=1), np.nan)
    valid = np.isfinite(qw) & np.isfinite(qs) & (qs > qw)
    if not (np.isfinite([cw, cs]).all() and cs > cw) or not valid.any():
        return out
    share = (np.append(cw, c) - cw) / (cs - cw)
    order = np.argsort(share, kind="stable")
    share = share[order]
    with np.errstate(invalid="ignore", divide="ignore"):
        pgr = ((np.c_[qw, q] - qw[:, None]) / (qs - qw)[:, None])[:, order]
    xs = np.unique(np.concatenate(([0.0, 1.0], share[(share > 0) & (share < 1)])))
    basis = np.stack([np.interp(xs, share, e) for e in np.eye(len(share))])
    ys = pgr @ basis
    out[:, 0] = np.sum(np.diff(xs) * (ys[:, 1:] + ys[:, :-1]) / 2.0, axis=1)
    for col, target in ((1, 0.5), (2, 0.8)):
        reach = pgr >= target - 1e-12
        i = np.argmax(reach, axis=1)
        prev = np.maximum(i - 1, 0)
        rows = np.arange(n)
        p_i, p_prev = pgr[rows, i], pgr[rows, prev]
        flat = (i == 0) | (p_i == p_prev)
        with np.errstate(invalid="ignore", divide="ignore"):
            frac = (target - p_prev) / (p_i - p_prev)
            value = np.where(flat, share[i], share[prev] + frac * (share[i] - share[prev]))
        out[:, col] = np.where(reach.any(axis=1), value, np.nan)
    out[~valid, :3] = np.nan
    return out


def board_verdicts(
    configs: pd.DataFrame, per_query: pd.DataFrame, unit: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The budget table (families vs each single model in ``unit``) and, per strategy, RouteLLM's
    APGR and CPT(50 %/80 %) and the cost to match the best single model with intervals.

    ``configs``: a board's configurations (rows of the summary, with ``front`` and ``family``);
    ``per_query``: their per-query accuracy, indexed by configuration label.
    """
    ok = configs[np.isfinite(configs[unit].to_numpy(float)) & ~configs["upper_bound"]]
    ok = ok[ok["config_label"].isin(per_query.index)]
    single = ok[ok["strategy"] == "single"].sort_values(unit)
    if single.empty or per_query.empty:
        return pd.DataFrame(), pd.DataFrame()
    res = resample(per_query.loc[ok["config_label"]])
    cost = ok.set_index("config_label")[unit].astype(float)
    fronted = ok[~ok["front"].isin(["", "single models"])]
    groups = {f: list(g["config_label"]) for f, g in fronted.groupby("family", sort=True)}
    singles = list(single["config_label"])
    budget = budget_table(per_query, cost, groups, singles) if groups else None
    weak = single.loc[single["accuracy"].idxmin(), "config_label"]
    strong = single.loc[single["accuracy"].idxmax(), "config_label"]
    rows = []
    if cost[strong] > cost[weak]:
        for name, g in ok.groupby("strategy", sort=True):
            row = {"strategy": name}
            row.update(curve_intervals(res, cost, list(g["config_label"]), weak, strong))
            rows.append(row)
    return (budget if budget is not None else pd.DataFrame()), pd.DataFrame(rows)
