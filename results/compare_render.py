"""A comparison as a terminal table (rich), Markdown (a pull-request comment) and JUnit XML.

The three say the same thing: per (task, configuration) the accuracy and mean cost of both
sides, their paired changes with intervals, McNemar's p and the verdict.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from uisbench.results.compare import Comparison, PairedResult

HEADERS = [
    "task",
    "configuration",
    "queries",
    "accuracy (base → cand)",
    "Δ accuracy [CI]",
    "McNemar p",
    "mean cost (base → cand)",
    "Δ cost [CI]",
    "verdict",
]


def _pct(x: float) -> str:
    return "—" if math.isnan(x) else f"{100 * x:.1f}%"


def _signed_pct(x: float) -> str:
    return "—" if math.isnan(x) else f"{100 * x:+.1f}%"


def _points(x: float) -> str:
    """A change in accuracy, in percentage points."""
    return "—" if math.isnan(x) else f"{100 * x:+.1f} pp"


def _num(x: float) -> str:
    return "—" if math.isnan(x) else f"{x:.3g}"


MISSING = "FAIL missing in the candidate"


def verdict(r: PairedResult) -> str:
    parts = []
    if r.accuracy_regression:
        parts.append("FAIL accuracy")
    if r.cost_regression:
        parts.append("FAIL cost")
    return ", ".join(parts) or "ok"


def cells(r: PairedResult) -> list[str]:
    """One row of :data:`HEADERS` as text."""
    unit = f" {r.cost_unit}" if r.cost_unit else ""
    return [
        r.task,
        r.config,
        str(r.n_queries),
        f"{_pct(r.acc_baseline)} → {_pct(r.acc_candidate)}",
        f"{_points(r.d_acc)} [{_points(r.d_acc_low)}, {_points(r.d_acc_high)}]",
        f"{r.p_mcnemar:.3g} ({r.improved}↑ {r.worsened}↓)",
        f"{_num(r.cost_baseline)} → {_num(r.cost_candidate)}{unit}",
        f"{_signed_pct(r.d_cost)} [{_signed_pct(r.d_cost_low)}, {_signed_pct(r.d_cost_high)}]",
        verdict(r),
    ]


def missing_cells(task: str, config: str) -> list[str]:
    """A baseline configuration the candidate lacks: a failing row with nothing to pair."""
    return [task, config] + ["—"] * (len(HEADERS) - 3) + [MISSING]


def table_rows(cmp: Comparison) -> list[tuple[bool, list[str]]]:
    """(failed, cells) of every row, failing rows first (missing configurations among them),
    each group in the comparison's order."""
    rows = [(True, missing_cells(t, c)) for t, c in cmp.missing]
    rows += [(r.failed, cells(r)) for r in cmp.rows]
    return [r for r in rows if r[0]] + [r for r in rows if not r[0]]


def n_failures(cmp: Comparison) -> int:
    return sum(r.failed for r in cmp.rows) + len(cmp.missing)


def headline(cmp: Comparison, command: str = "compare") -> str:
    """The one verdict every rendering leads with: PASS or FAIL and why."""
    regressions = sum(r.failed for r in cmp.rows)
    if not cmp.failed:
        return f"uisbench {command}: PASS — no significant regression beyond tolerance"
    why = []
    if regressions:
        why.append(f"{regressions} regression(s)")
    if cmp.missing:
        why.append(f"{len(cmp.missing)} configuration(s) missing in the candidate")
    return f"uisbench {command}: FAIL — " + ", ".join(why)


def summary(cmp: Comparison) -> str:
    t = cmp.tolerances
    head = (
        f"{len(cmp.rows) + len(cmp.missing)} configuration(s) on bank {cmp.bank} "
        f"({cmp.digest[:19]}…): {n_failures(cmp)} failing; tolerances: accuracy drop "
        f"{100 * t.max_accuracy_drop:.1f} points, cost increase {100 * t.max_cost_increase:.1f}%; "
        f"family-wise α={t.alpha:g} (per test {cmp.level:.2g}, Bonferroni)"
    )
    if cmp.missing:
        head += "; missing in the candidate: " + ", ".join(f"{a} {b}" for a, b in cmp.missing)
    return head


def wide_console() -> Console:
    """A terminal's own width; 240 columns elsewhere (a CI log), so rows are not folded."""
    import sys

    return Console() if sys.stdout.isatty() else Console(width=240)


def print_table(cmp: Comparison, console: Console | None = None, command: str = "compare") -> None:
    console = console or wide_console()
    table = Table(title=f"uisbench {command} (candidate vs baseline, paired by query)")
    for h in HEADERS:
        table.add_column(h, overflow="fold")
    for failed, row in table_rows(cmp):
        table.add_row(*(escape(c) for c in row), style="bold red" if failed else None)
    console.print(table)
    console.print(escape(summary(cmp)), soft_wrap=True)
    console.print(headline(cmp, command), style="bold red" if cmp.failed else "bold green")


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|")


def to_markdown(cmp: Comparison, command: str = "compare") -> str:
    """A GitHub-flavoured Markdown table with a one-line summary (a pull-request comment)."""
    status = "❌ regression" if cmp.failed else "✅ no regression"
    lines = [f"### uisbench {command}: {status}", "", headline(cmp, command), "", summary(cmp), ""]
    lines.append("| " + " | ".join(HEADERS) + " |")
    lines.append("|" + "---|" * len(HEADERS))
    for _, row in table_rows(cmp):
        lines.append("| " + " | ".join(_md_escape(c) for c in row) + " |")
    return "\n".join(lines) + "\n"


def to_junit(cmp: Comparison, command: str = "compare") -> str:
    """JUnit XML: one test case per (task, configuration); a regression is a failure."""
    suites = ET.Element("testsuites")
    suite = ET.SubElement(
        suites,
        "testsuite",
        name=f"uisbench {command}",
        tests=str(len(cmp.rows) + len(cmp.missing)),
        failures=str(n_failures(cmp)),
        errors="0",
        skipped="0",
    )
    ET.SubElement(ET.SubElement(suite, "properties"), "property", name="bank", value=cmp.bank)
    for r in cmp.rows:
        case = ET.SubElement(suite, "testcase", classname=r.task, name=r.config)
        text = "; ".join(f"{h}: {c}" for h, c in zip(HEADERS[2:], cells(r)[2:]))
        if r.failed:
            ET.SubElement(case, "failure", message=verdict(r), type="regression").text = text
        ET.SubElement(case, "system-out").text = text
    for task, config in cmp.missing:
        case = ET.SubElement(suite, "testcase", classname=task, name=config)
        ET.SubElement(case, "failure", message="missing in the candidate", type="missing")
    ET.indent(suites)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"
