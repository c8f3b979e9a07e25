"""Small things a researcher trips on (issue 19): `results export` to CSV, `bank info` with
train and test accuracy apart, and a models file given to `bank import` by mistake."""

from __future__ import annotations

import csv
from pathlib import Path

from tests.fakes import cli, words
from tests.site.toysite import toy_bank


def _bank(tmp_path: Path) -> Path:
    return toy_bank(n_queries=30).write(tmp_path)


def test_results_export_writes_csv_or_refuses(tmp_path: Path, capsys) -> None:
    db = str(tmp_path / "r.db")
    args = ["run", "--bank", str(_bank(tmp_path)), "--db", db, "--no-report"]
    assert cli(capsys, *args, "--strategy", "single:model=toy-mid")[0] == 0
    out = tmp_path / "runs.csv"
    assert cli(capsys, "results", "export", "--db", db, "--out", str(out))[0] == 0
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 10 and rows[0]["configuration"] == "single:model=toy-mid"  # test split
    assert {r["correct"] for r in rows} <= {"0", "1"}
    code, _, err = cli(capsys, "results", "export", "--db", db, "--out", str(tmp_path / "r.xlsx"))
    assert code == 2 and ".csv" in err and not (tmp_path / "r.xlsx").exists()


def test_bank_info_shows_train_and_test_accuracy_apart(tmp_path: Path, capsys) -> None:
    db = str(tmp_path / "r.db")
    assert cli(capsys, "bank", "import", str(_bank(tmp_path)), "--db", db)[0] == 0
    code, out, _ = cli(capsys, "bank", "info", "--db", db)
    assert code == 0 and "test accuracy" in words(out) and "train accuracy" in words(out)


def test_importing_a_models_file_says_to_use_models(tmp_path: Path, capsys) -> None:
    bank = _bank(tmp_path)
    models = bank.with_name(bank.name.replace(".jsonl", ".models.json"))
    assert models.exists()
    code, _, err = cli(capsys, "bank", "import", str(models), "--db", str(tmp_path / "r.db"))
    assert code == 2 and "--models" in err and "not a bank" in err
    assert not (tmp_path / "r.db").exists()


def test_import_says_it_has_begun_outside_a_terminal(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setattr("uisbench.cli.bank.ANNOUNCE_MB", 0.0)  # the toy bank is small
    bank = _bank(tmp_path)
    code, out, err = cli(capsys, "bank", "import", str(bank), "--db", str(tmp_path / "r.db"))
    assert code == 0 and f"importing {bank}" in words(out) and " s)" in words(out) and not err
