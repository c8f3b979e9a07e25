"""Budget-matched comparison with paired bootstrap intervals.

A leaderboard that ranks by one area (AIQ) rewards sweep density and the dear end of the cost
axis. This module asks the question a reader has instead: *at the budget of each single model,
how accurate is each family's hull, and is the difference real?* Every figure is recomputed on
bootstrap resamples of the test queries, the same resample for every configuration (paired), so
an interval of a difference reflects the queries, not two independent noises. Costs are held at
their means over all queries (they vary far less between resamples than accuracy does).

A rank claim ("family F is best at budget B") is made only where the paired interval of F minus
the runner-up excludes zero; RouteLLM's APGR and CPT and the cost to match the best single model
get percentile intervals the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from uisbench.results.pareto import apgr, cost_to_match, cpt, hull_value, nondecreasing_hull

N_BOOT = 500
LEVEL = 0.95
CHUNK = 64  # bootstrap resamples per matrix product (bounds memory on large banks)


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


def hull_at(cost: np.ndarray, accuracy: np.ndarray, budgets: np.ndarray) -> np.ndarray:
    """Accuracy a set of configurations' hull reaches at each budget (0 below its cheapest)."""
    hc, hq = nondecreasing_hull(cost, accuracy)
    return hull_value(hc, hq, budgets)


def budget_table(
    res: Resampled,
    cost: pd.Series,
    groups: dict[str, list[str]],
    singles: list[str],
) -> pd.DataFrame:
    """Per (budget = a single model's cost, group): the group's hull accuracy there (NaN where
    the budget is below the group's cheapest configuration: it cannot spend that little), the
    paired difference to that single model with its interval, and the rank claim.

    At each budget the candidates are the groups and the single model itself; the most accurate
    is claimed best only if its paired interval against the runner-up excludes zero.
    ``cost``: mean cost per query by configuration label; ``groups``: label lists per family.
    """
    budgets = cost[singles].to_numpy(float)
    s_idx = res.index(singles)
    at_obs, at_boot = {}, {}
    for name, labels in groups.items():
        idx = res.index(labels)
        c = cost[labels].to_numpy(float)
        reach = np.where(budgets >= c.min(), 1.0, np.nan)
        at_obs[name] = hull_at(c, res.observed[idx], budgets) * reach
        at_boot[name] = np.stack([hull_at(c, b[idx], budgets) for b in res.boot]) * reach
    rows = []
    for j, single in enumerate(singles):
        base = res.boot[:, s_idx[j]]
        for name in groups:
            lo, hi = interval(at_boot[name][:, j] - base)
            acc, ref = at_obs[name][j], res.observed[s_idx[j]]
            rows.append(
                dict(
                    budget_of=single,
                    budget=budgets[j],
                    group=name,
                    accuracy=acc,
                    single_accuracy=ref,
                    gain=acc - ref,
                    gain_low=lo,
                    gain_high=hi,
                )
            )
    table = pd.DataFrame(rows)
    table["best"] = False
    table["claim"] = ""
    for j, single in enumerate(singles):
        cands = {n: (at_obs[n][j], at_boot[n][:, j]) for n in groups if np.isfinite(at_obs[n][j])}
        cands[single] = (res.observed[s_idx[j]], res.boot[:, s_idx[j]])
        order = sorted(cands, key=lambda n: -cands[n][0])
        if order[0] == single or len(order) < 2:
            continue
        first, second = order[0], order[1]
        lo, hi = interval(cands[first][1] - cands[second][1])
        row = table.index[(table["budget_of"] == single) & (table["group"] == first)]
        table.loc[row, "best"] = lo > 0
        table.loc[row, "claim"] = (
            f"best at this budget (vs {second}: +{lo:.3f} to +{hi:.3f})"
            if lo > 0
            else f"not distinguishable from {second} (paired 95% interval {lo:+.3f} to {hi:+.3f})"
        )
    return table


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

    def metrics(acc: np.ndarray) -> list[float]:
        wk, st = (cw, acc[w]), (cs, acc[s])
        q = acc[idx]
        match = cost_to_match(c, q, acc[s])
        return [apgr(c, q, wk, st), cpt(c, q, wk, st, 0.5), cpt(c, q, wk, st, 0.8), match]

    names = ("apgr", "cpt50", "cpt80", "match")
    observed = metrics(res.observed)
    boot = np.array([metrics(b) for b in res.boot])
    out: dict[str, float] = {}
    for i, name in enumerate(names):
        lo, hi = interval(boot[:, i])
        out[name], out[f"{name}_low"], out[f"{name}_high"] = observed[i], lo, hi
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
    budget = budget_table(res, cost, groups, list(single["config_label"])) if groups else None
    weak = single.loc[single["accuracy"].idxmin(), "config_label"]
    strong = single.loc[single["accuracy"].idxmax(), "config_label"]
    rows = []
    if cost[strong] > cost[weak]:
        for name, g in ok.groupby("strategy", sort=True):
            row = {"strategy": name}
            row.update(curve_intervals(res, cost, list(g["config_label"]), weak, strong))
            rows.append(row)
    return (budget if budget is not None else pd.DataFrame()), pd.DataFrame(rows)
