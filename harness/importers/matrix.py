"""A correctness matrix: prompt × model outcomes (RouteLLM, EmbedLLM, RouterEval style).

A CSV or parquet table with one row per prompt: a ``prompt`` column, optionally ``query_id``
(or ``prompt_id``, ``id``) and ``task`` (or ``dataset``), and one column of 0/1 (or true/false)
per model. Outcomes only: no answers, tokens or costs, so strategies that vote cannot run on it
and a cost unit needs ``--models`` with parameter counts or prices.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from uisbench.errors import UisbenchError
from uisbench.importers.base import Converted, Format, as_text
from uisbench.store.bankfile import FlatRow

ID_COLUMNS = ("query_id", "prompt_id", "id", "sample_id")
TASK_COLUMNS = ("task", "dataset", "eval_name")


def _frame(path: Path, nrows: int | None = None) -> pd.DataFrame:
    if path.suffix == ".parquet":
        df = pd.read_parquet(path)
        return df.head(nrows) if nrows else df
    if path.suffix == ".csv":
        return pd.read_csv(path, nrows=nrows)
    raise UisbenchError(f"{path.name}: a correctness matrix is a .csv or .parquet table")


def _model_columns(df: pd.DataFrame) -> list[str]:
    meta = {"prompt", *ID_COLUMNS, *TASK_COLUMNS}
    return [c for c in df.columns if c not in meta and not str(c).startswith("Unnamed")]


def _binary(col: pd.Series) -> bool:
    values = set(col.dropna().unique().tolist())
    return bool(values) and values <= {0, 1}


def detect(path: Path) -> bool:
    if not path.is_file() or path.suffix not in (".csv", ".parquet"):
        return False
    df = _frame(path, nrows=200)
    models = _model_columns(df)
    return "prompt" in df.columns and bool(models) and all(_binary(df[m]) for m in models)


def read(path: Path, task: str | None = None, **_: Any) -> Converted:
    df = _frame(path)
    models = _model_columns(df)
    if "prompt" not in df.columns or not models:
        raise UisbenchError(f"{path.name}: a correctness matrix needs a prompt column and models")
    bad = [m for m in models if not _binary(df[m])]
    if bad:
        raise UisbenchError(f"{path.name}: model columns must hold 0/1 outcomes: {', '.join(bad)}")
    id_col = next((c for c in ID_COLUMNS if c in df.columns), None)
    task_col = next((c for c in TASK_COLUMNS if c in df.columns), None)
    ids = df[id_col].astype(str) if id_col else pd.Series(range(len(df))).astype(str)
    tasks = df[task_col].astype(str) if task_col else pd.Series([task or path.stem] * len(df))
    rows = []
    for m in models:
        for qid, t, prompt, ok in zip(ids, tasks, df["prompt"], df[m]):
            if pd.isna(ok):
                continue  # not evaluated: no sample
            rows.append(
                FlatRow(
                    task=t,
                    query_id=qid,
                    split=None,
                    prompt=as_text(prompt),
                    reference=None,
                    model=str(m),
                    sample=0,
                    answer=None,
                    correct=bool(ok),
                    input_tokens=None,
                    output_tokens=None,
                    cost_usd=None,
                    latency_s=None,
                    logprob=None,
                )
            )
    return Converted(rows=rows, models={str(m): {} for m in models}, source=f"matrix {path.name}")


FORMAT = Format(
    "correctness-matrix", "prompt × model 0/1 outcomes (.csv or .parquet)", detect, read
)
