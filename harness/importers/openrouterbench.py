"""OpenRouterBench result records (ynulihao/OpenRouterBench, ``baselines/data_loader.py``).

``results/bench/<dataset>/<split>/<model>/*.json``: each file holds ``dataset_name``,
``split``, ``model_name`` and ``records``, each with ``index``, ``prompt``, ``prediction``,
``ground_truth``, ``score``, ``prompt_tokens``, ``completion_tokens`` and ``cost`` (USD).
Like OpenRouterBench's loader, files marked ``demo`` are skipped and only the newest file per
(dataset, split, model) is read. ``correct`` is ``score`` ≥ 0.5 (its scores are 0/1 for most
datasets); the score is not stored as a sample score (it is the verdict).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from uisbench.errors import UisbenchError
from uisbench.importers.base import Converted, Format, as_text, count, money, read_json
from uisbench.store.bankfile import FlatRow

CORRECT_AT = 0.5
_KEYS = ("dataset_name", "split", "model_name", "records")
_STAMP = re.compile(r"(\d{8})_(\d{6})\.json$")


def _is_record_file(path: Path) -> bool:
    try:
        with path.open("rb") as f:
            head = f.read(65536)
    except OSError:
        return False
    return all(f'"{k}"'.encode() in head for k in _KEYS[:3])


def detect(path: Path) -> bool:
    if path.is_file():
        return path.suffix == ".json" and _is_record_file(path)
    return path.is_dir() and any(_is_record_file(p) for p in path.rglob("*.json"))


def _newest(files: list[tuple[Path, dict]]) -> dict:
    def stamp(item: tuple[Path, dict]) -> tuple[int, str]:
        m = _STAMP.search(item[0].name)
        return (int(m[1] + m[2]) if m else 0, item[0].name)

    return max(files, key=stamp)[1]


def read(path: Path, **_: Any) -> Converted:
    files = [path] if path.is_file() else sorted(path.rglob("*.json"))
    groups: dict[tuple, list[tuple[Path, dict]]] = {}
    for f in files:
        if not _is_record_file(f):
            continue
        data = read_json(f)
        if not isinstance(data, dict) or data.get("demo", False):
            continue
        if any(k not in data for k in _KEYS):
            raise UisbenchError(f"{f.name}: an OpenRouterBench file needs {', '.join(_KEYS)}")
        key = (data["dataset_name"], data["split"], data["model_name"])
        groups.setdefault(key, []).append((f, data))
    conv = Converted(rows=[], source="OpenRouterBench results/bench records")
    for (dataset, _split, model), found in sorted(groups.items()):
        data = _newest(found)
        conv.models.setdefault(str(model), {})
        for rec in data["records"]:
            conv.rows.append(_row(str(dataset), str(model), rec))
    return conv


def _row(dataset: str, model: str, rec: dict) -> FlatRow:
    if not isinstance(rec, dict) or "index" not in rec:
        raise UisbenchError(f"OpenRouterBench {dataset}/{model}: a record without an index")
    score = rec.get("score")
    value = float(score) if isinstance(score, (int, float)) and not isinstance(score, bool) else 0.0
    prediction = rec.get("prediction")
    return FlatRow(
        task=dataset,
        query_id=str(rec["index"]),
        split=None,
        prompt=as_text(rec.get("prompt") or rec.get("origin_query")),
        reference=as_text(rec.get("ground_truth")),
        model=model,
        sample=0,
        answer=None if prediction is None else as_text(prediction),
        correct=value >= CORRECT_AT,
        input_tokens=count(rec.get("prompt_tokens")),
        output_tokens=count(rec.get("completion_tokens")),
        cost_usd=money(rec.get("cost")),
        latency_s=None,
        logprob=None,
        text=None if rec.get("raw_output") is None else as_text(rec.get("raw_output")),
    )


FORMAT = Format(
    "openrouterbench",
    "OpenRouterBench results/bench/<dataset>/<split>/<model>/*.json",
    detect,
    read,
)
