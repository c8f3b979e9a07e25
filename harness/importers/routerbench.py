"""RouterBench's wide table (withmartian/routerbench: ``routerbench_0shot.pkl`` and friends).

One row per prompt: ``sample_id``, ``prompt``, ``eval_name`` and, per model ``M``, the columns
``M`` (the graded outcome in [0, 1]), ``M|model_response`` and ``M|total_cost`` (USD). Each
(prompt, model) becomes one sample; ``correct`` is the outcome ≥ 0.5 (RouterBench's tasks grade
0/1 except MT-Bench, whose judge score it scales to [0, 1]). The outcome is not stored as a
``score``: strategies see a drawn sample's score, and this one is the verdict itself.

RouterBench publishes pickles. A pickle runs code when it is loaded, so it is read only when
the user says the file is trusted (``--trust-pickle``); parquet and CSV need no such word.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from uisbench.errors import UisbenchError
from uisbench.importers.base import Converted, Format, as_text, money
from uisbench.store.bankfile import FlatRow

RESPONSE, COST = "|model_response", "|total_cost"
CORRECT_AT = 0.5


def _columns(path: Path) -> list[str] | None:
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.read_schema(path).names
    if path.suffix == ".csv":
        return list(pd.read_csv(path, nrows=0).columns)
    return None


def detect(path: Path) -> bool:
    if not path.is_file():
        return False
    cols = _columns(path) if path.suffix in (".parquet", ".csv") else None
    if cols is None:
        return path.suffix in (".pkl", ".pickle") and "routerbench" in path.name.lower()
    return {"prompt", "eval_name"} <= set(cols) and any(c.endswith(RESPONSE) for c in cols)


def _frame(path: Path, trust_pickle: bool) -> pd.DataFrame:
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    if path.suffix == ".csv":
        return pd.read_csv(path)
    if path.suffix in (".pkl", ".pickle"):
        if not trust_pickle:
            raise UisbenchError(
                f"{path.name} is a pickle, which runs code when loaded; convert it to parquet, "
                "or pass --trust-pickle if you trust its origin"
            )
        return pd.read_pickle(path)
    raise UisbenchError(f"{path.name}: RouterBench tables are .pkl, .parquet or .csv")


def read(path: Path, trust_pickle: bool = False, **_: Any) -> Converted:
    df = _frame(path, trust_pickle)
    models = [c[: -len(RESPONSE)] for c in df.columns if c.endswith(RESPONSE)]
    missing = {"prompt", "eval_name"} - set(df.columns) or [m for m in models if m not in df]
    if missing or not models:
        raise UisbenchError(
            f"{path.name}: not a RouterBench table (needs prompt, eval_name and per model "
            f"MODEL, MODEL{RESPONSE}, MODEL{COST}; missing {_names(missing)})"
        )
    ids = df["sample_id"] if "sample_id" in df else pd.Series(range(len(df)), index=df.index)
    rows = []
    for m in models:
        cost = df[m + COST] if m + COST in df else pd.Series([None] * len(df), index=df.index)
        for qid, task, prompt, outcome, text, usd in zip(
            ids, df["eval_name"], df["prompt"], df[m], df[m + RESPONSE], cost
        ):
            rows.append(_row(str(qid), str(task), prompt, m, outcome, text, usd))
    return Converted(
        rows=rows, models={m: {} for m in models}, source=f"RouterBench table {path.name}"
    )


def _names(missing: Any) -> str:
    return ", ".join(map(str, missing)) or "models"


def _row(
    qid: str, task: str, prompt: Any, model: str, outcome: Any, text: Any, usd: Any
) -> FlatRow:
    value = float(outcome) if outcome is not None and pd.notna(outcome) else 0.0
    response = (
        None if text is None or (isinstance(text, float) and pd.isna(text)) else as_text(text)
    )
    return FlatRow(
        task=task,
        query_id=qid,
        split=None,
        prompt=as_text(prompt),
        reference=None,
        model=model,
        sample=0,
        answer=None,
        correct=value >= CORRECT_AT,
        input_tokens=None,
        output_tokens=None,
        cost_usd=money(usd) if usd is not None and pd.notna(usd) else None,
        latency_s=None,
        logprob=None,
        text=response,
    )


FORMAT = Format(
    "routerbench", "RouterBench wide table (.parquet, .csv; .pkl if trusted)", detect, read
)
