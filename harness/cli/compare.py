"""``uisbench results export``, ``uisbench compare`` and ``uisbench gate``: regression checks."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import click

from uisbench.cli.options import SEED, db_option
from uisbench.errors import UisbenchError

if TYPE_CHECKING:
    from uisbench.results.compare import Tolerances

tolerance_options = [
    click.option(
        "--max-accuracy-drop",
        type=float,
        default=0.01,
        show_default=True,
        help="Tolerated drop in accuracy (absolute: 0.01 is one point).",
    ),
    click.option(
        "--max-cost-increase",
        type=float,
        default=0.05,
        show_default=True,
        help="Tolerated rise in mean cost per query (relative: 0.05 is 5%).",
    ),
    click.option(
        "--alpha",
        type=float,
        default=0.05,
        show_default=True,
        help="Family-wise significance level (Bonferroni over all tests).",
    ),
    click.option("--markdown", type=click.Path(path_type=Path), help="Also write Markdown here."),
    click.option("--junit", type=click.Path(path_type=Path), help="Also write JUnit XML here."),
]


@dataclass(frozen=True)
class Outputs:
    """Files the verdict is also written to (--markdown, --junit)."""

    markdown: Path | None
    junit: Path | None


def with_tolerances(f):
    """The five options of a verdict, handed to the command as ``tol`` (the comparison's
    ``Tolerances``) and ``outputs`` (:class:`Outputs`)."""

    @functools.wraps(f)
    def command(*, max_accuracy_drop, max_cost_increase, alpha, markdown, junit, **kwargs):
        from uisbench.results.compare import Tolerances

        tol = Tolerances(max_accuracy_drop, max_cost_increase, alpha)
        return f(tol=tol, outputs=Outputs(markdown, junit), **kwargs)

    for option in reversed(tolerance_options):
        command = option(command)
    return command


#: Run ids are database integers; one argument names at most this many of them.
MAX_RUN_ID, MAX_IDS = 2**31 - 1, 100_000


def _parse_ids(text: str) -> list[int]:
    """``12``, ``12,13`` or ``12-20`` → run ids."""
    ids: list[int] = []
    for part in filter(None, text.split(",")):
        lo, dash, hi = part.partition("-")
        if not lo.isdigit() or (dash and not hi.isdigit()):
            raise UisbenchError(f"{text!r} is neither a result file nor run ids (e.g. 3,4 or 3-9)")
        first, last = int(lo), int(hi) if dash else int(lo)
        if last > MAX_RUN_ID or last - first + len(ids) >= MAX_IDS:
            raise UisbenchError(
                f"{part!r}: a run id is at most {MAX_RUN_ID}, and one argument names at most "
                f"{MAX_IDS} of them"
            )
        ids += range(first, last + 1)
    return ids


def _load(ref: str, db: str | None):
    """A result file, or run ids read from the database."""
    from uisbench.results.export import load_results, read_results, select_runs
    from uisbench.store.engine import open_engine

    if Path(ref).is_file():
        return read_results(Path(ref))
    ids = _parse_ids(ref)
    engine = open_engine(db, create=False)
    return load_results(engine, select_runs(engine, run_ids=ids))


def _report(cmp, outputs: Outputs, command: str) -> None:
    """The one verdict in every form asked for; exit 1 when it is a failure (a regression or a
    configuration missing in the candidate), as the table, Markdown and JUnit all say."""
    from uisbench.results.compare_render import print_table, to_junit, to_markdown

    print_table(cmp, command=command)
    if outputs.markdown:
        outputs.markdown.write_text(to_markdown(cmp, command), encoding="utf-8")
    if outputs.junit:
        outputs.junit.write_text(to_junit(cmp, command), encoding="utf-8")
    if cmp.failed:
        raise click.exceptions.Exit(1)


@click.group(short_help="Export runs' per-query outcomes to a result file.")
def results() -> None:
    """Result files: per-query outcomes of runs, for compare and gate."""


@results.command("export")
@click.argument("run_ids", nargs=-1)
@click.option("--task", default=None, help="Only runs of this task.")
@click.option(
    "--config",
    "configs",
    multiple=True,
    help="Configuration label, or the label@version the board shows; repeatable.",
)
@click.option("--bank", default=None, help="Only runs on this bank.")
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    required=True,
    help="File to write: F.json (the result file compare and gate read) or F.csv (one row "
    "per run and query, for a spreadsheet).",
)
@click.option("--submitter", default=None, help="Who made the runs (kept in the provenance).")
@db_option
def results_export(
    run_ids: tuple[str, ...],
    task: str | None,
    configs: tuple[str, ...],
    bank: str | None,
    out: Path,
    submitter: str | None,
    db: str | None,
) -> None:
    """Write runs (ids like 3 4 or 3-9, or a selection) with per-query outcomes to a file."""
    from uisbench.results.csv_export import write_csv
    from uisbench.results.export import load_results, select_runs, write_results
    from uisbench.store.engine import open_engine

    suffix = out.suffix.lower()
    if suffix not in (".json", ".csv"):
        raise UisbenchError(
            f"--out {out}: give a .json result file (for compare and gate) or a .csv table"
        )
    ids = [i for ref in run_ids for i in _parse_ids(ref)]
    engine = open_engine(db, create=False)
    chosen = select_runs(engine, ids or None, task, list(configs) or None, bank)
    data = load_results(engine, chosen, submitter)
    (write_csv if suffix == ".csv" else write_results)(data, out)
    click.echo(f"{len(data.runs)} run(s) on bank {data.bank} written to {out}")


@click.command(short_help="Compare two sets of runs query by query; exit 1 on a regression.")
@click.argument("baseline")
@click.argument("candidate")
@with_tolerances
@db_option
def compare(
    baseline: str, candidate: str, tol: Tolerances, outputs: Outputs, db: str | None
) -> None:
    """Pair two sets of runs (result files or run ids) query by query and report the changes.

    Exits 1 when a configuration regressed significantly beyond tolerance or is missing in the
    candidate (the table, --markdown and --junit say the same)."""
    from uisbench.results.compare import compare as compare_sets

    cmp = compare_sets(_load(baseline, db), _load(candidate, db), tol)
    _report(cmp, outputs, "compare")


@click.command(short_help="Re-run a committed baseline; exit 1 on a regression.")
@click.option(
    "--baseline",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    required=True,
    help="Committed result file whose configurations are re-run.",
)
@click.option("--bank", default=None, help="Bank name or file (default: the shipped bank).")
@click.option("--seed", "seeds", type=SEED, multiple=True, help="Seeds (default: the baseline's).")
@with_tolerances
@click.option(
    "--db",
    default=None,
    help="Database for the runs (default: a throw-away one). Runs of the same definition "
    "already in it are discarded and redone, so the gate always tests this code.",
)
@click.option(
    "--verify",
    is_flag=True,
    help="Verify a submitted result file: re-run every strategy in its own process and write "
    "NAME.verified.json beside it, verified when every configuration is equal within the "
    "tolerances both ways (exit 1 otherwise); site build --results shows it as verified.",
)
def gate(
    baseline: Path,
    bank: str | None,
    seeds: tuple[int, ...],
    tol: Tolerances,
    outputs: Outputs,
    db: str | None,
    verify: bool,
) -> None:
    """Re-run a baseline's configurations; exit 1 on a significant regression beyond tolerance."""
    from uisbench.gate import run_gate

    isolation = "process" if verify else "auto"
    cmp = run_gate(baseline, bank, db, list(seeds) or None, tol, isolation=isolation)
    ok = True
    if verify:  # the verdict is written whatever the comparison says
        from uisbench.results.submitted import equal_within_tolerance, write_verification

        record, ok = write_verification(baseline, cmp)
        click.echo(f"{'verified' if ok else 'not verified'}: {record}", err=True)
        for line in equal_within_tolerance(cmp):
            click.echo(f"  {line}", err=True)
    _report(cmp, outputs, "gate")  # exit 1 on a regression
    if not ok:
        raise click.exceptions.Exit(1)
