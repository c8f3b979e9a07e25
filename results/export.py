"""Result files: a small, human-readable JSON record of runs with their per-query outcomes.

A result file is what ``uisbench compare`` and ``uisbench gate`` pair query by query, so it keeps
per-query outcomes (not only means) and names the bank it was made on by name *and* content
digest (:func:`uisbench.store.digest.bank_digest`): a comparison across banks is refused.

Layout (one query per line, so a diff of two baselines reads like a table)::

    {"format": "uisbench-results/1", "bank": {"name": ..., "digest": "sha256:..."}, ...,
     "runs": [{"task": ..., "config": ..., "strategy": ..., "params": {...}, "seed": 0,
               "columns": ["query", "correct", "flops", "dollars", "tokens", "latency_s"],
               "rows": [["test-add1-0000", 1, 5.1e9, null, 70, 0.8], ...]}]}
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import Engine, select

from uisbench.costs import PrefixCache
from uisbench.errors import UisbenchError
from uisbench.provenance import git_commit, uisbench_version
from uisbench.results.aggregate import load_runs
from uisbench.store import schema
from uisbench.store.bankfile import BOUNDS, out_of_bounds, read_json_file
from uisbench.store.digest import bank_digest

FORMAT = "uisbench-results/1"
#: Per-query columns of a run: the query's key, then its outcome and cost figures.
COLUMNS = ["query", "correct", "flops", "dollars", "tokens", "latency_s"]
RUN_FIELDS = (
    "task",
    "config",
    "strategy",
    "params",
    "seed",
    "models",
    "split_seed",
    "prefix_cache",
)


@dataclass
class RunOutcomes:
    """One run: what defines it and one row per test query (columns :data:`COLUMNS`)."""

    task: str
    config: str
    strategy: str
    params: dict[str, Any]
    seed: int
    models: list[str]
    split_seed: int | None
    queries: pd.DataFrame
    prefix_cache: str | None = None  # the run's caching assumption; None: made before it existed


@dataclass
class ResultSet:
    """Runs made on one bank, as written to and read from a result file."""

    bank: str
    digest: str
    runs: list[RunOutcomes]
    provenance: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------- from the database
def select_runs(
    engine: Engine,
    run_ids: list[int] | None = None,
    task: str | None = None,
    configs: list[str] | None = None,
    bank: str | None = None,
) -> list[int]:
    """Complete runs by id, or by task / configuration label / bank (ids in ascending order).

    A configuration is its stored label (every version of its code), or the ``label@version``
    the board shows where one label has runs of several code versions (that version's runs).
    """
    r, t, b = schema.runs, schema.tasks, schema.banks
    q = select(r.c.id, r.c.config_label)
    q = q.join(t, r.c.task_id == t.c.id).join(b, r.c.bank_id == b.c.id)
    q = q.where(r.c.status == "complete").order_by(r.c.id)
    if run_ids:
        q = q.where(r.c.id.in_(run_ids))
    if task:
        q = q.where(t.c.name == task)
    if bank:
        q = q.where(b.c.name == bank)
    with engine.connect() as conn:
        rows = conn.execute(q).all()
    if configs:
        wanted = set(configs)
        shown: set[int] = set()
        if any("@" in c for c in wanted):
            board = load_runs(engine, task, include_synthetic=True)
            if len(board):
                shown = set(board.loc[board["config_label"].isin(wanted), "run_id"].astype(int))
        rows = [row for row in rows if row[1] in wanted or int(row[0]) in shown]
    found = [int(row[0]) for row in rows]
    missing = sorted(set(run_ids or []) - set(found))
    if missing:
        raise UisbenchError(f"no complete run with id {', '.join(map(str, missing))}")
    if not found:
        raise UisbenchError("no complete run matches the selection")
    return found


def load_results(engine: Engine, run_ids: list[int], submitter: str | None = None) -> ResultSet:
    """The runs' per-query outcomes; all runs must share one bank. The provenance names the
    uisbench version and commit, the ``submitter`` if given, and the code version of each
    strategy that ran in its own process (a plugin's digest, see the runner)."""
    r, t, b = schema.runs, schema.tasks, schema.banks
    q = (
        select(r, t.c.name.label("task"), b.c.name.label("bank"))
        .join(t, r.c.task_id == t.c.id)
        .join(b, r.c.bank_id == b.c.id)
        .where(r.c.id.in_(run_ids))
        .order_by(r.c.id)
    )
    with engine.connect() as conn:
        runs = conn.execute(q).mappings().all()
        banks = sorted({row["bank"] for row in runs})
        if len(banks) != 1:
            raise UisbenchError(
                f"the selected runs are on {len(banks)} banks ({', '.join(banks)}); "
                "a result file holds one bank: select by --bank"
            )
        digest = bank_digest(conn, banks[0])
        decisions = _decisions(conn, run_ids)
    by_run = dict(tuple(decisions.groupby("run_id"))) if len(decisions) else {}
    out = [
        RunOutcomes(
            task=row["task"],
            config=row["config_label"],
            strategy=row["strategy"],
            params=row["params"] or {},
            seed=int(row["seed"]),
            models=list(row["models"] or []),
            split_seed=row["split_seed"],
            queries=by_run[row["id"]][COLUMNS].reset_index(drop=True),
            prefix_cache=row["prefix_cache"],
        )
        for row in runs
    ]
    provenance: dict[str, Any] = {
        "uisbench_version": uisbench_version(),
        "git_commit": git_commit(),
    }
    if submitter:
        provenance["submitter"] = submitter
    code = {r["strategy"]: (r["summary"] or {}).get("code") for r in runs}
    if any(code.values()):
        provenance["code"] = {k: v for k, v in sorted(code.items()) if v}
    return ResultSet(banks[0], digest, out, provenance)


def _decisions(conn: Any, run_ids: list[int]) -> pd.DataFrame:
    d, q = schema.decisions, schema.queries
    stmt = (
        select(
            d.c.run_id,
            q.c.query_key.label("query"),
            d.c.correct,
            d.c.flops,
            d.c.dollars,
            (d.c.input_tokens + d.c.output_tokens).label("tokens"),
            d.c.latency_s,
        )
        .join(q, d.c.query_id == q.c.id)
        .where(d.c.run_id.in_(run_ids))
    )
    frame = pd.DataFrame(conn.execute(stmt).mappings().all())
    if frame.empty:
        return frame
    frame["correct"] = frame["correct"].astype(int)
    return frame.sort_values(["run_id", "query"], kind="stable")


# ---------------------------------------------------------------- files
def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, allow_nan=False)


def _cell(v: Any) -> Any:
    return None if v is None or (isinstance(v, float) and v != v) else v


def _option(value: Any) -> Any:
    """JSON has no infinity: an infinite option (``wtp=inf``, quality only) is written as the
    string ``"inf"`` (``"-inf"``); strategies parse options from strings, so it reads back as
    the same float. NaN is never a valid option (strategies refuse it), so it cannot occur."""
    if isinstance(value, float) and math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return value


def dumps(results: ResultSet) -> str:
    """The result file's text: JSON with one query per line."""
    lines = [
        "{",
        f' "format": {_json(FORMAT)},',
        f' "bank": {_json({"name": results.bank, "digest": results.digest})},',
        f' "provenance": {_json(results.provenance)},',
        ' "runs": [',
    ]
    for i, run in enumerate(results.runs):
        head = {f: getattr(run, f) for f in RUN_FIELDS}
        head["params"] = {k: _option(v) for k, v in run.params.items()}
        head["columns"] = COLUMNS
        lines.append("  " + _json(head)[:-1] + ', "rows": [')
        rows = run.queries[COLUMNS].astype(object).to_numpy().tolist()
        body = [f"   {_json([_cell(v) for v in row])}" for row in rows]
        lines.append(",\n".join(body))
        lines.append("  ]}" + ("," if i < len(results.runs) - 1 else ""))
    lines += [" ]", "}"]
    return "\n".join(lines) + "\n"


def write_results(results: ResultSet, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dumps(results), encoding="utf-8")


#: Bytes a result file may hold: about ten million per-query rows (a hostile file is read into
#: memory, several times its size once parsed).
MAX_RESULT_BYTES = 1 << 30


def read_results(path: Path) -> ResultSet:
    """Parse a result file, validated like a bank: anything malformed is one clear line.

    Every run's definition is checked (a seed is what ``--seed`` takes, a prefix-cache setting
    what the runner parses) and every per-query row is bounded: ``correct`` is 0 or 1, the
    cost figures finite, non-negative and plausible (:data:`uisbench.store.bankfile.BOUNDS`),
    so a tampered file cannot give 500 % accuracy or a cost below free.
    """
    try:
        raw = read_json_file(Path(path), MAX_RESULT_BYTES)
    except UisbenchError as exc:
        raise UisbenchError(f"not a result file: {exc}") from None
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise UisbenchError(f"{path}: not a result file (expected format {FORMAT!r})")
    bank, runs, provenance = raw.get("bank"), raw.get("runs"), raw.get("provenance", {})
    if not (isinstance(bank, dict) and _text(bank.get("name")) and _text(bank.get("digest"))):
        raise UisbenchError(f"{path}: malformed result file (bank must name a name and digest)")
    if not isinstance(runs, list) or not isinstance(provenance, dict):
        raise UisbenchError(f"{path}: malformed result file (runs must be a list)")
    try:
        return ResultSet(bank["name"], bank["digest"], [_run_from(r) for r in runs], provenance)
    except ValueError as exc:
        raise UisbenchError(f"{path}: malformed result file: {exc}") from None


#: Seeds and split seeds a result file may name: what ``--seed`` accepts.
MAX_SEED = 2**31 - 1
#: Per-query columns after the key and their bounds in the plausible-range table.
_ROW_BOUNDS = dict(
    zip(COLUMNS[2:], ("query_flops", "query_dollars", "query_tokens", "query_latency_s"))
)


def _text(v: Any) -> bool:
    return isinstance(v, str) and bool(v)


def _seed(v: Any, optional: bool = False) -> bool:
    if v is None:
        return optional
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= MAX_SEED


def _param(v: Any) -> bool:
    """A strategy option as written: a scalar, "inf", or a list of names (a tuple option)."""
    if isinstance(v, list):
        return all(isinstance(x, str) for x in v)
    return v is None or isinstance(v, (str, int, float, bool))


def _run_from(raw: Any) -> RunOutcomes:
    if not isinstance(raw, dict):
        raise ValueError("a run is not an object")
    for f in ("task", "config", "strategy"):
        if not _text(raw.get(f)):
            raise ValueError(f"a run's {f} must be a non-empty string")
    where = f"run {raw['config']}"
    if not _seed(raw.get("seed")):
        raise ValueError(
            f"{where}: seed must be an integer in 0..{MAX_SEED}, not {raw.get('seed')!r}"
        )
    if not _seed(raw.get("split_seed"), optional=True):
        raise ValueError(f"{where}: split_seed must be null or an integer in 0..{MAX_SEED}")
    cache = raw.get("prefix_cache")
    if cache is not None:
        if not isinstance(cache, str):
            raise ValueError(f"{where}: prefix_cache must be a string or null, not {cache!r}")
        try:
            PrefixCache.parse(cache)
        except UisbenchError as exc:
            raise ValueError(f"{where}: prefix_cache: {exc}") from None
    params, models = raw.get("params"), raw.get("models")
    if not isinstance(params, dict) or not all(_param(v) for v in params.values()):
        raise ValueError(f"{where}: params must be an object of option values")
    if not isinstance(models, list) or not all(_text(m) for m in models):
        raise ValueError(f"{where}: models must be a list of names")
    if raw.get("columns") != COLUMNS:
        raise ValueError(f"{where}: columns must be {COLUMNS}")
    rows = raw.get("rows")
    if not isinstance(rows, list):
        raise ValueError(f"{where}: rows must be a list")
    for row in rows:
        _check_row(row, where)
    queries = pd.DataFrame(rows, columns=COLUMNS)
    for col in COLUMNS[2:]:
        queries[col] = pd.to_numeric(queries[col]).astype(float)
    queries["correct"] = queries["correct"].astype(int)
    if queries["query"].duplicated().any():
        raise ValueError(f"{where} seed {raw['seed']} repeats a query")
    return RunOutcomes(
        task=raw["task"],
        config=raw["config"],
        strategy=raw["strategy"],
        params=params,
        seed=raw["seed"],
        models=models,
        split_seed=raw.get("split_seed"),
        queries=queries,
        prefix_cache=cache,
    )


def _check_row(row: Any, where: str) -> None:
    """One per-query row: [query, correct 0/1, flops, dollars, tokens, latency_s]."""
    if not isinstance(row, list) or len(row) != len(COLUMNS):
        raise ValueError(f"{where}: a row must be a list of {len(COLUMNS)} values")
    query, correct, *figures = row
    if not _text(query):
        raise ValueError(f"{where}: a row's query must be a non-empty string")
    if correct not in (0, 1) or isinstance(correct, float):
        raise ValueError(f"{where}: query {query}: correct must be 0 or 1, not {correct!r}")
    for col, v in zip(COLUMNS[2:], figures):
        bound = _ROW_BOUNDS[col]
        if v is not None and (
            not isinstance(v, (int, float)) or isinstance(v, bool) or out_of_bounds(bound, v)
        ):
            raise ValueError(f"{where}: query {query}: {col} must be {BOUNDS[bound][2]}, not {v!r}")
