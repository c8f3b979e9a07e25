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
    "test accuracy",
    "train accuracy",
    "accuracy (all)",
    "mean in tok",
    "mean out tok",
    "mean $/sample",
]


def add_row(table: Table, *cells: str) -> None:
    """Cells are data (model names, labels, descriptions): never read them as rich markup."""
    table.add_row(*(escape(c) for c in cells))


def _num(x: float | None, fmt: str = "{:.3g}") -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else fmt.format(x)


def print_report(
    engine, task: str | None = None, include_synthetic: bool = False, full: bool = False
) -> None:
    """Per (bank, task), the verdict first: each family's best configuration, its AIQ and its
    accuracy at each single model's cost with the paired interval, and the claim the site
    makes; with ``full`` then every configuration's accuracy and costs."""
    from uisbench.results.leaderboard import leaderboard

    boards = [b for b in leaderboard(engine, include_synthetic)[1] if task in (None, b.task)]
    if not boards:
        where = (f" for task {task!r}" if task else "") + " in the database"
        if not include_synthetic and any(
            task in (None, b.task) for b in leaderboard(engine, True)[1]
        ):
            raise UisbenchError(
                f"only runs on synthetic banks{where}; pass --include-synthetic to show them"
            )
        raise UisbenchError("no complete runs" + where)
    for board in sorted(boards, key=lambda b: (b.bank, b.task, b.prefix_cache)):
        title = (
            f"{board.task} — bank {board.bank} — prefix cache {board.prefix_cache}"
            + (" [SYNTHETIC: speed test only]" if board.synthetic else "")
            + (SMOKE_LABEL if task_note(board.task).smoke else "")
        )
        console.print(verdict_table(title, board))
        for line in verdict_lines(board):
            console.print(escape(line), soft_wrap=True)
        configs = board.configs
        if full:
            table, dropped = _report_table(title + " — every configuration", configs)
            console.print(table)
            for line in dropped:
                console.print(escape(line), soft_wrap=True)
            if outcomes_only(configs):
                console.print(escape(PARAM_CALLS_NOTE))
        else:
            console.print(
                f"({len(configs)} configurations; `uisbench report --all` lists each with its "
                "costs)"
            )


def short_config(label: str) -> str:
    """A configuration label with only the options that differ from the strategy's defaults
    (``t2:budget=8.0,metric=maj,...`` → ``t2:budget=8.0``); a label of an unknown strategy, or
    one that does not parse, as it is. Only a shipped strategy's: a plugin's defaults are in
    its module, untrusted code that this process never imports (its runs were isolated)."""
    import dataclasses
    import re

    from uisbench.errors import UisbenchError
    from uisbench.strategies.base import STRATEGIES

    name, _, body = label.partition(":")
    try:
        shipped = name in STRATEGIES and STRATEGIES.shipped(name)
    except UisbenchError:  # registered twice: neither runs
        shipped = False
    if not body or not shipped:
        return label
    defaults = {
        f.name: f.default
        for f in dataclasses.fields(STRATEGIES.get(name).Params)
        if f.default is not dataclasses.MISSING
    }
    kept = []
    for part in re.split(r",(?=[A-Za-z_][A-Za-z0-9_]*=)", body):
        key, eq, value = part.partition("=")
        if not eq:
            return label
        if key not in defaults or str(defaults[key]) != value:
            kept.append(part)
    return f"{name}:{','.join(kept)}" if kept else name


def _acc_ci(acc: float, lo: float, hi: float) -> str:
    return f"{acc:.3f} [{lo:.3f}, {hi:.3f}]"


def _gain(row) -> str:
    if not math.isfinite(row["accuracy"]):
        return "—"
    g, lo, hi = (100 * row[c] for c in ("gain", "gain_low", "gain_high"))
    return f"{100 * row['accuracy']:.1f}% ({g:+.1f} [{lo:+.1f}, {hi:+.1f}] pp)"


def verdict_table(title: str, board) -> Table:
    """One row per family: best configuration, AIQ, best accuracy, and at each single model's
    cost its hull's accuracy with the paired gain over that model."""
    from uisbench.results.leaderboard import UNITS

    u = board.unit
    table = Table(title=escape(title), title_justify="left")
    table.add_column("family")
    table.add_column("best configuration", overflow="fold", min_width=24)
    table.add_column(f"AIQ ({u})", justify="right")
    table.add_column("best accuracy [95% CI]", justify="right")
    budget = board.budget
    singles = list(dict.fromkeys(budget["budget_of"])) if len(budget) else []
    for single in singles:
        table.add_column(
            f"at {short_config(single).removeprefix('single:model=')}'s cost", justify="right"
        )
    for _, f in board.families.iterrows():
        family = f["family"] + (" (upper bound)" if f["upper_bound"] else "")
        cells = [
            family,
            short_config(str(f["best_config"])),
            _num(f[f"aiq_{u}"], "{:.3f}").replace("n/a", "—"),
            _acc_ci(f["best_accuracy"], f["best_ci_low"], f["best_ci_high"]),
        ]
        for single in singles:
            row = budget[(budget["budget_of"] == single) & (budget["group"] == f["family"])]
            cells.append(_gain(row.iloc[0]) if len(row) else "")
        add_row(table, *cells)
    table.caption = escape(
        f"AIQ over {UNITS[u]}; at a model's cost: the family's hull accuracy there "
        "(gain over that model, paired 95% interval, percentage points)"
    )
    table.caption_justify = "left"
    return table


def verdict_lines(board) -> list[str]:
    """The claim the site makes at each single model's cost, then why any figure is "—"."""
    lines = []
    budget = board.budget
    claims = budget[budget["claim"] != ""] if len(budget) else budget
    best = claims[claims["best"]] if len(claims) else claims
    for _, r in best.iterrows():
        single = short_config(r["budget_of"]).removeprefix("single:model=")
        lines.append(f"Claim: at {single}'s cost, {r['group']} is {r['claim']}.")
    if len(budget) and not len(best):
        lines.append(
            "Claim: no family is shown best at any single model's cost "
            "(the site's Holm-adjusted tests withhold every such claim)."
        )
    return lines + dash_reasons(board)


def dash_reasons(board) -> list[str]:
    """One line per reason a figure shows "—": AIQ, APGR and CPT, the budget comparison."""
    from uisbench.results.leaderboard import SINGLE, UNITS

    u = board.unit
    lines = list(board.notes)
    configs = board.configs
    single = configs[(configs["strategy"] == SINGLE) & configs[u].notna()]
    if len(single) < 2:
        lines.append(
            f"APGR and CPT: — because {len(single)} single model(s) with a {UNITS[u]} figure "
            "ran on this task; they need the weakest and the strongest."
        )
    elif not len(board.curves) and not any(n.startswith("APGR is undefined") for n in lines):
        lines.append("APGR and CPT: — because the single models' costs leave no gap to recover.")
    if len(budget := board.budget) and budget["accuracy"].isna().any():
        lines.append(
            "At a model's cost: — where the family cannot spend that little "
            "(its cheapest configuration costs more than that model)."
        )
    if not len(single):
        lines.append("At a model's cost: no single model ran, so there is no budget to compare at.")
    costs = configs[u].dropna()
    if len(costs) and costs.min() == costs.max():
        lines.append(
            f"AIQ: — because every configuration costs the same {UNITS[u]}: there is no cost "
            "range to average accuracy over."
        )
        return lines
    no_cost = board.strategies[board.strategies[f"aiq_{u}"].isna()]
    for name in no_cost["strategy"]:
        lines.append(
            f"AIQ of {name}: — because none of its configurations has a {UNITS[u]} figure."
        )
    return lines


def _report_table(title: str, summary: pd.DataFrame) -> tuple[Table, list[str]]:
    """Rows of :func:`summarize` for one (bank, task), by family then cost; an outcomes-only
    bank gets a column of parameter-weighted calls. Columns empty for the whole task are left
    out; the lines returned say which and why."""
    calls = outcomes_only(summary)
    table = Table(title=escape(title), title_justify="left")
    flops = (f"FLOPs/q ({summary['prefix_cache'].iloc[0]})", "right")
    columns = [c if c[0] != "FLOPs/q" else flops for c in REPORT_COLUMNS[:-1]]
    columns += ([CALLS_COLUMN] if calls else []) + REPORT_COLUMNS[-1:]
    dropped, why = set(), []
    if summary["flops"].isna().all():
        dropped.add(flops[0])
        why.append("no FLOPs: a model's parameter count is undisclosed; FLOPs/q omitted")
    if summary["dollars"].isna().all():
        dropped.add("$/q")
        why.append("no prices: the pool has no prices and the bank recorded no cost; $/q omitted")
    keep = [c for c in columns if c[0] not in dropped]
    for col, just in keep:
        table.add_column(col, justify=just)
    for _, r in summary.sort_values(["family", "dollars", "flops", "param_calls"]).iterrows():
        name = short_config(r["config_label"]) + ("  (upper bound)" if r["upper_bound"] else "")
        cells = {
            "strategy configuration": name,
            "accuracy [95% CI]": f"{r['accuracy']:.3f} [{r['ci_low']:.3f}, {r['ci_high']:.3f}]",
            "samples/q": f"{r['samples_per_query']:.2f}",
            flops[0]: _num(r["flops"]),
            "$/q": _num(r["dollars"]),
            CALLS_COLUMN[0]: _num(r["param_calls"]),
            "queries×seeds": f"{r['n_queries']}×{r['n_seeds']}",
        }
        add_row(table, *(cells[c] for c, _ in keep))
    return table, why


def outcomes_only(configs: pd.DataFrame) -> bool:
    """No configuration has FLOPs or dollars, but parameter-weighted calls are known."""
    return bool(
        configs["flops"].isna().all()
        and configs["dollars"].isna().all()
        and configs["param_calls"].notna().any()
    )


def split_accuracy(conn, bank: str | None = None) -> pd.DataFrame:
    """Per bank, task, model and the source's split (train, test, or "" where it has none):
    the share of samples correct."""
    from sqlalchemy import func, select

    from uisbench.store import schema
    from uisbench.store.dialect import bool_mean

    split = func.coalesce(schema.queries.c.split, "").label("split")
    q = (
        select(
            schema.banks.c.name.label("bank"),
            schema.tasks.c.name.label("task"),
            schema.models.c.name.label("model"),
            split,
            bool_mean(schema.samples.c.correct).label("accuracy"),
        )
        .join(schema.banks, schema.samples.c.bank_id == schema.banks.c.id)
        .join(schema.queries, schema.samples.c.query_id == schema.queries.c.id)
        .join(schema.tasks, schema.queries.c.task_id == schema.tasks.c.id)
        .join(schema.models, schema.samples.c.model_id == schema.models.c.id)
        .group_by(schema.banks.c.name, schema.tasks.c.name, schema.models.c.name, split)
    )
    if bank:
        q = q.where(schema.banks.c.name == bank)
    return pd.DataFrame(conn.execute(q).mappings().all())


def print_bank_info(df: pd.DataFrame, splits: pd.DataFrame | None = None) -> None:
    """One table per (bank, task): each model's queries, samples, accuracy on the test and the
    train split apart (a strategy is fitted on one and scored on the other) and mean costs."""
    by_split: dict = {}
    if splits is not None and len(splits):
        for _, r in splits.iterrows():
            by_split[(r["bank"], r["task"], r["model"], r["split"])] = float(r["accuracy"])
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
                _num(by_split.get((bank, task, r["model"], "test")), "{:.3f}"),
                _num(by_split.get((bank, task, r["model"], "train")), "{:.3f}"),
                f"{r['accuracy']:.3f}",
                _num(r["input_tokens"], "{:.1f}"),
                _num(r["output_tokens"], "{:.1f}"),
                _num(r["cost_usd"], "{:.3g}"),
            )
        console.print(table)
        if not any(k[:2] == (bank, task) and k[3] in ("train", "test") for k in by_split):
            console.print(
                "The source has no train/test split: runs split the queries by --split-seed."
            )
