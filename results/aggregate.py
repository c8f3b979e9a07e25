"""From decision rows to leaderboard figures (pandas).

Accuracy is averaged over seeds per query first, then over queries; its 95% interval is a
percentile bootstrap over queries (the unit that was sampled). Costs are means per query.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import BigInteger, Engine, Float, Integer, cast, func, select

from uisbench.store import schema

BOOTSTRAP = 1000
MAX_LEVELS = 256  # distinct per-query values up to which the bootstrap works on a histogram
COST_COLUMNS = ("flops", "dollars", "input_tokens", "output_tokens", "latency_s", "param_calls")
#: One leaderboard row per configuration under one prefix-cache setting (its FLOPs depend on it).
CONFIG_KEYS = ["bank", "task", "prefix_cache", "config_label"]
#: Columns of the decisions table that :func:`load_decisions` reads.
DECISION_COLUMNS = tuple(
    """run_id query_id position correct samples_used
    flops dollars input_tokens output_tokens latency_s param_calls reward""".split()
)
#: Columns of :func:`load_decisions`: the run's identity, then the decision, then the run's tags.
OUTPUT_ORDER = """task bank synthetic prefix_cache run_id strategy config_label seed
query_id position correct samples_used flops dollars input_tokens output_tokens latency_s
param_calls reward family upper_bound""".split()


def load_runs(
    engine: Engine, task: str | None = None, include_synthetic: bool = False
) -> pd.DataFrame:
    """Complete runs with their task, bank, family and upper-bound flag (one row per run)."""
    r, t, b = schema.runs, schema.tasks, schema.banks
    q = (
        select(
            r.c.id.label("run_id"),
            t.c.name.label("task"),
            b.c.name.label("bank"),
            b.c.synthetic,
            r.c.strategy,
            r.c.config_label,
            r.c.seed,
            r.c.split_seed,
            r.c.prefix_cache,
            r.c.summary,
            r.c.bank_digest,
        )
        .join(t, r.c.task_id == t.c.id)
        .join(b, r.c.bank_id == b.c.id)
        .where(r.c.status == "complete")
    )
    if task:
        q = q.where(t.c.name == task)
    if not include_synthetic:
        q = q.where(b.c.synthetic.is_(False))
    with engine.connect() as conn:
        runs = pd.DataFrame(conn.execute(q).mappings().all())
    if runs.empty:
        return runs
    summ = runs.pop("summary").map(lambda x: x or {})
    runs["family"] = summ.map(lambda x: x.get("family", ""))
    runs["upper_bound"] = summ.map(lambda x: bool(x.get("upper_bound", False)))
    runs["synthetic"] = runs["synthetic"].astype(bool)
    runs["bank"] = bank_labels(runs)
    runs["config_label"] = config_labels(runs, summ.map(lambda x: x.get("code")))
    return runs


def bank_labels(runs: pd.DataFrame) -> pd.Series:
    """Bank name per run; ``name@digest`` where runs of one bank replayed different contents,
    and ``…@split=N`` for runs on a seeded split other than the default (seed 0).

    A bank re-imported with more queries keeps its name but gets new runs; its old runs stay
    on the board under the content they used, never mixed with the new ones. Likewise runs
    scored on another split's test queries get their own rows and fronts: one row, one test set.
    """
    digest = runs["bank_digest"].fillna("").astype(str)
    versions = digest.groupby(runs["bank"]).transform("nunique")
    label = runs["bank"].where(versions <= 1, runs["bank"] + "@" + digest.str[:8])
    split = pd.to_numeric(runs["split_seed"], errors="coerce").fillna(0).astype(int)
    return label.where(split == 0, label + "@split=" + split.astype(str))


def config_labels(runs: pd.DataFrame, code: pd.Series) -> pd.Series:
    """Configuration label per run; ``label@version`` where runs of one label on one board
    (bank, task, prefix cache) ran different code (``code``: the runner's code version, None
    for runs stored before it was recorded). An edited plugin gets new runs; its old ones stay
    on the board under their own row, never averaged with the new ones."""
    code = code.fillna("").astype(str)
    keys = [runs[k] for k in ("bank", "task", "prefix_cache", "config_label")]
    apart = code.groupby(keys, dropna=False).transform("nunique") > 1
    if not apart.any():
        return runs["config_label"]
    short = code[apart].map(lambda c: _short(c) if c else "unrecorded")
    return runs["config_label"].where(~apart, runs["config_label"] + "@" + short)


def _short(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()[:8]


def load_decisions(
    engine: Engine, task: str | None = None, include_synthetic: bool = False
) -> pd.DataFrame:
    """Decisions of complete runs joined with their run and task (one row per decision).

    Runs are read first and joined in pandas, so each run's JSON summary is parsed once rather
    than once per decision (this is what keeps a million-decision database fast to load).
    """
    runs = load_runs(engine, task, include_synthetic)
    if runs.empty:
        return pd.DataFrame()
    d = schema.decisions
    frames = []
    ids = runs["run_id"].tolist()
    with engine.connect() as conn:
        for lo in range(0, len(ids), 500):  # bounded IN lists
            q = select(*[d.c[c] for c in DECISION_COLUMNS]).where(
                d.c.run_id.in_(ids[lo : lo + 500])
            )
            rows = [tuple(r) for r in conn.execute(q)]
            frames.append(pd.DataFrame.from_records(rows, columns=list(DECISION_COLUMNS)))
    df = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    if df.empty:
        return pd.DataFrame()
    df["correct"] = df["correct"].astype(float)
    for col in (*COST_COLUMNS, "reward"):
        df[col] = pd.to_numeric(df[col], errors="coerce")
    df = df.merge(runs, on="run_id", how="left")
    return df[OUTPUT_ORDER]


def bootstrap_ci(
    per_query: np.ndarray, n_boot: int = BOOTSTRAP, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean over queries."""
    x = np.asarray(per_query, dtype=float)
    if len(x) == 0:
        return (np.nan, np.nan)
    levels, counts = np.unique(x, return_counts=True)
    if len(levels) <= MAX_LEVELS:
        return bootstrap_ci_counts(levels, counts, n_boot, seed, level)
    rng = np.random.default_rng(seed)
    means = np.empty(n_boot)
    step = max(1, 2_000_000 // len(x))
    for lo in range(0, n_boot, step):
        hi = min(n_boot, lo + step)
        means[lo:hi] = x[rng.integers(len(x), size=(hi - lo, len(x)))].mean(axis=1)
    alpha = (1 - level) / 2
    return float(np.quantile(means, alpha)), float(np.quantile(means, 1 - alpha))


def bootstrap_ci_counts(
    levels: np.ndarray,
    counts: np.ndarray,
    n_boot: int = BOOTSTRAP,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float, float]:
    """The same bootstrap from a histogram of per-query values (``counts[i]`` queries at
    ``levels[i]``, levels sorted ascending).

    Per-query accuracies take few distinct values (0/1, or j/seeds), so a resample of n queries
    is multinomial counts over the levels: the same distribution as resampling query indices,
    in O(n_boot × levels) rather than O(n_boot × queries).
    """
    levels = np.asarray(levels, dtype=float)
    counts = np.asarray(counts, dtype=np.int64)
    n = int(counts.sum())
    if n == 0:
        return (np.nan, np.nan)
    rng = np.random.default_rng(seed)
    means = rng.multinomial(n, counts / n, size=n_boot) @ levels / n
    alpha = (1 - level) / 2
    return float(np.quantile(means, alpha)), float(np.quantile(means, 1 - alpha))


def summarize(df: pd.DataFrame) -> pd.DataFrame:
    """One row per (bank, task, configuration): accuracy ± CI and mean cost per query."""
    if df.empty:
        return pd.DataFrame()
    rows = []
    for key, g in df.groupby(CONFIG_KEYS, sort=True):
        per_query = g.groupby("query_id")["correct"].mean()
        lo, hi = bootstrap_ci(per_query.to_numpy())
        row = dict(zip(CONFIG_KEYS, key))
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


def run_stats(engine: Engine, run_ids: list[int]) -> pd.DataFrame:
    """Per run, computed in the database along the run index: decisions, accuracy, rewards
    recorded, mean samples and mean of each cost with the count of known values."""
    d = schema.decisions
    cols = [
        d.c.run_id,
        func.count().label("n_decisions"),
        func.avg(cast(cast(d.c.correct, Integer), Float)).label("accuracy"),
        func.count(d.c.reward).label("n_reward"),
        func.avg(cast(d.c.samples_used, Float)).label("samples_per_query"),
    ]
    for col in COST_COLUMNS:
        cols.append(func.count(d.c[col]).label(f"known_{col}"))
        cols.append(func.avg(cast(d.c[col], Float)).label(col))
    frames = []
    with engine.connect() as conn:
        for lo in range(0, len(run_ids), 500):
            q = select(*cols).where(d.c.run_id.in_(run_ids[lo : lo + 500])).group_by(d.c.run_id)
            frames.append(pd.DataFrame(conn.execute(q).mappings().all()))
    out = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    return out if len(out) else pd.DataFrame(columns=[c.name for c in cols])


def summarize_db(
    engine: Engine,
    task: str | None = None,
    include_synthetic: bool = False,
    runs: pd.DataFrame | None = None,
    packed: np.ndarray | None = None,
) -> pd.DataFrame:
    """``summarize(load_decisions(...))`` without materialising the decisions as a DataFrame.

    Costs are averaged per run inside the database (a scan along the run index) and combined per
    configuration weighted by decision counts; accuracy needs only (run, query, correct) triples,
    read as integers and reduced with numpy to a histogram of per-query accuracy per
    configuration, on which the bootstrap runs (:func:`bootstrap_ci_counts`: same seed, same
    interval as :func:`summarize`). This keeps a million-decision leaderboard to seconds.
    ``runs`` may pass :func:`load_runs` merged with :func:`run_stats` when the caller has them,
    ``packed`` the runs' :func:`read_packed_outcomes`.
    """
    if runs is None:
        runs = _runs_with_stats(engine, task, include_synthetic)
    if runs.empty:
        return pd.DataFrame()
    per_run = _number_configs(runs[runs["n_decisions"] > 0])
    if per_run.empty:
        return pd.DataFrame()
    if packed is None:
        packed = read_packed_outcomes(engine, runs["run_id"].tolist())
    hist_key, hist_n = _accuracy_histograms(packed, per_run)
    rows = []
    for i, g in per_run.groupby("config", sort=True):
        sel = hist_key[:, 0] == i
        rows.append(_config_row(g, hist_key[sel, 1], hist_n[sel]))
    return pd.DataFrame(rows)


def _runs_with_stats(engine: Engine, task: str | None, include_synthetic: bool) -> pd.DataFrame:
    """:func:`load_runs` with each run's :func:`run_stats` columns (runs with no decision drop)."""
    runs = load_runs(engine, task, include_synthetic)
    if len(runs):
        runs = runs.merge(run_stats(engine, runs["run_id"].tolist()), on="run_id")
    return runs


def _number_configs(runs: pd.DataFrame) -> pd.DataFrame:
    """Runs sorted by configuration, with ``config``: the configuration's index in that order."""
    per_run = runs.sort_values(CONFIG_KEYS, kind="stable")
    keys = list(map(tuple, per_run[CONFIG_KEYS].values))
    config_index = {k: i for i, k in enumerate(dict.fromkeys(keys))}
    return per_run.assign(config=[config_index[k] for k in keys])


def read_packed_outcomes(engine: Engine, run_ids: list[int]) -> np.ndarray:
    """One integer per decision, (run_id·2³² + query_id)·2 + correct, read through the DBAPI
    cursor: the hot path of a million-decision build (Row objects cost ~4× more)."""
    d = schema.decisions
    code = (cast(d.c.run_id, BigInteger) * 2**32 + d.c.query_id) * 2 + cast(d.c.correct, Integer)
    packed = [
        np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        for rows in decision_rows(engine, run_ids, [code])
    ]
    return np.concatenate(packed) if packed else np.zeros(0, np.int64)


def decision_rows(engine: Engine, run_ids: list[int], columns: list[Any]) -> Iterator[list[tuple]]:
    """The runs' decisions as plain tuples of ``columns`` (SQL expressions over
    ``decisions``), 500 runs a query, through the DBAPI cursor: no SQLAlchemy Row a decision."""
    d = schema.decisions
    with engine.connect() as conn:
        for lo in range(0, len(run_ids), 500):
            q = select(*columns).where(d.c.run_id.in_(run_ids[lo : lo + 500]))
            sql = str(q.compile(dialect=engine.dialect, compile_kwargs={"literal_binds": True}))
            cur = conn.connection.driver_connection.cursor()
            try:
                cur.execute(sql)
                yield cur.fetchall()
            finally:
                cur.close()


def per_query_accuracy(packed: np.ndarray, runs: pd.DataFrame) -> pd.DataFrame:
    """Accuracy of each configuration on each query, averaged over its seeds: rows indexed by
    :data:`CONFIG_KEYS`, one column per query id, NaN where a configuration has no decision."""
    per_run = _number_configs(runs)
    if per_run.empty or len(packed) == 0:
        return pd.DataFrame()
    run_id, query, ok = packed >> 33, (packed >> 1) & (2**32 - 1), packed & 1
    cfg = pd.Series(per_run["config"].values, index=per_run["run_id"].values).reindex(run_id)
    keep = cfg.notna().to_numpy()
    cfg = cfg.to_numpy()[keep].astype(np.int64)
    queries, col = np.unique(query[keep], return_inverse=True)
    n_cfg = int(per_run["config"].max()) + 1
    flat = cfg * len(queries) + col
    total = np.bincount(flat, minlength=n_cfg * len(queries)).reshape(n_cfg, -1)
    right = np.bincount(flat, weights=ok[keep], minlength=n_cfg * len(queries))
    with np.errstate(invalid="ignore", divide="ignore"):
        acc = right.reshape(n_cfg, -1) / total
    keys = per_run.drop_duplicates("config").sort_values("config")[CONFIG_KEYS]
    return pd.DataFrame(acc, index=pd.MultiIndex.from_frame(keys), columns=queries)


def _accuracy_histograms(
    packed: np.ndarray, per_run: pd.DataFrame
) -> tuple[np.ndarray, np.ndarray]:
    """Per (configuration, query): correct decisions over decisions (over seeds) is the query's
    accuracy level; returns the distinct (configuration, level) pairs and how many queries each."""
    trip = np.c_[packed >> 33, (packed >> 1) & (2**32 - 1), packed & 1]
    run_to_config = pd.Series(per_run["config"].values, index=per_run["run_id"].values)
    cfg = run_to_config.reindex(trip[:, 0]).to_numpy()
    n_q = int(trip[:, 1].max()) + 1
    pair, inverse = np.unique(cfg * n_q + trip[:, 1], return_inverse=True)
    level = np.bincount(inverse, weights=trip[:, 2]) / np.bincount(inverse)
    pair_cfg = pair // n_q
    return np.unique(np.c_[pair_cfg, np.round(level, 12)], axis=0, return_counts=True)


def _config_row(g: pd.DataFrame, levels: np.ndarray, counts: np.ndarray) -> dict:
    """One configuration's summary from its runs' stats (costs weighted by decision counts) and
    its histogram of per-query accuracy (``counts[i]`` queries at ``levels[i]``)."""
    lo, hi = bootstrap_ci_counts(levels, counts)
    w = g["n_decisions"].to_numpy(float)
    row = {k: g[k].iloc[0] for k in CONFIG_KEYS}
    row.update(
        strategy=g["strategy"].iloc[0],
        family=g["family"].iloc[0],
        upper_bound=bool(g["upper_bound"].any()),
        accuracy=float(levels @ counts / counts.sum()),
        ci_low=lo,
        ci_high=hi,
        n_queries=int(counts.sum()),
        n_seeds=int(g["seed"].nunique()),
        samples_per_query=float(np.average(g["samples_per_query"], weights=w)),
    )
    for col in COST_COLUMNS:
        known = (g[f"known_{col}"] == g["n_decisions"]).all()
        row[col] = float(np.average(g[col].astype(float), weights=w)) if known else np.nan
    return row
