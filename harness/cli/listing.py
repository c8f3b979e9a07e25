"""``uisbench list``: what is registered (entry points) or stored."""

from __future__ import annotations

import click
from rich.table import Table
from sqlalchemy import select

from uisbench.cli.options import db_option
from uisbench.live.pools import available_pools
from uisbench.results.report import add_row, console
from uisbench.store import schema as s
from uisbench.store.engine import open_engine
from uisbench.strategies.base import STRATEGIES
from uisbench.tasks import available_tasks


@click.command("list")
@click.argument("what", type=click.Choice(["strategies", "tasks", "pools", "banks"]))
@db_option
def list_(what: str, db: str | None) -> None:
    """List registered strategies, tasks, pools, or the banks in the database."""
    table = Table(title=what, title_justify="left")
    table.add_column("name")
    table.add_column("description")
    if what == "strategies":
        table.add_column("family")
        for name, cls in STRATEGIES.all().items():
            add_row(table, name, cls.description, cls.family)
    elif what == "tasks":
        for name, desc in available_tasks().items():
            add_row(table, name, desc)
    elif what == "pools":
        for name, desc in available_pools().items():
            add_row(table, name, desc)
    else:
        with open_engine(db, create=False).connect() as conn:
            for r in conn.execute(select(s.banks)).mappings():
                kind = r["source"] + (" (SYNTHETIC)" if r["synthetic"] else "")
                add_row(table, r["name"], kind)
    console.print(table)
