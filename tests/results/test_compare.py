"""Paired comparison: McNemar and the bootstrap against hand-computed values, verdicts,
result files round-tripping, and the three renderings (terminal, Markdown, JUnit)."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from junitparser import JUnitXml
from markdown_it import MarkdownIt

from uisbench.errors import UisbenchError
from uisbench.results.compare import Tolerances, compare, mcnemar_exact, paired_bootstrap
from uisbench.results.compare_render import print_table, to_junit, to_markdown
from uisbench.results.export import ResultSet, RunOutcomes, read_results, write_results

DIGEST = "sha256:" + "ab" * 32


def outcomes(
    correct: list[int], cost: list[float], seed: int = 0, config: str = "c"
) -> RunOutcomes:
    n = len(correct)
    queries = pd.DataFrame(
        {
            "query": [f"q{i:03d}" for i in range(n)],
            "correct": correct,
            "flops": cost,
            "dollars": [math.nan] * n,
            "tokens": [10.0] * n,
            "latency_s": [0.5] * n,
        }
    )
    return RunOutcomes("t", config, "single", {"model": "m"}, seed, ["m"], 0, queries)


def result_set(*runs: RunOutcomes, digest: str = DIGEST) -> ResultSet:
    return ResultSet("bank", digest, list(runs), {"uisbench_version": "0"})


def test_mcnemar_exact_by_hand() -> None:
    base = np.array([1, 1, 1, 0, 0, 1])
    cand = np.array([0, 0, 0, 0, 1, 1])
    improved, worsened, p = mcnemar_exact(base, cand)
    assert (improved, worsened) == (1, 3)
    # two-sided exact binomial, n = 4: P(X <= 1) + P(X >= 3) = (1 + 4 + 4 + 1) / 16
    assert p == pytest.approx(10 / 16)
    assert mcnemar_exact(base, base)[2] == 1.0


def test_paired_bootstrap_matches_enumeration() -> None:
    """With 4 queries, all 4**4 resamples can be listed: the bootstrap's percentiles must agree
    with the exact resampling distribution's."""
    base = np.array([[1, 10.0], [0, 12.0], [1, 8.0], [0, 10.0]])
    cand = np.array([[1, 11.0], [1, 12.0], [0, 9.0], [1, 13.0]])
    acc, cost = [], []
    for idx in itertools.product(range(4), repeat=4):
        b, c = base[list(idx)].mean(axis=0), cand[list(idx)].mean(axis=0)
        acc.append(c[0] - b[0])
        cost.append(c[1] / b[1] - 1)
    (alo, ahi), (clo, chi) = paired_bootstrap(base, cand, level=0.2, n_boot=40_000, seed=1)
    assert alo == pytest.approx(np.percentile(acc, 10), abs=0.01)
    assert ahi == pytest.approx(np.percentile(acc, 90), abs=0.01)
    assert clo == pytest.approx(np.percentile(cost, 10), abs=0.01)
    assert chi == pytest.approx(np.percentile(cost, 90), abs=0.01)


def test_identical_sides_have_zero_width_and_pass() -> None:
    run = outcomes([1, 0] * 20, [100.0] * 40)
    cmp = compare(result_set(run), result_set(run))
    (row,) = cmp.rows
    assert (row.d_acc, row.d_acc_low, row.d_acc_high) == (0, 0, 0)
    assert row.d_cost == 0 and row.p_mcnemar == 1.0
    assert not cmp.failed


def test_accuracy_drop_is_flagged_only_beyond_tolerance() -> None:
    base = outcomes([1] * 40, [100.0] * 40)
    worse = outcomes([0] * 30 + [1] * 10, [100.0] * 40, seed=1)
    (row,) = compare(result_set(base), result_set(worse)).rows
    assert (row.improved, row.worsened) == (0, 30)
    assert row.p_mcnemar == pytest.approx(2 * 0.5**30)
    assert row.d_acc == pytest.approx(-0.75)
    assert row.accuracy_regression and not row.cost_regression
    tolerant = Tolerances(max_accuracy_drop=0.8)
    assert not compare(result_set(base), result_set(worse), tolerant).failed


def test_cost_rise_needs_significance_and_size() -> None:
    rng = np.random.default_rng(0)
    cost = rng.uniform(90, 110, 60)
    base = outcomes([1] * 60, cost.tolist())
    dearer = outcomes([1] * 60, (cost * 1.2).tolist(), seed=1)
    slightly = outcomes([1] * 60, (cost * 1.02).tolist(), seed=1)
    (row,) = compare(result_set(base), result_set(dearer)).rows
    assert row.cost_unit == "flops"  # dollars unknown: the first unit known everywhere
    assert row.d_cost == pytest.approx(0.2) and row.d_cost_low > 0.19
    assert row.cost_regression
    (row,) = compare(result_set(base), result_set(slightly)).rows
    assert row.d_cost_low > 0 and not row.cost_regression  # significant, within 5%


def test_seeds_are_averaged_per_query_and_paired_by_order() -> None:
    base = [outcomes([1, 1, 0, 0], [1.0] * 4, seed=s) for s in (0, 1)]
    cand = [outcomes([1, 0, 0, 1], [1.0] * 4, seed=s) for s in (5, 6)]
    (row,) = compare(result_set(*base), result_set(*cand)).rows
    assert (row.seeds_baseline, row.seeds_candidate) == (2, 2)
    assert (row.improved, row.worsened) == (2, 2)
    assert row.acc_baseline == 0.5 and row.acc_candidate == 0.5


def test_other_bank_is_refused() -> None:
    run = outcomes([1] * 4, [1.0] * 4)
    with pytest.raises(UisbenchError, match="different banks"):
        compare(result_set(run), result_set(run, digest="sha256:" + "cd" * 32))


def test_missing_configuration_fails() -> None:
    a, b = outcomes([1] * 4, [1.0] * 4, config="a"), outcomes([1] * 4, [1.0] * 4, config="b")
    cmp = compare(result_set(a, b), result_set(a))
    assert cmp.missing == [("t", "b")] and cmp.failed


def test_result_file_round_trip(tmp_path: Path) -> None:
    data = result_set(outcomes([1, 0, 1], [1.5, 2.0, 2.5]), outcomes([0, 0, 1], [1, 2, 3], seed=3))
    path = tmp_path / "r.json"
    write_results(data, path)
    text = path.read_text()
    assert '   ["q001", 0, 2.0, null, 10.0, 0.5]' in text  # one query per line
    back = read_results(path)
    assert back.digest == DIGEST and [r.seed for r in back.runs] == [0, 3]
    pd.testing.assert_frame_equal(back.runs[0].queries, data.runs[0].queries, check_dtype=False)


@pytest.mark.parametrize(
    "text, why",
    [
        ("{", "invalid JSON"),
        ('{"format": "x"}', "expected format"),
        (
            '{"format": "uisbench-results/1", "bank": {"name": "b", "digest": "d"}, "runs": [{}]}',
            "malformed",
        ),
    ],
)
def test_bad_result_files(tmp_path: Path, text: str, why: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(UisbenchError, match=why):
        read_results(path)


def _two_rows():
    base = result_set(
        outcomes([1] * 40, [100.0] * 40), outcomes([1] * 40, [1.0] * 40, config="x|y")
    )
    cand = result_set(
        outcomes([0] * 30 + [1] * 10, [100.0] * 40), outcomes([1] * 40, [1.0] * 40, config="x|y")
    )
    return compare(base, cand)


def test_markdown_renders_a_table() -> None:
    md = to_markdown(_two_rows())
    tokens = MarkdownIt("commonmark").enable("table").parse(md)
    types = [t.type for t in tokens]
    assert "table_open" in types
    rows = sum(t.type == "tr_open" for t in tokens)
    assert rows == 3  # header + two configurations; the "|" in a label is escaped
    assert "FAIL accuracy" in md and "❌" in md


def test_junit_parses_with_one_failure(tmp_path: Path) -> None:
    path = tmp_path / "gate.xml"
    path.write_text(to_junit(_two_rows()))
    xml = JUnitXml.fromfile(str(path))
    suites = list(xml)
    assert len(suites) == 1 and suites[0].tests == 2 and suites[0].failures == 1
    cases = {c.name: c for c in suites[0]}
    assert cases["c"].result and cases["c"].result[0].message == "FAIL accuracy"
    assert cases["x|y"].is_passed


def test_terminal_table(capsys: pytest.CaptureFixture[str]) -> None:
    from rich.console import Console

    print_table(_two_rows(), Console(width=250, force_terminal=False))
    out = capsys.readouterr().out
    assert "-75.0 pp" in out and "FAIL accuracy" in out and "Bonferroni" in out
