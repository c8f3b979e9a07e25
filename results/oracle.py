"""The oracle as a front rather than one point.

An oracle run records, per query, the cheapest correct arm (or, where none is correct, the
cheapest arm). Capping what it may spend per query traces a curve: under cap C a query keeps its
cheapest correct arm if that costs at most C, else it gets the cheapest arm and is wrong
(:func:`uisbench.results.pareto.oracle_front`). The cheapest arm of each query is the cheapest
single model's cost on that query. A single oracle point has an AIQ that says little (on a bank
with one sample per model it can fall below a router's); the front's AIQ is the bound a
strategy's AIQ can approach.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sqlalchemy import Engine, Integer, cast

from uisbench.results.aggregate import decision_rows
from uisbench.results.pareto import oracle_front
from uisbench.store import schema

MAX_CAPS = 40

ORACLE_NOTE = (
    "The oracle (an upper bound, never ranked) is drawn as a front: under each cost cap every "
    "query gets its cheapest correct arm if that costs at most the cap, else the cheapest model "
    "(wrong). Its AIQ is that front's."
)


def _decisions(engine: Engine, run_ids: list[int], unit: str) -> pd.DataFrame:
    """(run_id, query_id, correct, cost in ``unit``) of the runs' decisions, in one read."""
    d = schema.decisions
    cost = d.c.input_tokens + d.c.output_tokens if unit == "tokens" else d.c[unit]
    columns = [d.c.run_id, d.c.query_id, cast(d.c.correct, Integer), cost]
    names = ["run_id", "query_id", "correct", "cost"]
    parts = [pd.DataFrame(rows, columns=names) for rows in decision_rows(engine, run_ids, columns)]
    df = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=names)
    df["correct"] = df["correct"].astype(float)
    df["cost"] = pd.to_numeric(df["cost"], errors="coerce")
    return df


def _per_query(decided: pd.DataFrame, run_ids: list[int]) -> pd.DataFrame:
    """Mean over the runs of each query's cost and correctness."""
    mine = decided[decided["run_id"].isin(run_ids)]
    return mine[["query_id", "correct", "cost"]].groupby("query_id").mean()


def oracle_fronts(engine: Engine, runs: pd.DataFrame, unit: str) -> pd.DataFrame:
    """Front points (config_label, cost, accuracy) of every oracle configuration in ``runs``
    (one board's runs), in ``unit``; empty when there is no oracle or no single model."""
    singles = runs[runs["strategy"] == "single"]
    oracles = runs[runs["strategy"] == "oracle"]
    if singles.empty or oracles.empty:
        return pd.DataFrame(columns=["config_label", "cost", "accuracy"])
    ids = [int(i) for i in pd.concat([singles, oracles])["run_id"]]
    decided = _decisions(engine, ids, unit)
    per_model = [
        _per_query(decided, g["run_id"].tolist())["cost"]
        for _, g in singles.groupby("config_label")
    ]
    cheapest = pd.concat(per_model, axis=1).min(axis=1)
    frames = []
    for label, g in oracles.groupby("config_label", sort=True):
        pq = _per_query(decided, g["run_id"].tolist()).join(
            cheapest.rename("fallback"), how="inner"
        )
        solved = pq["correct"].to_numpy() > 0.5
        cost = pq["cost"].to_numpy(float)
        if not np.isfinite(cost).all() or not solved.any():
            continue
        caps = np.unique(np.quantile(cost[solved], np.linspace(0, 1, MAX_CAPS)))
        c, a = oracle_front(cost, solved, pq["fallback"].to_numpy(float), caps)
        frames.append(pd.DataFrame({"config_label": label, "cost": c, "accuracy": a}))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
