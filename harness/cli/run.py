"""``uisbench run`` and ``uisbench report``: run strategies, then read the results."""

from __future__ import annotations

import click

from uisbench.cli.options import SEED, db_option, unsafe_exec_option


@click.command()
@click.option("--task", default=None, help="Task name (as in the bank or the task registry).")
@click.option(
    "--strategy",
    "strategies",
    multiple=True,
    help="NAME[:key=value,...]; repeatable. Default: every strategy's default sweep.",
)
@click.option(
    "--seed", "seeds", type=SEED, multiple=True, help="Seed in 0..2^31-1; repeatable (default 0)."
)
@click.option(
    "--bank",
    "bank_ref",
    default=None,
    help="Bank name in the database, or a bank file to import first.",
)
@click.option("--models", default=None, help="Comma-separated subset of the bank's models.")
@click.option(
    "--split-seed",
    type=SEED,
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
@click.option(
    "--endpoint",
    "endpoints",
    multiple=True,
    metavar="URL",
    help="With --live --backend openai: server base URL (repeatable).",
)
@click.option("--limit", type=int, default=None, help="With --live: first N queries per split.")
@click.option(
    "--prefix-cache",
    default=None,
    metavar="none|full|block:N",
    help="What a repeated request to the same model finds cached of its prompt "
    "(default: the live pool's setting, else block:16, vLLM's block size).",
)
@unsafe_exec_option
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
    endpoints: tuple[str, ...],
    limit: int | None,
    prefix_cache: str | None,
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
            endpoints=list(endpoints) or None,
            limit=limit,
            prefix_cache=prefix_cache,
        )
    )


@click.command()
@click.option("--task", default=None, help="Only this task.")
@click.option("--include-synthetic", is_flag=True, help="Also show runs on synthetic banks.")
@db_option
def report(task: str | None, include_synthetic: bool, db: str | None) -> None:
    """Terminal table per task: accuracy with 95% CI and mean cost per query."""
    from uisbench.results.report import print_report
    from uisbench.store.engine import open_engine

    print_report(open_engine(db, create=False), task, include_synthetic)
