"""What the run, query and task pages say (issue 19): router arms, readable text, summaries as
tables, the UniScale and T2 pages. One toy database with a router, UniScale and T2 run on it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.site.toysite import toy_bank
from uisbench import Runner, import_file, open_engine
from uisbench.store.bankfile import models_file_beside

EXTRA = ["knn-router", "uniscale", "t2"]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from uisbench.site.build import build_site

    folder = tmp_path_factory.mktemp("pages")
    engine = open_engine(str(folder / "pages.db"))
    bank = toy_bank(n_queries=60).write(folder)
    import_file(engine, bank, models_file_beside(bank))
    runner = Runner(engine, "toy-task", "toy-task")
    for spec in ["single:model=toy-small", "single:model=toy-large", *EXTRA]:
        runner.run(spec, 0, command="pytest")
    return build_site(engine, folder / "out")


def _page_of(out: Path, folder: str, needle: str) -> str:
    for page in sorted((out / folder).rglob("*.html")):
        text = page.read_text("utf-8")
        if needle in text:
            return text
    raise AssertionError(f"no page under {folder}/ mentions {needle!r}")


def test_router_overhead_is_shown_as_overhead_not_as_an_arm(built: Path) -> None:
    from uisbench.site.build import _arms_text

    arms = [{"overhead": "embed:hash"}, {"model": "toy-mid", "n": 1}]
    assert _arms_text(arms) == "toy-mid×1 + overhead embed:hash"
    for folder in ("runs", "queries"):
        for page in (built / folder).rglob("*.html"):
            assert "?×?" not in page.read_text("utf-8"), page.name
    run = _page_of(built, "runs", "knn-router")
    assert "overhead embed:" in run


def test_run_pages_show_characters_not_json_escapes(built: Path) -> None:
    for page in (built / "runs").glob("*.html"):
        text = page.read_text("utf-8")
        # Escapes are fine inside a chart's JSON spec, never in what the reader sees.
        visible = re.sub(r"<script.*?</script>", "", text, flags=re.S)
        assert not re.search(r"\\u[0-9a-fA-F]{4}", visible), page.name


def test_summaries_are_tables_not_raw_json(built: Path) -> None:
    run = _page_of(built, "runs", "uniscale")
    assert '{"' not in re.sub(r"<script.*?</script>", "", run, flags=re.S)
    assert 'class="kv nested"' in run


def test_uniscale_page_says_what_the_bandit_did(built: Path) -> None:
    run = _page_of(built, "runs", "toy-small×4")  # the arm the bandit pulls on this bank
    assert "pulled one arm throughout" in run
    assert "alpha None" not in run
    assert "Settings it chose: norm rank, alpha 0.05" in run
    assert "— → chose 0.05" in run  # the tuned alpha in the settings table
    spec = re.search(r'id="learning-spec">(.*?)</script>', run, re.S).group(1)
    assert '"independent"' in spec  # reward and accuracy on separate axes


def test_t2_page_plots_the_law_against_observed_points_and_names_its_fit(built: Path) -> None:
    run = _page_of(built, "runs", "law-spec")
    assert "fitted law" in run and "observed (train)" in run
    assert "Fit warning (T2 approach 1" in run
    assert "vega-embed.min.js" in run  # the page loads the chart scripts (no learning curve)


def test_config_page_says_who_sets_an_option_left_as_none(built: Path) -> None:
    page = _page_of(built, "configs", "uniscale:")
    assert "<code>None</code>" not in page
    assert "left to the strategy" in page
