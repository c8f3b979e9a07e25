"""``uisbench list``: what is registered (entry points) or stored."""

from __future__ import annotations

import click
from rich.table import Table

from uisbench.cli.options import db_option
from uisbench.live.pools import available_pools
from uisbench.results.report import add_row, console
from uisbench.store.engine import open_engine
from uisbench.store.lookups import stored_banks
from uisbench.strategies.base import STRATEGIES
from uisbench.tasks import available_tasks


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
        for name in STRATEGIES.names():
            try:
                cls = STRATEGIES.get(name)
            except Exception as exc:  # a broken plugin: listed as such, the rest still shown
                text = " ".join(str(exc).split())[:200] or type(exc).__name__
                broken = f"cannot be loaded: {type(exc).__name__}: {text}"
                add_row(table, name, broken, "—", *(["—"] if verbose else []))
                continue
            extra = ["\n".join(option_lines(cls)) or "none"] if verbose else []
            add_row(table, name, cls.description, cls.family, *extra)
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


def option_lines(cls) -> list[str]:
    """``name=default`` per option of a strategy, with its bounds and choices where it
    declares them."""
    import dataclasses

    lines = []
    for f in dataclasses.fields(cls.Params):
        default = f.default if f.default is not dataclasses.MISSING else "(required)"
        ge, gt, le = f.metadata.get("bounds", (None, None, None))
        bounds = [b for b in (ge is not None and f">= {ge}", gt is not None and f"> {gt}") if b]
        bounds += [f"<= {le}"] if le is not None else []
        if f.metadata.get("allow_inf"):
            bounds.append("inf allowed")
        if f.metadata.get("choices"):
            bounds.append("one of " + ", ".join(f.metadata["choices"]))
        shown = "''" if default == "" else default
        lines.append(f"{f.name}={shown}" + (f" ({', '.join(bounds)})" if bounds else ""))
    return lines
