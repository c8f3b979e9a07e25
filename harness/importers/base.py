"""What every importer returns and how it is described."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from uisbench.errors import UisbenchError
from uisbench.store.bankfile import FlatRow


@dataclass
class Converted:
    """A foreign bank as flat records, its models (``models.json`` units) and provenance."""

    rows: list[FlatRow]
    models: dict[str, dict[str, Any]] = field(default_factory=dict)
    source: str = ""
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Format:
    """One importer: ``detect(path)`` says whether the content is unambiguously this format;
    ``read(path, **options)`` converts it."""

    name: str
    description: str
    detect: Callable[[Path], bool]
    read: Callable[..., Converted]


def read_json(path: Path) -> Any:
    """A JSON file as Python values, or one clear error (invalid UTF-8, JSON or nesting)."""
    try:
        return json.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError:
        raise UisbenchError(f"{path.name}: not UTF-8 text") from None
    except (json.JSONDecodeError, RecursionError) as exc:
        raise UisbenchError(f"{path.name}: invalid JSON ({type(exc).__name__})") from None


def as_text(value: Any) -> str:
    """A prompt or answer as text: strings as they are, chat turns joined, anything else JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, dict) and "content" in v for v in value):
        return "\n".join(str(v["content"]) for v in value)
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def count(value: Any) -> int | None:
    """A token count as an int, None when absent or not a count."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return int(value) if value >= 0 and float(value).is_integer() else None


def money(value: Any) -> float | None:
    """A cost in USD as a float, None when absent or not a number."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def read_jsonl(path: Path) -> list[dict]:
    """A JSON-lines file as objects; a bad line is one clear error naming it."""
    out = []
    with path.open("rb") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
                raise UisbenchError(f"{path.name}: line {lineno}: {type(exc).__name__}") from None
            if not isinstance(obj, dict):
                raise UisbenchError(f"{path.name}: line {lineno}: expected a JSON object")
            out.append(obj)
    return out
