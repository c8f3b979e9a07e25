"""Banks from the field's formats: lm-eval, inspect_ai, RouterBench, OpenRouterBench and
correctness matrices.

Each importer reads a foreign file or folder and returns the records of the flat format
(:class:`uisbench.store.bankfile.FlatRow`) with the models' metadata. ``uisbench bank import
--format F`` writes them through the one import path flat files take (validation, conflict
rules, content digest), so an imported bank is the bank a flat file with the same content
gives; ``uisbench bank convert`` writes that flat file instead. The flat format and
``models.json`` are documented in ``docs/BANK_FORMAT.md``.

Files are untrusted input: nothing in them is executed (pickles are refused unless the user
says the file is trusted; lm-eval configs holding Python functions are refused). The heavy
readers (lm-eval, inspect_ai) are imported only when their format is read.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

from uisbench.errors import UisbenchError
from uisbench.importers import inspect_log, lm_eval_output, matrix, openrouterbench, routerbench
from uisbench.importers.base import Converted, Format
from uisbench.store.bankfile import row_to_json

#: Importers by ``--format`` name (``flat`` is the native format, read by the import path).
FORMATS: dict[str, Format] = {
    f.name: f
    for f in (
        lm_eval_output.FORMAT,
        inspect_log.FORMAT,
        routerbench.FORMAT,
        openrouterbench.FORMAT,
        matrix.FORMAT,
    )
}

__all__ = [
    "FORMATS",
    "Converted",
    "Format",
    "convert",
    "cost_unit_hint",
    "detect_format",
    "with_models",
    "write_flat",
]


def detect_format(path: Path) -> str:
    """The one format whose detector accepts ``path``; refused when none or several do."""
    if not path.exists():
        raise UisbenchError(f"no such file or folder: {path}")
    hits = [name for name, f in FORMATS.items() if f.detect(path)]
    if len(hits) == 1:
        return hits[0]
    if not hits:
        raise UisbenchError(
            f"{path.name}: format not recognised; name it with --format "
            f"({', '.join(['flat', *FORMATS])})"
        )
    raise UisbenchError(f"{path.name}: ambiguous format ({', '.join(hits)}); name it with --format")


def convert(path: Path, fmt: str, **options: Any) -> Converted:
    """Read ``path`` as ``fmt`` (``auto``: detected)."""
    if fmt == "auto":
        fmt = detect_format(path)
    if fmt not in FORMATS:
        raise UisbenchError(f"unknown format {fmt!r} (formats: {', '.join(['flat', *FORMATS])})")
    if not path.exists():
        raise UisbenchError(f"no such file or folder: {path}")
    conv = FORMATS[fmt].read(path, **options)
    if not conv.rows:
        raise UisbenchError(f"{path.name}: no samples found in this {fmt} input")
    return conv


def write_flat(conv: Converted, out: Path) -> tuple[Path, Path | None]:
    """Write ``NAME.jsonl[.gz]``, ``NAME.models.json`` (when there are models) and
    ``NAME.bank.json`` (provenance) side by side; returns the bank and models paths."""
    stem = out.name.split(".jsonl")[0]
    opener = gzip.open if out.suffix == ".gz" else open
    with opener(out, "wt", encoding="utf-8") as f:
        for row in conv.rows:
            f.write(row_to_json(row) + "\n")
    models_path = None
    if conv.models:
        models_path = out.parent / f"{stem}.models.json"
        models_path.write_text(json.dumps(conv.models, indent=1), encoding="utf-8")
    if conv.source:
        meta = {"source": conv.source}
        (out.parent / f"{stem}.bank.json").write_text(json.dumps(meta, indent=1), "utf-8")
    return out, models_path


def cost_unit_hint(models: list[str]) -> str | None:
    """One line naming the models with no computable cost unit and what to add, or None."""
    if not models:
        return None
    shown = ", ".join(models[:5]) + (f" and {len(models) - 5} more" if len(models) > 5 else "")
    return (
        f"note: no cost unit is computable for {shown}: neither recorded costs, prices with "
        "token counts nor parameter counts; add them with --models NAME.models.json (params_b, "
        "or price_in_per_mtok and price_out_per_mtok) — see docs/BANK_FORMAT.md"
    )


def with_models(conv: Converted, models_path: Path | None) -> Converted:
    """The user's ``models.json`` over what the importer found (theirs wins per model)."""
    if models_path is None:
        return conv
    from uisbench.importers.base import read_json

    given = read_json(models_path)
    if not isinstance(given, dict):
        raise UisbenchError(f"{models_path.name}: expected an object mapping models to metadata")
    conv.models.update(given)
    return conv


def is_flat(path: Path) -> bool:
    """The native flat format: a ``.jsonl`` or ``.jsonl.gz`` file."""
    return path.is_file() and (path.name.endswith(".jsonl") or path.name.endswith(".jsonl.gz"))
