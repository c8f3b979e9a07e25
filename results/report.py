"""Terminal output: the report table per task, bank summaries and registry listings (rich)."""

from __future__ import annotations

import math
import sys

import pandas as pd
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from uisbench.costs import PARAM_CALLS_NOTE
from uisbench.errors import UisbenchError
from uisbench.tasks import task_note

SMOKE_LABEL = " [SMOKE TASK: checks the harness, not a benchmark of record]"

# Wide enough for configuration labels when output goes to a file or a CI log.
console = Console(width=None if sys.stdout.isatty() else 160)

#: The report table's columns and their justification.
REPORT_COLUMNS = [
    ("strategy configuration", "left"),
    ("accuracy [95% CI]", "right"),
    ("samples/q", "right"),
    ("FLOPs/q", "right"),
    ("$/q", "right"),
    ("queries×seeds", "right"),
]
CALLS_COLUMN = ("param-calls/q", "right")
#: The bank summary's columns: the model, then its figures (right-justified).
BANK_INFO_COLUMNS = [
    "model",
    "queries",
    "samples/query",
    "accuracy",
    "mean in tok",
    "mean out tok",
    "mean $/sample",
]


def add_row(table: Table, *cells: str) -> None:
    """Cells are data (model names, labels, descriptions): never read them as rich markup."""
    table.add_row(*(escape(c) for c in cells))


def _num(x: float, fmt: str = "{:.3g}") -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else fmt.format(x)


def print_report(engine, task: str | None = None, include_synthetic: bool = False) -> None:
    """One table per (bank, task) of complete runs: accuracy with its CI and mean costs."""
    from uisbench.results.aggregate import load_decisions, summarize

    df = load_decisions(engine, task, include_synthetic)
    if df.empty:
        where = (f" for task {task!r}" if task else "") + " in the database"
        if not include_synthetic and not load_decisions(engine, task, True).empty:
            raise UisbenchError(
                f"only runs on synthetic banks{where}; pass --include-synthetic to show them"
            )
        raise UisbenchError("no complete runs" + where)
    summary = summarize(df)
    for (bank, task_name, cache), g in summary.groupby(["bank", "task", "prefix_cache"]):
        synthetic = bool(df.loc[df["bank"] == bank, "synthetic"].any())
        title = (
            f"{task_name} — bank {bank} — prefix cache {cache}"
            + (" [SYNTHETIC: speed test only]" if synthetic else "")
            + (SMOKE_LABEL if task_note(task_name).smoke else "")
        )
        console.print(_report_table(title, g))
        if outcomes_only(g):
            console.print(escape(PARAM_CALLS_NOTE))


def _report_table(title: str, summary: pd.DataFrame) -> Table:
    """Rows of :func:`summarize` for one (bank, task), by family then cost; an outcomes-only
    bank gets a column of parameter-weighted calls."""
    calls = outcomes_only(summary)
    table = Table(title=escape(title), title_justify="left")
    flops = (f"FLOPs/q ({summary['prefix_cache'].iloc[0]})", "right")
    columns = [c if c[0] != "FLOPs/q" else flops for c in REPORT_COLUMNS[:-1]]
    columns += ([CALLS_COLUMN] if calls else []) + REPORT_COLUMNS[-1:]
    for col, just in columns:
        table.add_column(col, justify=just)
    for _, r in summary.sort_values(["family", "dollars", "flops", "param_calls"]).iterrows():
        name = r["config_label"] + ("  (upper bound)" if r["upper_bound"] else "")
        add_row(
            table,
            name,
            f"{r['accuracy']:.3f} [{r['ci_low']:.3f}, {r['ci_high']:.3f}]",
            f"{r['samples_per_query']:.2f}",
            _num(r["flops"]),
            _num(r["dollars"]),
            *([_num(r["param_calls"])] if calls else []),
            f"{r['n_queries']}×{r['n_seeds']}",
        )
    return table


def outcomes_only(configs: pd.DataFrame) -> bool:
    """No configuration has FLOPs or dollars, but parameter-weighted calls are known."""
    return bool(
        configs["flops"].isna().all()
        and configs["dollars"].isna().all()
        and configs["param_calls"].notna().any()
    )


def print_bank_info(df: pd.DataFrame) -> None:
    """One table per (bank, task): each model's queries, samples, accuracy and mean costs."""
    for (bank, task), g in df.groupby(["bank", "task"], sort=True):
        synthetic = bool(g["synthetic"].any())
        n_q = int(g["queries"].max())
        title = (
            f"bank {bank} — task {task}: {len(g)} models × {n_q} queries"
            + (" [SYNTHETIC]" if synthetic else "")
            + (SMOKE_LABEL if task_note(task).smoke else "")
        )
        table = Table(title=escape(title), title_justify="left")
        for col in BANK_INFO_COLUMNS:
            table.add_column(col, justify="left" if col == "model" else "right")
        for _, r in g.iterrows():
            add_row(
                table,
                r["model"],
                str(r["queries"]),
                f"{r['samples_per_query']:.2f}",
                f"{r['accuracy']:.3f}",
                _num(r["input_tokens"], "{:.1f}"),
                _num(r["output_tokens"], "{:.1f}"),
                _num(r["cost_usd"], "{:.3g}"),
            )
        console.print(table)
