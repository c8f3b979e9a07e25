"""``uisbench run`` and ``uisbench report``: run strategies, then read the results."""

from __future__ import annotations

import click

from uisbench.cli.options import SEED, db_option, parse_task_args, unsafe_exec_option


@click.command(
    short_help="Run strategies on a task's test queries (resumable).",
    epilog="""Examples:

\b
  uisbench run                      # the default job: every strategy on the shipped bank,
                                    # three seeds, report and site
  uisbench run --seed 0             # the same with one seed
  uisbench run --task mmlu --strategy uniscale:cost_weight=0.3 --strategy oracle
  uisbench run --bank my-bank.jsonl.gz --strategy majority:model=llama-2-13b,k=8
  uisbench run --live --pool cpu-tiny --k 8 --task-arg levels=add1,mul1
  uisbench list strategies -v       # every strategy's options, defaults and bounds""",
)
@click.option("--task", default=None, help="Task name (as in the bank or the task registry).")
@click.option(
    "--strategy",
    "strategies",
    multiple=True,
    help="NAME[:key=value,...], or an unregistered class FILE.py:Class[:key=value,...] or "
    "module:Class[:key=value,...] (always run isolated); repeatable. Default: every "
    "strategy's default sweep.",
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
    help="Seed of the split (a hash of task, query id and seed) where the bank has none.",
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
    "--task-arg",
    "task_args",
    multiple=True,
    metavar="KEY=VALUE",
    help="With --live: task option, e.g. levels=add1,mul1 or data_files=TRAIN,TEST (repeatable).",
)
@click.option(
    "--prefix-cache",
    default=None,
    metavar="none|full|block:N",
    help="What a repeated request to the same model finds cached of its prompt "
    "(default: the live pool's setting, else block:16, vLLM's block size).",
)
@click.option(
    "--isolation",
    type=click.Choice(["auto", "process", "inprocess"]),
    default="auto",
    show_default=True,
    help="Where strategies run: auto = shipped ones in-process, every other in its own "
    "process (no truth, no database); process = all isolated; inprocess = none (debugging).",
)
@click.option(
    "--jobs",
    type=click.IntRange(min=1),
    default=None,
    help="Worker processes replaying runs at once (default: this machine's cores); "
    "the parent alone writes rows.",
)
@click.option(
    "--executor",
    type=click.Choice(["local", "ray"]),
    default="local",
    show_default=True,
    help="local = worker processes on this machine; ray = Ray actors (needs uisbench[ray]).",
)
@click.option(
    "--address", default=None, help="With --executor ray: the cluster (default: start a local one)."
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
    task_args: tuple[str, ...],
    prefix_cache: str | None,
    isolation: str,
    jobs: int | None,
    executor: str,
    address: str | None,
    db: str | None,
) -> None:
    """Run strategies over a task's test queries, one decision row per query (resumable)."""
    from uisbench.job import RunRequest, run_job
    from uisbench.parallel import default_jobs

    run_job(
        RunRequest(
            task=task,
            strategies=list(strategies),
            seeds=list(seeds) or None,
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
            task_args=parse_task_args(task_args),
            isolation=isolation,
            jobs=jobs or default_jobs(),
            executor=executor,
            address=address,
        )
    )


@click.command(short_help="Print each task's verdict; --all adds every configuration.")
@click.option("--task", default=None, help="Only this task.")
@click.option("--include-synthetic", is_flag=True, help="Also show runs on synthetic banks.")
@click.option(
    "--all",
    "full",
    is_flag=True,
    help="Also list every configuration with its accuracy and costs per query.",
)
@db_option
def report(task: str | None, include_synthetic: bool, full: bool, db: str | None) -> None:
    """Print the verdict per task: each family's best configuration, its AIQ, its accuracy at
    each single model's cost with the paired interval, and the claim the leaderboard makes."""
    from uisbench.results.report import print_report
    from uisbench.store.engine import open_engine

    print_report(open_engine(db, create=False), task, include_synthetic, full)
