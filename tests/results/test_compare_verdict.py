"""One verdict for ``compare`` and ``gate`` (issue 19 items 4 and 5): the terminal, the Markdown,
the JUnit XML and the exit code agree; a configuration missing in the candidate is a failure in
all four; outside a terminal the table is wide, failing rows first."""

from __future__ import annotations

from pathlib import Path

from junitparser import JUnitXml

from tests.fakes import cli_code
from tests.results.test_compare import outcomes, result_set
from uisbench.results.compare import compare
from uisbench.results.compare_render import print_table, to_junit, to_markdown
from uisbench.results.export import write_results

LONG = "majority:model=some-rather-long-model-name-8b-instruct,k=16,tie=first"


def _files(tmp_path: Path, base, cand) -> tuple[str, str]:
    a, b = tmp_path / "base.json", tmp_path / "cand.json"
    write_results(base, a)
    write_results(cand, b)
    return str(a), str(b)


def _missing():
    a = outcomes([1] * 40, [1.0] * 40, config="a")
    b = outcomes([1] * 40, [1.0] * 40, config="b")
    return result_set(a, b), result_set(a)


def _regressed():
    base = result_set(outcomes([1] * 40, [1.0] * 40, config=LONG), outcomes([1] * 40, [100.0] * 40))
    cand = result_set(
        outcomes([1] * 40, [1.0] * 40, config=LONG), outcomes([0] * 30 + [1] * 10, [100.0] * 40)
    )
    return base, cand


def test_missing_configuration_is_a_failure_everywhere(tmp_path: Path, capsys) -> None:
    base, cand = _missing()
    cmp = compare(base, cand)
    assert cli_code("compare", *_files(tmp_path, base, cand)) == 1
    out = capsys.readouterr().out
    assert "0 regression(s)" not in out
    assert "FAIL" in out and "missing in the candidate" in out
    md = to_markdown(cmp)
    assert md.startswith("### uisbench compare: ❌")
    assert "| t | b |" in md and "missing in the candidate" in md
    path = tmp_path / "x.xml"
    path.write_text(to_junit(cmp))
    suite = list(JUnitXml.fromfile(str(path)))[0]
    assert suite.failures == 1 and suite.name == "uisbench compare"


def test_compare_exits_1_on_a_regression_it_prints_as_fail(tmp_path: Path, capsys) -> None:
    assert cli_code("compare", *_files(tmp_path, *_regressed())) == 1
    out = capsys.readouterr().out
    assert "FAIL accuracy" in out and "uisbench compare: FAIL" in out
    base, _ = _regressed()
    assert cli_code("compare", *_files(tmp_path, base, base)) == 0
    assert "uisbench compare: PASS" in capsys.readouterr().out


def test_gate_heading_says_gate() -> None:
    assert to_markdown(compare(*_regressed()), command="gate").startswith("### uisbench gate: ❌")


def test_outside_a_terminal_the_table_is_wide_and_failing_rows_come_first(capsys) -> None:
    print_table(compare(*_regressed()))  # capsys: not a terminal, like a CI log
    out = capsys.readouterr().out
    assert LONG in out  # one line, not folded to 80 columns
    rows = [line for line in out.splitlines() if "│ t " in line or "| t " in line]
    assert "FAIL" in rows[0] and "ok" in rows[-1]
