"""``uisbench list``: what is registered (entry points) or stored."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import click
from rich.table import Table

from uisbench.cli.options import db_option
from uisbench.errors import UisbenchError
from uisbench.isolation import ForkServer
from uisbench.live.pools import available_pools
from uisbench.results.report import add_row, console
from uisbench.store.engine import open_engine
from uisbench.store.lookups import stored_banks
from uisbench.strategies.base import STRATEGIES, option_lines
from uisbench.tasks import available_tasks

#: Seconds a plugin's process may take to describe it (its import included).
LIST_TIMEOUT_S = 120.0


@click.command("list", short_help="List strategies, tasks, pools or the banks stored.")
@click.argument("what", type=click.Choice(["strategies", "tasks", "pools", "banks"]))
@click.option(
    "-v",
    "--verbose",
    is_flag=True,
    help="With strategies: each strategy's options with their defaults and bounds.",
)
@db_option
def list_(what: str, verbose: bool, db: str | None) -> None:
    """List the registered strategies, tasks or pools, or the banks in the database."""
    table = Table(title=what, title_justify="left", show_lines=verbose)
    table.add_column("name")
    table.add_column("description")
    if what == "strategies":
        table.add_column("family")
        if verbose:
            table.add_column("options: default (bounds)")
        with plugin_questions() as ask:
            for name in STRATEGIES.names():
                try:
                    description, family, options = ask(name)
                except Exception as exc:  # a broken plugin: listed as such, the rest still shown
                    text = " ".join(str(exc).split())[:200] or type(exc).__name__
                    if not isinstance(exc, UisbenchError):
                        text = f"{type(exc).__name__}: {text}"
                    add_row(
                        table, name, f"cannot be loaded: {text}", "—", *(["—"] if verbose else [])
                    )
                    continue
                extra = ["\n".join(options) or "none"] if verbose else []
                add_row(table, name, description, family, *extra)
    elif what == "tasks":
        for name, desc in available_tasks().items():
            add_row(table, name, desc)
    elif what == "pools":
        for name, desc in available_pools().items():
            add_row(table, name, desc)
    else:
        for bank in stored_banks(open_engine(db, create=False)):
            kind = bank["source"] + (" (SYNTHETIC)" if bank["synthetic"] else "")
            add_row(table, bank["name"], kind)
    console.print(table)


@contextlib.contextmanager
def plugin_questions() -> Iterator[Callable[[str], tuple[str, str, list[str]]]]:
    """``ask(name)``: a registered strategy's description, family and option lines. A shipped
    strategy is read here; a plugin's module is untrusted code, as in ``run``, so its own
    process (a strategy template with no working set, started on the first plugin) reads it
    and this process never imports it."""
    server: ForkServer | None = None

    def ask(name: str) -> tuple[str, str, list[str]]:
        nonlocal server
        if STRATEGIES.shipped(name):
            cls = STRATEGIES.get(name)
            return cls.description, cls.family, option_lines(cls)
        if server is None:
            server = ForkServer(None, None, [], LIST_TIMEOUT_S)
        return server.about(name)

    try:
        yield ask
    finally:
        if server is not None:
            server.close()
