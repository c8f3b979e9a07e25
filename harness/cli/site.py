"""``uisbench site``: the static HTML leaderboard."""

from __future__ import annotations

from pathlib import Path

import click

from uisbench.cli.options import db_option


@click.group(short_help="Build the static HTML leaderboard from the database.")
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
    type=click.IntRange(0, 2**31 - 1),
    default=30,
    show_default=True,
    help="Test queries per task with a drill-down page (the first by query key; 0 for all).",
)
@click.option(
    "--base-url",
    default=None,
    help="Address the site is deployed at (e.g. https://org.github.io/repo/): canonical links "
    "and sitemap.xml. Links are relative, so any sub-path works.",
)
@click.option(
    "--results",
    "results_dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Folder of result files others exported (uisbench results export): those made on a "
    "local bank (same content digest) are shown beside the local runs, as submitted or, "
    "after uisbench gate --verify, verified.",
)
@click.option(
    "--jobs",
    type=click.IntRange(min=1),
    default=None,
    help="Processes writing the pages (default: this machine's cores); the files are the same.",
)
@db_option
def site_build(
    out: Path | None,
    include_synthetic: bool,
    drill_queries: int,
    base_url: str | None,
    results_dir: Path | None,
    jobs: int | None,
    db: str | None,
) -> None:
    """Render the leaderboard, Pareto plots and drill-down pages from the database.

    Two builds from one database differ only in the build stamp (set SOURCE_DATE_EPOCH to
    fix it too)."""
    from uisbench.progress import progress_bar, site_progress
    from uisbench.site.build import build_site
    from uisbench.store.engine import open_engine

    engine = open_engine(db, create=False)
    with progress_bar(transient=True) as bar:
        tick = site_progress(bar)
        path = build_site(
            engine,
            out,
            include_synthetic,
            drill_queries,
            base_url,
            tick,
            results_dir=results_dir,
            jobs=jobs,
        )
    click.echo(f"site written to {path / 'index.html'}")
