"""``uisbench site``: the static HTML leaderboard."""

from __future__ import annotations

from pathlib import Path

import click

from uisbench.cli.options import db_option


@click.group()
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
    from uisbench.site.build import build_site
    from uisbench.store.engine import open_engine

    path = build_site(open_engine(db, create=False), out, include_synthetic, drill_queries)
    click.echo(f"site written to {path / 'index.html'}")
