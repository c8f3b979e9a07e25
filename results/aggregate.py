"""From decision rows to leaderboard figures (pandas).

Accuracy is averaged over seeds per query first, then over queries; its 95% interval is a
percentile bootstrap over queries (the unit that was sampled). Costs are means per query.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sqlalchemy import Engine, select

from uisbench.results import schema as s

BOOTSTRAP = 1000
COST_COLUMNS = ("flops", "dollars", "input_tokens", "output_tokens", "latency_s")


def load_decisions(
    engine: Engine, task: str | None = None, include_synthetic: bool = False
) -> pd.DataFrame:
    """Decisions of complete runs joined with their run and task (one row per decision)."""
    d, r, t, b = s.decisions, s.runs, s.tasks, s.banks
    q = (
        select(
            t.c.name.label("task"),
            b.c.name.label("bank"),
            b.c.synthetic,
            r.c.id.label("run_id"),
            r.c.strategy,
            r.c.config_label,
            r.c.seed,
            r.c.summary,
            d.c.query_id,
            d.c.position,
            d.c.correct,
            d.c.samples_used,
            d.c.flops,
            d.c.dollars,
            d.c.input_tokens,
            d.c.output_tokens,
            d.c.latency_s,
            d.c.reward,
        )  # fmt: skip
        .join(r, d.c.run_id == r.c.id)
        .join(t, r.c.task_id == t.c.id)
        .join(b, r.c.bank_id == b.c.id)
        .where(r.c.status == "complete")
    )
    if task:
        q = q.where(t.c.name == task)
    if not include_synthetic:
        q = q.where(b.c.synthetic.is_(False))
    with engine.connect() as conn:
        df = pd.DataFrame(conn.execute(q).mappings().all())
    if df.empty:
        return df
    df["correct"] = df["correct"].astype(float)
    for col in COST_COLUMNS:
        df[col] = pd.to_numeric(df[col], errors="coerce")
    summ = df["summary"].map(lambda x: x or {})
    df["family"] = summ.map(lambda x: x.get("family", ""))
    df["upper_bound"] = summ.map(lambda x: bool(x.get("upper_bound", False)))
    return df.drop(columns=["summary"])


def bootstrap_ci(
    per_query: np.ndarray, n_boot: int = BOOTSTRAP, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean over queries."""
    x = np.asarray(per_query, dtype=float)
    if len(x) == 0:
        return (np.nan, np.nan)
    rng = np.random.default_rng(seed)
    means = np.empty(n_boot)
    step = max(1, 2_000_000 // len(x))
    for lo in range(0, n_boot, step):
        hi = min(n_boot, lo + step)
        means[lo:hi] = x[rng.integers(len(x), size=(hi - lo, len(x)))].mean(axis=1)
    alpha = (1 - level) / 2
    return float(np.quantile(means, alpha)), float(np.quantile(means, 1 - alpha))


def summarize(df: pd.DataFrame) -> pd.DataFrame:
    """One row per (bank, task, configuration): accuracy ± CI and mean cost per query."""
    if df.empty:
        return pd.DataFrame()
    keys = ["bank", "task", "config_label"]
    rows = []
    for key, g in df.groupby(keys, sort=True):
        per_query = g.groupby("query_id")["correct"].mean()
        lo, hi = bootstrap_ci(per_query.to_numpy())
        row = dict(zip(keys, key))
        row.update(
            strategy=g["strategy"].iloc[0],
            family=g["family"].iloc[0],
            upper_bound=bool(g["upper_bound"].any()),
            accuracy=float(per_query.mean()),
            ci_low=lo,
            ci_high=hi,
            n_queries=int(per_query.size),
            n_seeds=int(g["seed"].nunique()),
            samples_per_query=float(g["samples_used"].mean()),
        )
        for col in COST_COLUMNS:
            # NaN where any decision's cost is unknown (e.g. undisclosed parameter count).
            vals = g[col]
            row[col] = float(vals.mean()) if vals.notna().all() else np.nan
        rows.append(row)
    return pd.DataFrame(rows)
