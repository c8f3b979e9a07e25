"""Options and argument parsing shared by the command groups."""

from __future__ import annotations

import os

import click

from uisbench.errors import UisbenchError

#: Seeds are numpy SeedSequence entropy and database integers: 0..2^31-1, what a PostgreSQL
#: ``integer`` holds (SQLite takes more; one rule for both).
SEED = click.IntRange(0, 2**31 - 1)

db_option = click.option(
    "--db",
    envvar="UISBENCH_DB",
    default=None,
    help="SQLAlchemy URL or SQLite path (default: uisbench.db in the working directory; "
    "env UISBENCH_DB).",
)


def _allow_unsafe_exec(ctx: click.Context, param: click.Parameter, value: bool) -> bool:
    if value:
        from uisbench.tasks.sandbox import UNSAFE_ENV

        os.environ[UNSAFE_ENV] = "1"  # read by the sandbox, also in scoring worker processes
    return value


unsafe_exec_option = click.option(
    "--unsafe-exec",
    is_flag=True,
    expose_value=False,
    callback=_allow_unsafe_exec,
    help="Score generated code without OS isolation where bubblewrap is unavailable (unsafe).",
)


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
