"""inspect_ai eval logs (``.eval`` or ``.json``), read with inspect_ai's own log API.

Each sample of each epoch becomes one bank sample (epoch e → sample index e − 1); the first
scorer's value gives ``correct`` (inspect's ``value_to_float``: C → 1, I → 0; correct only at
1), its ``answer`` the extracted answer (the completion when the scorer gives none);
``model_usage`` gives tokens, the sample's ``total_time`` the latency.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

from uisbench.errors import UisbenchError
from uisbench.importers.base import Converted, Format, as_text
from uisbench.store.bankfile import FlatRow


def detect(path: Path) -> bool:
    if path.is_dir():
        return any(_logs(path))
    if path.suffix == ".eval":
        return zipfile.is_zipfile(path)
    if path.suffix == ".json":
        with path.open("rb") as f:
            head = f.read(4096)
        return b'"eval"' in head and b'"version"' in head and b'"status"' in head
    return False


def _logs(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    return sorted(p for p in path.iterdir() if p.suffix == ".eval" and zipfile.is_zipfile(p))


def read(path: Path, model: str | None = None, **_: Any) -> Converted:
    try:
        from inspect_ai.log import read_eval_log
        from inspect_ai.scorer import value_to_float
    except ImportError:
        raise UisbenchError(
            "reading inspect_ai logs needs inspect_ai: pip install -e '.[inspect]' in a clone of "
            "uisbench (or pip install inspect-ai)"
        ) from None
    conv = Converted(rows=[], source="inspect_ai eval log")
    to_float = value_to_float()
    for log_path in _logs(path):
        try:
            log = read_eval_log(str(log_path))
        except Exception as exc:  # noqa: BLE001 - inspect raises many kinds on a bad file
            raise UisbenchError(f"{log_path.name}: not a readable inspect_ai log ({exc})") from None
        name = model or str(log.eval.model)
        conv.models.setdefault(name, {})
        task = str(log.eval.task).split("/")[-1]
        for s in log.samples or []:
            conv.rows.append(_row(s, task, name, to_float))
    return conv


def _row(s: Any, task: str, model: str, to_float: Any) -> FlatRow:
    score = next(iter((s.scores or {}).values()), None)
    if score is None:
        raise UisbenchError(f"inspect sample {s.id}: no score (run the log with a scorer)")
    completion = s.output.completion if s.output is not None else ""
    usage = next(iter((s.model_usage or {}).values()), None)
    return FlatRow(
        task=task,
        query_id=str(s.id),
        split=None,
        prompt=as_text(s.input if isinstance(s.input, str) else [m.model_dump() for m in s.input]),
        reference=as_text(s.target),
        model=model,
        sample=int(s.epoch) - 1,
        answer=score.answer if score.answer is not None else completion,
        correct=to_float(score.value) == 1.0,
        input_tokens=getattr(usage, "input_tokens", None),
        output_tokens=getattr(usage, "output_tokens", None),
        cost_usd=None,
        latency_s=getattr(s, "total_time", None),
        logprob=None,
        text=completion,
    )


FORMAT = Format("inspect", "inspect_ai eval logs (.eval or .json), epochs as samples", detect, read)
