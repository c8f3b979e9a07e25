"""The terminal report leads with the verdict (issue 19): a compact table per task, short
labels, empty columns dropped with a reason, and a reason wherever AIQ, APGR or CPT is "—"."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.test_outcomes_only import outcomes_bank
from tests.fakes import cli as run_cli
from tests.fakes import words
from tests.site.toysite import make_toy_db, toy_bank
from uisbench import Runner, import_file, open_engine
from uisbench.results.report import short_config
from uisbench.store.bankfile import models_file_beside


def cli(capsys, *args: str) -> tuple[int, str]:
    """Exit code and standard output as one line (no table wrapping)."""
    code, out, _ = run_cli(capsys, *args)
    return code, words(out)


@pytest.fixture(scope="module")
def toy_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    folder = tmp_path_factory.mktemp("report")
    make_toy_db(folder)
    return str(folder / "toy.db")


def test_labels_show_only_options_that_differ_from_the_defaults() -> None:
    label = "t2:budget=8.0,metric=maj,approach=1,served=0.0,restarts=32,unit=auto"
    assert short_config(label) == "t2:budget=8.0"
    assert short_config("threshold-router:share=0.3,strong=,weak=,pair=auto") == (
        "threshold-router:share=0.3"
    )
    assert short_config("single:model=toy-mid") == "single:model=toy-mid"
    assert short_config("no-such-strategy:a=1") == "no-such-strategy:a=1"


def test_report_leads_with_the_verdict_and_lists_configurations_behind_all(
    toy_db: str, capsys
) -> None:
    code, out = cli(capsys, "report", "--db", toy_db)
    assert code == 0
    assert "family" in out and "at toy-small's cost" in out and "at toy-large's cost" in out
    assert "Claim:" in out
    assert "single:model=toy-small" not in out  # the full table is behind --all
    assert "uisbench report --all" in out
    code, full = cli(capsys, "report", "--db", toy_db, "--all")
    assert code == 0 and "single:model=toy-small" in full and "$/q" in full


def test_one_single_model_says_why_apgr_is_a_dash(tmp_path: Path, capsys) -> None:
    engine = open_engine(str(tmp_path / "one.db"))
    bank = toy_bank(n_queries=30).write(tmp_path)
    import_file(engine, bank, models_file_beside(bank))
    runner = Runner(engine, "toy-task", "toy-task")
    runner.run("single:model=toy-mid", 0)
    runner.run("majority:model=toy-mid,k=4", 0)
    code, out = cli(capsys, "report", "--db", str(tmp_path / "one.db"))
    assert code == 0
    assert "APGR and CPT: — because 1 single model(s)" in out


def test_empty_columns_are_dropped_with_a_reason(tmp_path: Path, capsys) -> None:
    bank = outcomes_bank(tmp_path / "outcomes.jsonl")
    db = str(tmp_path / "o.db")
    args = ["--bank", str(bank), "--db", db, "--no-report", "--strategy", "single:model=small"]
    assert cli(capsys, "run", *args, "--strategy", "single:model=big")[0] == 0
    code, out = cli(capsys, "report", "--db", db, "--all")
    assert code == 0
    assert "$/q omitted" in out and "FLOPs/q omitted" in out
    assert "$/q │" not in out and "FLOPs/q (" not in out
