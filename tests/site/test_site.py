"""The static site from a small fake bank (``toysite.py``): pages, data, escaping, CLI."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import Engine

from tests.site.toysite import STRATEGIES, XSS_SCRIPT, make_toy_db
from uisbench.cli import main
from uisbench.results.aggregate import (
    bootstrap_ci,
    bootstrap_ci_counts,
    load_decisions,
    summarize,
    summarize_db,
)
from uisbench.results.budget import REACH_TOLERANCE
from uisbench.results.leaderboard import leaderboard
from uisbench.results.pareto import hull_value, nondecreasing_hull
from uisbench.site.build import DRILL_QUERIES, build_site


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Engine, Path]:
    folder = tmp_path_factory.mktemp("site")
    engine = make_toy_db(folder, synthetic_too=True)
    return engine, build_site(engine, folder / "out")


def _html_files(out: Path) -> list[Path]:
    return sorted(out.rglob("*.html"))


def test_pages_exist_and_index_lists_every_strategy(built: tuple[Engine, Path]) -> None:
    engine, out = built
    index = (out / "index.html").read_text("utf-8")
    assert "toy-task" in index
    for name in ("single", "majority", "random", "oracle", "stub-online"):
        assert f">{name}</a>" in index
    n_runs = len(STRATEGIES) + 2
    assert len(list((out / "runs").glob("*.html"))) == n_runs
    configs = list((out / "configs").rglob("*.html"))
    assert len(configs) == len(STRATEGIES) + 1
    queries = list((out / "queries").rglob("*.html"))
    assert 0 < len(queries) <= DRILL_QUERIES
    assert (out / "static" / "vendor" / "vega.min.js").stat().st_size > 100_000


def test_every_internal_link_resolves(built: tuple[Engine, Path]) -> None:
    _, out = built
    for page in _html_files(out):
        for href in re.findall(r'(?:href|src)="([^"#]+)', page.read_text("utf-8")):
            if "://" in href:
                continue
            assert (page.parent / href).resolve().exists(), f"{page.name}: broken link {href}"


def test_model_and_dataset_strings_are_escaped(built: tuple[Engine, Path]) -> None:
    _, out = built
    seen_escaped = False
    for page in _html_files(out):
        html = page.read_text("utf-8")
        assert XSS_SCRIPT not in html, page
        assert "<img src=x" not in html, page
        assert "onerror=window" not in html or "&lt;img" in html or "\\u003cimg" in html
        seen_escaped |= "&lt;script&gt;window.__xss=1&lt;/script&gt;" in html
    assert seen_escaped  # the probes were rendered (escaped), not dropped


def test_pareto_chart_data_match_the_leaderboard(built: tuple[Engine, Path]) -> None:
    engine, out = built
    _, boards = leaderboard(engine)
    (board,) = boards
    task_page = next((out / "tasks").glob("*.html")).read_text("utf-8")
    specs = re.findall(
        r'<script type="application/json" id="pareto-[\w.@-]+-(flops|dollars)-spec">(.*?)</script>',
        task_page,
        re.S,
    )
    assert {u for u, _ in specs} == {"flops", "dollars"}
    spec = json.loads(specs[0][1])
    labels = {p["config_label"] for p in spec["datasets"]["points"]}
    assert labels == set(board.configs["config_label"])
    assert spec["layer"][0]["encoding"]["x"]["scale"]["type"] == "log"
    assert "FLOPs" in task_page and "attention over the context is not counted" in task_page
    csv = pd.read_csv(next((out / "data").glob("*.flops.points.csv")))
    assert set(csv["config_label"]) == labels
    # The board ranks the upper bound last and leaves it unranked.
    top = board.strategies
    assert top.iloc[-1]["strategy"] == "oracle" and np.isnan(top.iloc[-1]["rank"])
    assert top["rank"].dropna().tolist() == list(range(1, len(top)))


def test_regret_curve_of_online_strategy(built: tuple[Engine, Path]) -> None:
    engine, out = built
    runs, _ = leaderboard(engine)
    stub = runs[runs["strategy"] == "stub-online"]
    assert len(stub) == 2 and (stub["n_reward"] == 50).all()
    wrong_per_seed = (1 - stub["accuracy"]) * 50  # 50 test queries
    data = pd.read_csv(next((out / "data").glob("*stub-online*.regret.csv")))
    assert data["regret_best_fixed"].iloc[-1] == pytest.approx(wrong_per_seed.mean())
    assert data["queries_seen"].iloc[-1] == 50
    assert (np.diff(data["regret_best_fixed"]) >= 0).all()
    page = next(p for p in (out / "configs").rglob("*stub-online*.html"))
    assert 'id="regret-spec"' in page.read_text("utf-8")


def test_synthetic_banks_are_excluded_by_default_and_labelled(
    built: tuple[Engine, Path], tmp_path: Path
) -> None:
    engine, out = built
    assert "toy-synthetic" not in (out / "index.html").read_text("utf-8")
    out2 = build_site(engine, tmp_path / "with-syn", include_synthetic=True)
    index = (out2 / "index.html").read_text("utf-8")
    assert "toy-synthetic" in index and "SYNTHETIC bank" in index
    syn_page = next(p for p in (out2 / "tasks").glob("toy-synthetic*.html"))
    assert "SYNTHETIC bank" in syn_page.read_text("utf-8")


def test_cli_site_build(built: tuple[Engine, Path], tmp_path: Path, capsys) -> None:
    engine, _ = built
    db = engine.url.database
    main(["site", "build", "--db", db, "--out", str(tmp_path / "s")])
    assert (tmp_path / "s" / "index.html").is_file()
    assert "site written to" in capsys.readouterr().out
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "keep.txt").write_text("not a site")
    with pytest.raises(SystemExit) as exc:
        main(["site", "build", "--db", db, "--out", str(tmp_path / "other")])
    assert exc.value.code == 2
    assert "not a uisbench site" in capsys.readouterr().err


def test_drill_down_query_count_is_an_option(built: tuple[Engine, Path], tmp_path: Path) -> None:
    engine, _ = built
    db = engine.url.database
    pages = {}
    for n in ("2", "0"):
        main(["site", "build", "--db", db, "--out", str(tmp_path / n), "--queries", n])
        per_task = [len(list(d.glob("*.html"))) for d in (tmp_path / n / "queries").iterdir()]
        pages[n] = per_task
    assert set(pages["2"]) == {2} and min(pages["0"]) > 2
    with pytest.raises(SystemExit) as exc:
        main(["site", "build", "--db", db, "--out", str(tmp_path / "neg"), "--queries", "-1"])
    assert exc.value.code == 2


def test_summarize_in_database_equals_pandas_path(built: tuple[Engine, Path]) -> None:
    engine, _ = built
    for synthetic in (False, True):
        fast = summarize_db(engine, include_synthetic=synthetic)
        slow = summarize(load_decisions(engine, include_synthetic=synthetic))
        assert len(fast) == len(STRATEGIES) + 1 + synthetic
        pd.testing.assert_frame_equal(fast, slow, check_exact=False, rtol=1e-9)
    stub = fast[fast["strategy"] == "stub-online"].iloc[0]
    assert stub["n_seeds"] == 2 and stub["n_queries"] == 50


def test_bootstrap_from_histogram_is_the_same_bootstrap() -> None:
    rng = np.random.default_rng(3)
    x = rng.integers(0, 4, 500) / 3  # per-query accuracy over 3 seeds
    levels, counts = np.unique(x, return_counts=True)
    # Against resampling query indices: the intervals agree to Monte-Carlo precision.
    idx = rng.integers(len(x), size=(4000, len(x)))
    means = x[idx].mean(axis=1)
    lo, hi = bootstrap_ci_counts(levels, counts, n_boot=4000)
    assert lo == pytest.approx(np.quantile(means, 0.025), abs=0.006)
    assert hi == pytest.approx(np.quantile(means, 0.975), abs=0.006)
    # Distinct values take bootstrap_ci's other path (resampled indices): it agrees with the
    # histogram path on the same data (each level once) and with the normal interval
    # mean ± 1.96·sd/√n (Monte-Carlo error of either end ≈ 0.0006 at 4000 resamples).
    y = np.sort(rng.random(400))  # sorted: a resample of part of the indices would show
    lo, hi = bootstrap_ci(y, n_boot=4000)
    lo2, hi2 = bootstrap_ci_counts(np.sort(y), np.ones(400), n_boot=4000)
    assert (lo, hi) == pytest.approx((lo2, hi2), abs=0.003)
    half = 1.96 * y.std() / np.sqrt(400)
    assert (lo, hi) == pytest.approx((y.mean() - half, y.mean() + half), abs=0.003)


def test_site_on_postgres(
    postgres_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The in-database aggregation (raw DBAPI read, casts) on PostgreSQL, against pandas; the
    pages written by forked processes, after which the builder's connections still work."""
    from uisbench.site import writer

    engine = make_toy_db(tmp_path, url=postgres_db)
    fast = summarize_db(engine)
    slow = summarize(load_decisions(engine))
    pd.testing.assert_frame_equal(fast, slow, check_exact=False, rtol=1e-9)
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "0")
    monkeypatch.setattr(writer, "PARALLEL_PAGES", 2)  # this small site in two writers too
    out = build_site(engine, tmp_path / "out", jobs=2)
    assert "stub-online" in (out / "index.html").read_text("utf-8")
    assert list((out / "data").glob("*stub-online*.regret.csv"))
    again = build_site(engine, tmp_path / "again", jobs=1)  # the same server connections
    files = sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file())
    assert len(files) > 20
    assert all((out / f).read_bytes() == (again / f).read_bytes() for f in files)


def test_budget_verdicts_oracle_front_and_prefix_cache_on_the_board(
    built: tuple[Engine, Path],
) -> None:
    from uisbench.results.aggregate import per_query_accuracy, read_packed_outcomes

    engine, out = built
    runs, boards = leaderboard(engine)
    board = next(b for b in boards if not b.synthetic)
    assert board.prefix_cache == "block:16"
    # Per-query accuracy (over seeds) equals a brute-force groupby of the decisions.
    runs = runs[runs["n_decisions"] > 0]
    pq = per_query_accuracy(read_packed_outcomes(engine, runs["run_id"].tolist()), runs)
    dec = load_decisions(engine)
    brute = dec.groupby(["config_label", "query_id"])["correct"].mean()
    for (label, qid), v in brute.items():
        row = pq.xs(label, level="config_label").iloc[0]
        assert row[qid] == pytest.approx(v)
    # Budget rows against the board's configuration table (another aggregation path) and
    # pareto's hull: the model's accuracy is its own row's; the figure chosen on all queries is
    # the family hull at the budget (at its cheapest cost when reached within tolerance).
    configs = board.configs.set_index("config_label")
    assert len(board.budget.dropna(subset=["accuracy"]))
    for r in board.budget.itertuples():
        assert r.single_accuracy == pytest.approx(configs.loc[r.budget_of, "accuracy"])
        fam = configs[configs["front"] == r.group]
        cost, acc = fam[board.unit].to_numpy(float), fam["accuracy"].to_numpy(float)
        if cost.min() > r.budget * (1 + REACH_TOLERANCE):
            assert r.reach == "no" and np.isnan(r.accuracy)
            continue
        spend = max(r.budget, cost.min())
        want = hull_value(*nondecreasing_hull(cost, acc), np.array([spend]))[0]
        assert r.accuracy_in_sample == pytest.approx(want)
        assert r.gain_low <= r.gain <= r.gain_high
    # The oracle front against a brute force over the decisions: under a cap t each query
    # keeps its oracle arm if solved at cost ≤ t, else pays its cheapest single model and is
    # wrong; every front point is such a (mean cost, accuracy) pair for some solved cost t.
    unit = board.unit
    dec = dec[dec["bank"] == board.bank]
    oracle = dec[dec["config_label"] == "oracle:k=4"].groupby("query_id")[["correct", unit]]
    oracle = oracle.mean()
    cheapest = dec[dec["strategy"] == "single"].groupby(["config_label", "query_id"])[unit]
    cheapest = cheapest.mean().groupby("query_id").min()
    brute = []
    for t in sorted(set(oracle.loc[oracle["correct"] > 0.5, unit])):
        paid, right = [], []
        for q, row in oracle.iterrows():
            ok = row["correct"] > 0.5 and row[unit] <= t
            paid.append(row[unit] if ok else cheapest[q])
            right.append(ok)
        brute.append((np.mean(paid), np.mean(right)))
    front = board.oracle_front
    assert len(front) >= 2
    for c, a in zip(front["cost"], front["accuracy"]):
        assert any(c == pytest.approx(bc) and a == pytest.approx(ba) for bc, ba in brute)
    assert (front["cost"].iloc[-1], front["accuracy"].iloc[-1]) == pytest.approx(brute[-1])
    page = next((out / "tasks").glob("toy*.html")).read_text()
    assert "At each single model" in page and "prefix cache <b>block:16</b>" in page


def test_board_of_a_seeded_split_names_its_bank_and_lists_its_runs(tmp_path: Path) -> None:
    """Runs on another split get their own board, labelled ``NAME@split=N``; the site still
    finds that board's bank (its provenance in the footer) and its runs (its run pages)."""
    db = str(tmp_path / "x.db")
    for split_seed in ("0", "1"):
        main(["run", "--db", db, "--strategy", "random", "--seed", "0", "--split-seed", split_seed])
    out = tmp_path / "site"
    main(["site", "build", "--db", db, "--out", str(out)])
    pages = {p.name: p.read_text(encoding="utf-8") for p in (out / "tasks").glob("*.html")}
    split_page = [text for name, text in pages.items() if "split-1" in name or "split=1" in text]
    assert split_page, sorted(pages)
    assert "configurations · 1 runs" in " ".join(split_page[0].split())  # its run is counted
    assert "arith-smoke-cpu-tiny</" in (out / "index.html").read_text(encoding="utf-8")


def test_the_board_reads_the_same_from_postgres_and_sqlite(
    postgres_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same bank and runs in both databases give the same site, file for file, but for
    the runs' start and end times: every figure, ranking, interval, chart and data file."""
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "0")
    built = {}
    for name, url in (("lite", None), ("pg", postgres_db)):
        folder = tmp_path / name
        folder.mkdir()
        built[name] = build_site(make_toy_db(folder, url=url), folder / "out", jobs=1)
    lite, pg = (
        {p.relative_to(o): p for o in [out] for p in out.rglob("*") if p.is_file()}
        for out in built.values()
    )
    assert sorted(lite) == sorted(pg) and len(lite) > 20
    when = re.compile(rb"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC")  # a run's own times
    differ = [
        str(f)
        for f in lite
        if when.sub(b"", lite[f].read_bytes()) != when.sub(b"", pg[f].read_bytes())
    ]
    assert differ == []
    assert any(when.search(p.read_bytes()) for p in lite.values())  # the mask is not vacuous
