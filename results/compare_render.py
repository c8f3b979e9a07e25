"""A comparison as a terminal table (rich), Markdown (a pull-request comment) and JUnit XML.

The three say the same thing: per (task, configuration) the accuracy and mean cost of both
sides, their paired changes with intervals, McNemar's p and the verdict.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET

from rich.console import Console
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


def summary(cmp: Comparison) -> str:
    t = cmp.tolerances
    failed = sum(r.failed for r in cmp.rows)
    head = (
        f"{len(cmp.rows)} configuration(s) on bank {cmp.bank} ({cmp.digest[:19]}…): "
        f"{failed} regression(s); tolerances: accuracy drop {100 * t.max_accuracy_drop:.1f} "
        f"points, cost increase {100 * t.max_cost_increase:.1f}%; family-wise α={t.alpha:g} "
        f"(per test {cmp.level:.2g}, Bonferroni)"
    )
    if cmp.missing:
        head += "; missing in the candidate: " + ", ".join(f"{a} {b}" for a, b in cmp.missing)
    return head


def print_table(cmp: Comparison, console: Console | None = None) -> None:
    console = console or Console()
    table = Table(title="uisbench compare (candidate vs baseline, paired by query)")
    for h in HEADERS:
        table.add_column(h, overflow="fold")
    for r in cmp.rows:
        style = "bold red" if r.failed else None
        table.add_row(*cells(r), style=style)
    console.print(table)
    console.print(summary(cmp))


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|")


def to_markdown(cmp: Comparison) -> str:
    """A GitHub-flavoured Markdown table with a one-line summary (a pull-request comment)."""
    status = "❌ regression" if cmp.failed else "✅ no regression"
    lines = [f"### uisbench gate: {status}", "", summary(cmp), ""]
    lines.append("| " + " | ".join(HEADERS) + " |")
    lines.append("|" + "---|" * len(HEADERS))
    for r in cmp.rows:
        lines.append("| " + " | ".join(_md_escape(c) for c in cells(r)) + " |")
    return "\n".join(lines) + "\n"


def to_junit(cmp: Comparison) -> str:
    """JUnit XML: one test case per (task, configuration); a regression is a failure."""
    failures = sum(r.failed for r in cmp.rows) + len(cmp.missing)
    suites = ET.Element("testsuites")
    suite = ET.SubElement(
        suites,
        "testsuite",
        name="uisbench gate",
        tests=str(len(cmp.rows) + len(cmp.missing)),
        failures=str(failures),
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
