"""The ``uisbench`` command line (click).

Every user-facing failure — unknown task, strategy, model or option, a malformed bank, a missing
or foreign database — ends as one line on stderr and exit code 2, with no traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
from sqlalchemy.exc import SQLAlchemyError

from uisbench.errors import UisbenchError

EXIT_USAGE = 2
db_option = click.option(
    "--db", envvar="UISBENCH_DB", default=None,
    help="SQLAlchemy URL or SQLite path (default: results/uisbench.db; env UISBENCH_DB).",
)  # fmt: skip


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="uisbench")
def cli() -> None:
    """uisbench: benchmark inference-cost strategies on accuracy vs metered cost."""


# ------------------------------------------------------------------------ bank
@cli.group()
def bank() -> None:
    """Import, export and inspect sample banks."""


@bank.command("import")
@click.argument("file", type=click.Path(path_type=Path))
@click.option(
    "--models",
    "models_file",
    type=click.Path(path_type=Path),
    default=None,
    help="NAME.models.json with parameter counts, training tokens and prices.",
)
@click.option("--name", default=None, help="Bank name (default: the file name without suffix).")
@click.option("--synthetic", is_flag=True, help="Label the bank synthetic (speed tests only).")
@db_option
def bank_import(file: Path, models_file: Path | None, name: str | None, synthetic: bool,
                db: str | None) -> None:  # fmt: skip
    """Import a flat outcome bank (JSONL or JSONL.gz); samples already present are skipped."""
    from uisbench.bank import import_file
    from uisbench.db import open_engine

    if models_file is None:
        guess = file.parent / (file.name.split(".jsonl")[0] + ".models.json")
        models_file = guess if guess.is_file() else None
    stats = import_file(open_engine(db), file, models_file, name=name, synthetic=synthetic)
    click.echo(
        f"bank {stats.bank}: {stats.rows} rows read, {stats.inserted} new samples "
        f"({stats.rows - stats.inserted} already present); tasks: {', '.join(stats.tasks)}; "
        f"models: {', '.join(stats.models)}"
    )


@bank.command("export")
@click.option("--bank", "bank_name", required=True, help="Bank to export.")
@click.option("--task", default=None, help="Only this task.")
@click.option(
    "--out", type=click.Path(path_type=Path), required=True, help="Output .jsonl or .jsonl.gz."
)
@click.option(
    "--models-out",
    type=click.Path(path_type=Path),
    default=None,
    help="Also write the models metadata file.",
)
@db_option
def bank_export(bank_name: str, task: str | None, out: Path, models_out: Path | None,
                db: str | None) -> None:  # fmt: skip
    """Export a bank in the flat outcome format (round-trips with ``bank import``)."""
    from uisbench.bank import bank_models_meta, export_rows
    from uisbench.bankfile import models_to_json, open_text, row_to_json
    from uisbench.db import open_engine

    engine = open_engine(db, create=False)
    n = 0
    tmp = out.with_suffix(".part" + out.suffix)  # keeps .gz last: compressed like the target
    out.parent.mkdir(parents=True, exist_ok=True)
    with engine.connect() as conn:
        meta = bank_models_meta(conn, bank_name)  # fails on an unknown bank before any write
        try:
            with open_text(tmp, "wt") as fh:
                for row in export_rows(conn, bank_name, task):
                    fh.write(row_to_json(row) + "\n")
                    n += 1
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    tmp.replace(out)  # atomic: a reader never sees a half-written export
    if models_out:
        models_out.parent.mkdir(parents=True, exist_ok=True)
        models_out.write_text(models_to_json(meta) + "\n", encoding="utf-8")
    click.echo(f"wrote {n} samples to {out}")


@bank.command("info")
@click.option("--bank", "bank_name", default=None, help="Only this bank.")
@db_option
def bank_info(bank_name: str | None, db: str | None) -> None:
    """Models × queries × samples per bank and task, with accuracy and mean cost per model."""
    from uisbench.bank import info
    from uisbench.db import open_engine
    from uisbench.report import print_bank_info

    engine = open_engine(db, create=False)
    with engine.connect() as conn:
        df = info(conn, bank_name)
    if df.empty:
        raise UisbenchError("the database holds no samples")
    print_bank_info(df)


@bank.command("record")
@click.option("--task", "task_name", required=True, help="Registered task (`uisbench list tasks`).")
@click.option("--pool", required=True, help="Pool name (`uisbench list pools`) or pool file.")
@click.option("--k", type=int, default=4, show_default=True, help="Samples per query and model.")
@click.option("--limit", type=int, default=None, help="First N queries of each split.")
@click.option(
    "--split",
    "splits",
    default="test",
    show_default=True,
    help="Comma-separated splits to record (train,test).",
)
@click.option("--models", default=None, help="Comma-separated subset of the pool.")
@click.option("--batch-size", type=int, default=8, show_default=True, help="Prompts per call.")
@click.option("--device", default=None, help="cpu, cuda, cuda:1 ... (default: automatic).")
@click.option("--backend", default=None, help="Backend for every model (default: the pool's).")
@click.option("--max-tokens", type=int, default=None, help="Override the task's generation length.")
@click.option("--temperature", type=float, default=None, help="Override the task's temperature.")
@click.option(
    "--task-arg",
    "task_args",
    multiple=True,
    metavar="KEY=VALUE",
    help="Task option, e.g. levels=add1,mul1 or n_per_level=40 (repeatable).",
)
@db_option
def bank_record(
    task_name: str,
    pool: str,
    k: int,
    limit: int | None,
    splits: str,
    models: str | None,
    batch_size: int,
    device: str | None,
    backend: str | None,
    max_tokens: int | None,
    temperature: float | None,
    task_args: tuple[str, ...],
    db: str | None,
) -> None:
    """Generate k samples per query and model with a live backend into the bank (resumable)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,  # fmt: skip
        TimeRemainingColumn,
    )

    from uisbench.db import open_engine
    from uisbench.live import record

    overrides = {k_: v for k_, v in (("max_tokens", max_tokens), ("temperature", temperature))
                 if v is not None}  # fmt: skip
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, disable=not sys.stderr.isatty()) as bar:
        job = bar.add_task("samples", total=None, rate="")
        state = {"t0": None, "n0": 0}

        def tick(done: int, total: int, model: str) -> None:
            import time

            now = time.perf_counter()
            if state["t0"] is None:
                state["t0"], state["n0"] = now, done
            rate = (done - state["n0"]) / max(now - state["t0"], 1e-9)
            bar.update(job, completed=done, total=total, description=model,
                       rate=f"{rate:.2f} samples/s")  # fmt: skip

        stats = record(
            open_engine(db), task_name, pool, k, limit=limit,
            splits=tuple(x.strip() for x in splits.split(",") if x.strip()),
            models=models.split(",") if models else None, batch_size=batch_size,
            device=device, backend=backend, config_overrides=overrides, progress=tick,
            task_overrides=parse_task_args(task_args),
        )  # fmt: skip
    click.echo(
        f"bank {stats.bank}: {stats.queries} queries, {stats.generated} samples generated, "
        f"{stats.already} already held ({stats.seconds:.1f} s)"
    )


# ------------------------------------------------------------------------ list
@cli.command("list")
@click.argument("what", type=click.Choice(["strategies", "tasks", "pools", "banks"]))
@db_option
def list_(what: str, db: str | None) -> None:
    """List registered strategies, tasks, pools, or the banks in the database."""
    from uisbench.report import print_listing

    print_listing(what, db)


# ------------------------------------------------------------------------ run
@cli.command()
@click.option("--task", default=None, help="Task name (as in the bank or the task registry).")
@click.option(
    "--strategy",
    "strategies",
    multiple=True,
    help="NAME[:key=value,...]; repeatable. Default: every strategy's default sweep.",
)
@click.option("--seed", "seeds", type=int, multiple=True, help="Seed; repeatable (default 0).")
@click.option(
    "--bank",
    "bank_ref",
    default=None,
    help="Bank name in the database, or a bank file to import first.",
)
@click.option("--models", default=None, help="Comma-separated subset of the bank's models.")
@click.option(
    "--split-seed",
    type=int,
    default=0,
    show_default=True,
    help="Seed of the stored split for tasks whose source has none.",
)
@click.option("--force", is_flag=True, help="Discard and redo runs that already exist.")
@click.option("--no-report", is_flag=True, help="Do not print the report at the end.")
@click.option(
    "--live",
    is_flag=True,
    help="Generate through the pool's backend (only samples the bank lacks), then run.",
)
@click.option("--pool", default=None, help="With --live: pool name or file (default cpu-tiny).")
@click.option("--k", type=int, default=None, help="With --live: samples per query and model.")
@click.option("--backend", default=None, help="With --live: backend for every model.")
@click.option("--limit", type=int, default=None, help="With --live: first N queries per split.")
@db_option
def run(
    task: str | None,
    strategies: tuple[str, ...],
    seeds: tuple[int, ...],
    bank_ref: str | None,
    models: str | None,
    split_seed: int,
    force: bool,
    no_report: bool,
    live: bool,
    pool: str | None,
    k: int | None,
    backend: str | None,
    limit: int | None,
    db: str | None,
) -> None:
    """Run strategies over a task's test queries, one decision row per query (resumable)."""
    from uisbench.job import RunRequest, run_job

    run_job(
        RunRequest(
            task=task,
            strategies=list(strategies),
            seeds=list(seeds) or [0],
            bank=bank_ref,
            models=models.split(",") if models else None,
            split_seed=split_seed,
            force=force,
            report=not no_report,
            db=db,
            live=live,
            pool=pool,
            k=k,
            backend=backend,
            limit=limit,
        )  # fmt: skip
    )


# ------------------------------------------------------------------------ report
@cli.command()
@click.option("--task", default=None, help="Only this task.")
@click.option("--include-synthetic", is_flag=True, help="Also show runs on synthetic banks.")
@db_option
def report(task: str | None, include_synthetic: bool, db: str | None) -> None:
    """Terminal table per task: accuracy with 95% CI and mean cost per query."""
    from uisbench.db import open_engine
    from uisbench.report import print_report

    print_report(open_engine(db, create=False), task, include_synthetic)


# ------------------------------------------------------------------------ site
@cli.group()
def site() -> None:
    """Build the static HTML leaderboard."""


@site.command("build")
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    help="Output folder (default: _site/ in the current directory).",
)
@click.option("--include-synthetic", is_flag=True, help="Also show runs on synthetic banks.")
@click.option(
    "--queries",
    "drill_queries",
    type=int,
    default=30,
    show_default=True,
    help="Test queries per task with a drill-down page (the first by id; 0 for all).",
)
@db_option
def site_build(
    out: Path | None, include_synthetic: bool, drill_queries: int, db: str | None
) -> None:
    """Render the leaderboard, Pareto plots and drill-down pages from the database."""
    from uisbench.db import open_engine
    from uisbench.site.build import build_site

    path = build_site(open_engine(db, create=False), out, include_synthetic, drill_queries)
    click.echo(f"site written to {path / 'index.html'}")


def parse_task_args(args: tuple[str, ...]) -> dict:
    """``key=value`` task options: integers stay integers, commas make lists."""
    out: dict = {}
    for arg in args:
        key, eq, value = arg.partition("=")
        if not eq or not key:
            raise UisbenchError(f"bad --task-arg {arg!r} (expected KEY=VALUE)")
        items = [int(v) if v.lstrip("-").isdigit() else v for v in value.split(",")]
        out[key] = items if "," in value else items[0]
    return out


def main(argv: list[str] | None = None) -> None:
    """Entry point: turn every expected failure into one line on stderr and exit 2."""
    try:
        cli.main(args=argv, prog_name="uisbench", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("uisbench: aborted", err=True)
        sys.exit(130)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.UsageError as exc:
        hint = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx else ""
        click.echo(f"uisbench: error: {exc.format_message()}{hint}", err=True)
        sys.exit(EXIT_USAGE)
    except click.ClickException as exc:
        click.echo(f"uisbench: error: {exc.format_message()}", err=True)
        sys.exit(EXIT_USAGE)
    except UisbenchError as exc:
        click.echo(f"uisbench: error: {exc}", err=True)
        sys.exit(EXIT_USAGE)
    except SQLAlchemyError as exc:
        msg = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        click.echo(f"uisbench: error: database: {msg}", err=True)
        sys.exit(EXIT_USAGE)
    except OSError as exc:  # a file we were told to read or write: not a bug, one line
        where = f": {exc.filename}" if exc.filename else ""
        click.echo(f"uisbench: error: {exc.strerror or exc}{where}", err=True)
        sys.exit(EXIT_USAGE)


if __name__ == "__main__":  # pragma: no cover
    main()
