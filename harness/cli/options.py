"""Options and argument parsing shared by the command groups."""

from __future__ import annotations

import click

from uisbench.errors import UisbenchError

db_option = click.option(
    "--db",
    envvar="UISBENCH_DB",
    default=None,
    help="SQLAlchemy URL or SQLite path (default: results/uisbench.db; env UISBENCH_DB).",
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
