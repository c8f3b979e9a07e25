"""``uisbench results export --out F.csv``: the per-query outcomes as one flat CSV table for a
spreadsheet or pandas (the JSON result file stays what ``compare`` and ``gate`` read)."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

from uisbench.results.export import ResultSet

#: Columns of the CSV: the run's identity, then one query's outcome and costs.
CSV_COLUMNS = [
    "bank",
    "bank_digest",
    "task",
    "configuration",
    "strategy",
    "seed",
    "prefix_cache",
    "query",
    "correct",
    "flops",
    "dollars",
    "tokens",
    "latency_s",
]
#: A cell a spreadsheet would read as a formula (CSV injection) gets a leading quote.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: object) -> object:
    if isinstance(value, float) and math.isnan(value):
        return ""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def to_csv(data: ResultSet) -> str:
    buf = io.StringIO()
    out = csv.writer(buf, lineterminator="\n")
    out.writerow(CSV_COLUMNS)
    for run in data.runs:
        head = [data.bank, data.digest, run.task, run.config, run.strategy, run.seed]
        head.append(run.prefix_cache or "")
        for row in run.queries.itertuples(index=False):
            values = [row.query, int(row.correct), row.flops, row.dollars, row.tokens]
            out.writerow([_cell(v) for v in head + values + [row.latency_s]])
    return buf.getvalue()


def write_csv(data: ResultSet, path: Path) -> None:
    """Write atomically: a reader never sees half a table."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    try:
        tmp.write_text(to_csv(data), encoding="utf-8")
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
