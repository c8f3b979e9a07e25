"""Submitted results on the board: a result file exported from another database appears beside
the local runs as *submitted* when its bank matches a local one, as *verified* after
``uisbench gate --verify`` re-ran it here; an edited file or another bank does not pass."""

from __future__ import annotations

import json
import sys

import pytest

from tests.fakes import FakeBank, FakeModel, cli
from uisbench.store.bank import import_file
from uisbench.store.engine import open_engine

BANK = FakeBank(
    models=(
        FakeModel("small", 0.35, samples=4, params_b=1.0),
        FakeModel("big", 0.75, samples=4, params_b=8.0),
    ),
    queries=40,
    train=20,
)
OTHER = FakeBank(models=BANK.models, queries=40, train=20, seed=9)  # same name, other samples


@pytest.fixture
def world(tmp_path, monkeypatch, capsys):
    """Someone's database with runs exported to ``results/``, and a local database on the same
    bank (imported from its own copy of the file) with a local run."""
    monkeypatch.setattr(sys, "argv", ["uisbench"])
    theirs, ours = tmp_path / "theirs", tmp_path / "ours"
    results = tmp_path / "results"
    for folder in (theirs, ours, results):
        folder.mkdir()
    for folder, bank in ((theirs, BANK), (ours, BANK)):
        db = open_engine(str(folder / "r.db"))
        import_file(db, bank.write(folder), folder / "toy.models.json")
    run = ["run", "--bank", "toy", "--no-report"]
    theirs_db, ours_db = str(theirs / "r.db"), str(ours / "r.db")
    assert cli(capsys, *run, "--db", theirs_db, "--strategy", "majority:model=big,k=3")[0] == 0
    assert cli(capsys, *run, "--db", ours_db, "--strategy", "single:model=small")[0] == 0
    export = ["results", "export", "--db", theirs_db, "--bank", "toy"]
    code, _, _ = cli(
        capsys, *export, "--submitter", "Ada Example", "--out", str(results / "ada.json")
    )
    assert code == 0
    # a file made on a bank of the same name but other content: left out
    other = tmp_path / "other"
    other.mkdir()
    import_file(open_engine(str(other / "r.db")), OTHER.write(other), other / "toy.models.json")
    assert cli(capsys, *run, "--db", str(other / "r.db"), "--strategy", "single:model=big")[0] == 0
    out = str(results / "elsewhere.json")
    assert cli(capsys, "results", "export", "--db", str(other / "r.db"), "--out", out)[0] == 0
    return {"db": ours_db, "results": results, "site": tmp_path / "site"}


def build(capsys, world) -> tuple[str, str]:
    where = ["--db", world["db"], "--out", str(world["site"]), "--results", str(world["results"])]
    code, out, err = cli(capsys, "site", "build", *where, "--include-synthetic")
    err = out + err  # both streams
    assert code == 0, err
    return (world["site"] / "index.html").read_text(), err


def test_submitted_then_verified_by_the_gate(world, capsys):
    html, err = build(capsys, world)
    assert "majority:model=big,k=3" in html and "single:model=small" in html  # beside ours
    assert "Ada Example" in html
    assert '<span class="badge submitted">submitted</span>' in html.split("<tbody>")[-1]
    assert "verified</span>" not in html.split("<tbody>")[-1]
    assert "elsewhere.json: made on bank 'toy'" in err  # other content: one line, left out
    assert "elsewhere.json</td>" not in html

    gate = ["gate", "--baseline", str(world["results"] / "ada.json"), "--bank", "toy"]
    code, out, err = cli(capsys, *gate, "--db", world["db"], "--verify")
    err = out + err  # both streams
    assert code == 0, err
    assert "verified:" in err
    record = json.loads((world["results"] / "ada.verified.json").read_text())
    assert record["verified"] is True and record["isolation"] == "process"
    html, _ = build(capsys, world)
    assert '<span class="badge verified">verified</span>' in html


def test_an_edited_file_is_not_verified(world, capsys):
    path = world["results"] / "ada.json"
    gate = ["gate", "--baseline", str(path), "--bank", "toy", "--db", world["db"], "--verify"]
    assert cli(capsys, *gate)[0] == 0
    # the submitter claims every query right: the re-run disagrees
    text = path.read_text()
    rows = [line for line in text.splitlines() if line.startswith('   ["')]
    claimed = text
    for line in rows:
        cells = json.loads(line.strip().rstrip(","))
        cells[1] = 1
        claimed = claimed.replace(line.strip().rstrip(","), json.dumps(cells), 1)
    assert claimed != text
    path.write_text(claimed)
    html, _ = build(capsys, world)  # the old verdict names the old file's digest
    assert "verified</span>" not in html.split("<tbody>")[-1]
    code, out, err = cli(capsys, *gate)
    err = out + err  # both streams
    assert code == 1 and "not verified" in err and "accuracy" in err
    html, _ = build(capsys, world)
    assert "verified</span>" not in html.split("<tbody>")[-1]


def test_the_ci_script_verifies_each_file_on_the_bank_it_names(world, tmp_path):
    """scripts/verify_submissions.sh: a bank named by NAME.bank.txt, a verdict per file."""
    import os
    import subprocess
    from pathlib import Path

    results = world["results"]
    (results / "elsewhere.json").unlink()
    (results / "ada.bank.txt").write_text(str(tmp_path / "theirs" / "toy.jsonl") + "\n")
    script = Path(__file__).resolve().parents[2] / "scripts" / "verify_submissions.sh"
    env = {**os.environ, "PYTHON": sys.executable}
    done = subprocess.run(
        ["bash", str(script), str(results)], env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr
    assert json.loads((results / "ada.verified.json").read_text())["verified"] is True
