"""The leaderboard: per task, strategies ranked by AIQ with the other metrics beside it.

Built on :func:`uisbench.results.aggregate.summarize` (one row per configuration: accuracy with a
bootstrap CI, mean costs per query). This module adds the geometry of :mod:`.pareto` per task:
which configurations are on their family's Pareto front, each strategy's and family's AIQ, APGR
between the weakest and strongest single model, and the cost at which a strategy first matches
the best single model. It also turns online strategies' decision rewards into regret curves.

Everything here is computed per (task, bank): AIQ's cost range is shared by every strategy on
that task, so the figures of one table are comparable with each other and not across tasks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Engine, select

from uisbench.costs import PARAM_CALLS_NOTE
from uisbench.results.aggregate import (
    load_runs,
    per_query_accuracy,
    read_packed_outcomes,
    run_stats,
    summarize_db,
)
from uisbench.results.budget import board_verdicts
from uisbench.results.oracle import ORACLE_NOTE, oracle_fronts
from uisbench.results.pareto import aiq, aiq_log, apgr, cost_to_match, pareto_front
from uisbench.store import schema

#: Cost units a board is computed in, in order of preference for ranking, with their labels.
UNITS: dict[str, str] = {
    "flops": "FLOPs per query",
    "dollars": "USD per query",
    "tokens": "tokens per query",
    "param_calls": "parameter-weighted calls per query",
}
SINGLE = "single"  # the strategy whose configurations are the single models


@dataclass
class TaskBoard:
    """Everything the site shows about one task on one bank."""

    task: str
    bank: str
    synthetic: bool
    unit: str  # the cost unit AIQ ranks by: FLOPs when every configuration has them
    configs: pd.DataFrame  # one row per configuration
    strategies: pd.DataFrame  # one row per strategy, ranked
    families: pd.DataFrame  # one row per family, ranked
    fronts: pd.DataFrame  # Pareto-front points per family and unit
    best_single: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)
    prefix_cache: str = ""  # the runs' prefix-cache setting, shown beside every FLOPs figure
    #: Per (single model's cost as budget, family): accuracy with the configuration chosen on
    #: other queries (cross-fitted), paired gain, reach and the Holm-corrected claim.
    budget: pd.DataFrame = field(default_factory=pd.DataFrame)
    #: Per strategy: APGR, CPT(50 %), CPT(80 %), cost to match, each with a 95 % interval.
    curves: pd.DataFrame = field(default_factory=pd.DataFrame)
    oracle_front: pd.DataFrame = field(default_factory=pd.DataFrame)  # points in ``unit``


def kind_of(row: pd.Series) -> str:
    """The marker a configuration gets on the plot."""
    if row["upper_bound"]:
        return "oracle (upper bound)"
    if row["strategy"] == SINGLE:
        return "single model"
    if row["strategy"] == "random":
        return "random mix"
    return "strategy"


def front_group(row: pd.Series) -> str:
    """Which front a configuration belongs to: its family's, with the single models apart
    (their hull is the no-strategy baseline); random mixes and upper bounds get none."""
    if row["upper_bound"] or (row["family"] == "reference" and row["strategy"] != SINGLE):
        return ""
    return "single models" if row["strategy"] == SINGLE else row["family"]


def _units_present(configs: pd.DataFrame) -> list[str]:
    return [u for u in UNITS if configs[u].notna().any()]


def _primary_unit(configs: pd.DataFrame) -> str:
    ranked = configs[~configs["upper_bound"]]
    for u in UNITS:
        if len(ranked) and ranked[u].notna().all():
            return u
    present = _units_present(configs)
    return present[0] if present else "tokens"


def _group_metrics(
    g: pd.DataFrame, ranges: dict[str, tuple[float, float]], single: pd.DataFrame
) -> dict[str, Any]:
    """AIQ, APGR and cost to match the best single model for one group of configurations."""
    best = g.loc[g["accuracy"].idxmax()]
    row: dict[str, Any] = {
        "configs": len(g),
        "best_accuracy": float(best["accuracy"]),
        "best_ci_low": float(best["ci_low"]),
        "best_ci_high": float(best["ci_high"]),
        "best_config": best["config_label"],
        "n_queries": int(g["n_queries"].max()),
        "n_seeds": int(g["n_seeds"].max()),
    }
    for u in UNITS:
        cost, acc = g[u].to_numpy(float), g["accuracy"].to_numpy(float)
        known = bool(np.isfinite(cost).all())
        lo, hi = ranges.get(u, (np.nan, np.nan))
        row[f"aiq_{u}"] = aiq(cost, acc, lo, hi) if known and np.isfinite(lo) else np.nan
        row[f"aiq_log_{u}"] = aiq_log(cost, acc, lo, hi) if known and np.isfinite(lo) else np.nan
        row[f"min_{u}"] = float(np.nanmin(cost)) if np.isfinite(cost).any() else np.nan
        s_ok = single[np.isfinite(single[u].to_numpy(float))]
        apgr_v = match = ratio = np.nan
        if known and len(s_ok) >= 2:
            weak = s_ok.loc[s_ok["accuracy"].idxmin()]
            strong = s_ok.loc[s_ok["accuracy"].idxmax()]
            apgr_v = apgr(cost, acc, (weak[u], weak["accuracy"]), (strong[u], strong["accuracy"]))
        if known and len(s_ok):
            strong = s_ok.loc[s_ok["accuracy"].idxmax()]
            match = cost_to_match(cost, acc, float(strong["accuracy"]))
            ratio = match / strong[u] if strong[u] > 0 else np.nan
        row[f"apgr_{u}"] = apgr_v
        row[f"match_{u}"] = match
        row[f"match_ratio_{u}"] = ratio
    return row


def _rank(table: pd.DataFrame, unit: str) -> pd.DataFrame:
    if table.empty:
        return table
    key = table[f"aiq_{unit}"].fillna(-np.inf).where(~table["upper_bound"], -np.inf)
    order = np.lexsort((-table["best_accuracy"].to_numpy(), -key.to_numpy(), table["upper_bound"]))
    table = table.iloc[order].reset_index(drop=True)
    ranked = ~table["upper_bound"] & table[f"aiq_{unit}"].notna()
    table["rank"] = pd.Series(np.nan, index=table.index, dtype=float)
    table.loc[ranked, "rank"] = np.arange(1, int(ranked.sum()) + 1)
    return table


def _gap_notes(configs: pd.DataFrame, single: pd.DataFrame, unit: str) -> list[str]:
    """Say why APGR and dollar columns are empty, instead of leaving bare dashes."""
    notes = []
    if configs["dollars"].isna().all():
        notes.append(
            "No dollar figures: the pool has no prices for these models and the bank "
            "recorded no cost."
        )
    s_ok = single[np.isfinite(single[unit].to_numpy(float))]
    if len(s_ok) >= 2:
        weak = s_ok.loc[s_ok["accuracy"].idxmin()]
        strong = s_ok.loc[s_ok["accuracy"].idxmax()]
        if not strong[unit] > weak[unit]:
            notes.append(
                f"APGR is undefined here: the most accurate single model "
                f"({strong['config_label']}) is not dearer in {UNITS[unit]} than the least "
                f"accurate one ({weak['config_label']}), so there is no cost gap to recover."
            )
    return notes


def _board_notes(configs: pd.DataFrame, single: pd.DataFrame, unit: str) -> list[str]:
    """Why the board ranks by a unit other than FLOPs, then :func:`_gap_notes`."""
    notes = []
    if unit in ("dollars", "tokens"):
        notes.append(
            "Ranked by AIQ in " + UNITS[unit] + ": some configuration has no FLOPs figure "
            "(a model's parameter count is undisclosed)."
        )
    if unit == "param_calls":
        notes.append(PARAM_CALLS_NOTE)
    return notes + _gap_notes(configs, single, unit)


def _with_plot_columns(configs: pd.DataFrame) -> pd.DataFrame:
    """A copy with total tokens, a family for every row, the plot marker and the front."""
    configs = configs.copy().reset_index(drop=True)
    if "param_calls" not in configs:  # summaries written before the unit existed
        configs["param_calls"] = np.nan
    configs["tokens"] = configs["input_tokens"] + configs["output_tokens"]
    configs["family"] = configs["family"].replace("", "other").fillna("other")
    configs["kind"] = configs.apply(kind_of, axis=1)
    configs["front"] = configs.apply(front_group, axis=1)
    return configs


def _cost_ranges(configs: pd.DataFrame) -> dict[str, tuple[float, float]]:
    """Per unit, the cost range AIQ integrates over: that of the ranked (not upper-bound)
    configurations, for units where it is not a single point."""
    ranked = configs[~configs["upper_bound"]]
    ranges = {}
    for u in UNITS:
        c = ranked[u].to_numpy(float)
        c = c[np.isfinite(c)]
        if len(c) and c.max() > c.min():
            ranges[u] = (float(c.min()), float(c.max()))
    return ranges


def _strategy_table(
    configs: pd.DataFrame, ranges: dict[str, tuple[float, float]], single: pd.DataFrame, unit: str
) -> pd.DataFrame:
    """One ranked row per strategy, over all its configurations."""
    rows = []
    for name, g in configs.groupby("strategy", sort=True):
        r = {
            "strategy": name,
            "family": g["family"].iloc[0],
            "upper_bound": bool(g["upper_bound"].all()),
        }
        r.update(_group_metrics(g, ranges, single))
        rows.append(r)
    return _rank(pd.DataFrame(rows), unit)


def _family_table(
    configs: pd.DataFrame, ranges: dict[str, tuple[float, float]], single: pd.DataFrame, unit: str
) -> pd.DataFrame:
    """One ranked row per family, over its configurations that are not upper bounds (a family
    of upper bounds only is itself an upper bound)."""
    rows = []
    for fam, g in configs.groupby("family", sort=True):
        g_ranked = g[~g["upper_bound"]]
        r = {
            "family": fam,
            "upper_bound": g_ranked.empty,
            "strategies": int(g["strategy"].nunique()),
        }
        r.update(_group_metrics(g_ranked if len(g_ranked) else g, ranges, single))
        rows.append(r)
    return _rank(pd.DataFrame(rows), unit)


def _pareto_fronts(configs: pd.DataFrame, unit: str) -> tuple[pd.DataFrame, pd.Series]:
    """The Pareto-front points of each front in every unit present, and which configurations
    are on their front in the ranking ``unit``."""
    fronts = []
    on_front = pd.Series(False, index=configs.index)
    for name, g in configs[configs["front"] != ""].groupby("front", sort=True):
        for u in _units_present(configs):
            pts = g.iloc[pareto_front(g[u].to_numpy(float), g["accuracy"].to_numpy(float))]
            if u == unit:
                on_front.loc[pts.index] = True
            fronts.append(
                pd.DataFrame(
                    {
                        "front": name,
                        "unit": u,
                        "cost": pts[u].to_numpy(float),
                        "accuracy": pts["accuracy"].to_numpy(float),
                        "config_label": pts["config_label"].to_numpy(),
                    }
                )
            )
    return (pd.concat(fronts, ignore_index=True) if fronts else pd.DataFrame()), on_front


def _most_accurate(frame: pd.DataFrame) -> dict[str, Any] | None:
    """The most accurate configuration of ``frame``, with its costs."""
    if frame.empty:
        return None
    r = frame.loc[frame["accuracy"].idxmax()]
    return {k: r[k] for k in ("config_label", "accuracy", "ci_low", "ci_high", *UNITS)}


def build_board(
    task: str,
    bank: str,
    synthetic: bool,
    configs: pd.DataFrame,
    per_query: pd.DataFrame | None = None,
) -> TaskBoard:
    """Rank one task's configurations (rows of :func:`summarize`) by AIQ; with their per-query
    accuracy (indexed by label), add the budget-matched verdicts of :mod:`.budget`."""
    configs = _with_plot_columns(configs)
    unit = _primary_unit(configs)
    ranges = _cost_ranges(configs)
    single = configs[(configs["strategy"] == SINGLE) & ~configs["upper_bound"]]
    strategies = _strategy_table(configs, ranges, single, unit)
    families = _family_table(configs, ranges, single, unit)
    fronts, on_front = _pareto_fronts(configs, unit)
    configs["on_front"] = on_front
    budget, curves = (
        board_verdicts(configs, per_query, unit)
        if per_query is not None
        else (pd.DataFrame(), pd.DataFrame())
    )
    return TaskBoard(
        task=task,
        bank=bank,
        synthetic=synthetic,
        unit=unit,
        configs=configs,
        strategies=strategies,
        families=families,
        fronts=fronts,
        best_single=_most_accurate(single),
        notes=_board_notes(configs, single, unit),
        prefix_cache=str(configs["prefix_cache"].iloc[0]) if "prefix_cache" in configs else "",
        budget=budget,
        curves=curves,
    )


def boards_from_summary(
    summary: pd.DataFrame, synthetic: dict[str, bool], per_query: pd.DataFrame | None = None
) -> list[TaskBoard]:
    """One board per (task, bank, prefix-cache setting) from rows of ``summarize``/
    ``summarize_db``; ``per_query`` (:func:`per_query_accuracy`) adds the budget verdicts."""
    if summary.empty:
        return []
    keys = [k for k in ("bank", "task", "prefix_cache") if k in summary]
    boards = []
    for key, g in summary.groupby(keys, sort=True):
        pq = None
        if per_query is not None and len(per_query):
            pq = per_query.xs(key, level=keys).reindex(g["config_label"].tolist())
        boards.append(build_board(key[1], key[0], bool(synthetic.get(key[0], False)), g, pq))
    return boards


def leaderboard(
    engine: Engine, include_synthetic: bool = False
) -> tuple[pd.DataFrame, list[TaskBoard]]:
    """Complete runs (with per-run accuracy, reward count and mean costs) and the boards.

    Decisions are aggregated inside the database (:func:`summarize_db`), never loaded whole.
    """
    runs = load_runs(engine, include_synthetic=include_synthetic)
    if runs.empty:
        return runs, []
    runs = runs.merge(run_stats(engine, runs["run_id"].tolist()), on="run_id", how="left")
    packed = read_packed_outcomes(engine, runs["run_id"].tolist())
    summary = summarize_db(engine, include_synthetic=include_synthetic, runs=runs, packed=packed)
    per_query = per_query_accuracy(packed, runs[runs["n_decisions"] > 0])
    synthetic = runs.groupby("bank")["synthetic"].any().to_dict()
    boards = boards_from_summary(summary, synthetic, per_query)
    for board in boards:
        _add_oracle_front(engine, board, runs)
    return runs, boards


def _add_oracle_front(engine: Engine, board: TaskBoard, runs: pd.DataFrame) -> None:
    """Draw the board's oracle as a front and give the oracle row that front's AIQs."""
    mine = runs[(runs["task"] == board.task) & (runs["bank"] == board.bank)]
    if "prefix_cache" in mine and board.prefix_cache:
        mine = mine[mine["prefix_cache"] == board.prefix_cache]
    front = oracle_fronts(engine, mine, board.unit)
    if front.empty:
        return
    board.oracle_front = front
    drawn = front.assign(front="oracle (upper bound)", unit=board.unit)
    board.fronts = pd.concat([board.fronts, drawn], ignore_index=True)
    lo_hi = _cost_ranges(board.configs).get(board.unit)
    table = board.strategies
    if lo_hi is not None and "oracle" in set(table["strategy"]):
        c, a = front["cost"].to_numpy(float), front["accuracy"].to_numpy(float)
        row = table["strategy"] == "oracle"
        table.loc[row, f"aiq_{board.unit}"] = aiq(c, a, *lo_hi)
        table.loc[row, f"aiq_log_{board.unit}"] = aiq_log(c, a, *lo_hi)
    board.notes.append(ORACLE_NOTE)


def regret_curves(engine: Engine, run_ids: list[int]) -> pd.DataFrame:
    """Cumulative regret by stream position for runs whose decisions carry a reward.

    Regret against the best fixed arm uses ``extra["best_fixed_reward"]`` and against the
    per-query oracle ``extra["oracle_reward"]``; each is NaN where the strategy did not record
    it. Columns: run_id, position, reward, cum_reward, regret_best_fixed, regret_oracle.
    """
    cols = ["run_id", "position", "reward", "cum_reward", "regret_best_fixed", "regret_oracle"]
    if not run_ids:
        return pd.DataFrame(columns=cols)
    d = schema.decisions
    q = (
        select(d.c.run_id, d.c.position, d.c.reward, d.c.extra)
        .where(d.c.run_id.in_(run_ids), d.c.reward.is_not(None))
        .order_by(d.c.run_id, d.c.position)
    )
    with engine.connect() as conn:
        res = conn.execute(q)
        df = pd.DataFrame(res.fetchall(), columns=["run_id", "position", "reward", "extra"])
    if df.empty:
        return pd.DataFrame(columns=cols)
    extra = df.pop("extra").map(lambda x: x if isinstance(x, dict) else {})
    df["reward"] = df["reward"].astype(float)
    refs = (("best_fixed_reward", "regret_best_fixed"), ("oracle_reward", "regret_oracle"))
    for key, col in refs:
        ref = pd.to_numeric(extra.map(lambda x, k=key: x.get(k)), errors="coerce")
        gap = ref - df["reward"]
        has = ref.notna().groupby(df["run_id"]).transform("all")
        df[col] = gap.groupby(df["run_id"]).cumsum().where(has)
    df["cum_reward"] = df.groupby("run_id")["reward"].cumsum()
    return df[cols]


def mean_curve(curves: pd.DataFrame, max_points: int = 400) -> pd.DataFrame:
    """Average the curves of several seeds by position, thinned to at most ``max_points``."""
    if curves.empty:
        return curves
    m = curves.groupby("position", sort=True)[
        ["cum_reward", "regret_best_fixed", "regret_oracle"]
    ].mean()
    m = m.reset_index()
    m["queries_seen"] = m["position"] + 1
    if len(m) > max_points:
        keep = np.unique(np.linspace(0, len(m) - 1, max_points).round().astype(int))
        m = m.iloc[keep]
    return m.reset_index(drop=True)
