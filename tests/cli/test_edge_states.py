"""Valid inputs in unusual states: each either works or is one line, exit 2, nothing written.

Issue 20: infinite options in result files, boards of oracle runs only, databases that are not
uisbench's yet (a view, a user_version, a hot journal), read-only file systems, lopsided banks.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from uisbench.cli import main


def row(q: int, k: int, model: str, **change) -> dict:
    base = dict(task="t", query_id=f"q{q}", split=None, prompt=f"p{q}", reference="1")
    base |= dict(model=model, sample=k, answer="1", correct=(q + k + len(model)) % 3 == 0)
    cost = 0.5 if model == "big" else 0.1
    return (
        base
        | dict(input_tokens=3, output_tokens=4, cost_usd=cost, latency_s=0.25, logprob=-1.0)
        | change
    )


def cli(capsys, *args: str) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exc:
        main(list(args))
        raise SystemExit(0)
    out = capsys.readouterr()
    return exc.value.code, out.err


@pytest.fixture
def two(tmp_path, capsys, monkeypatch) -> tuple[Path, str]:
    """A database holding bank ``two``: 40 queries, models big and small, 2 samples each."""
    monkeypatch.chdir(tmp_path)
    rows = [row(q, k, m) for q in range(40) for k in range(2) for m in ("big", "small")]
    bank = tmp_path / "two.jsonl"
    bank.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    db = str(tmp_path / "u.db")
    assert cli(capsys, "bank", "import", str(bank), "--db", db)[0] == 0
    return tmp_path, db


def run(capsys, db: str, spec: str, *extra: str) -> None:
    code, err = cli(
        capsys, "run", "--bank", "two", "--strategy", spec, "--no-report", "--db", db, *extra
    )
    assert code == 0, err


# ---------------------------------------------------------------- item 13
def test_results_export_with_wtp_inf_round_trips(two, capsys):
    """JSON has no infinity: an infinite option is written as the string "inf" (the strategy
    parses it back to the same float), and the gate re-runs it."""
    tmp_path, db = two
    run(capsys, db, "lr-router:wtp=inf")
    out = tmp_path / "r.json"
    code, err = cli(capsys, "results", "export", "--bank", "two", "--out", str(out), "--db", db)
    assert code == 0, err
    raw = json.loads(out.read_text(encoding="utf-8"))  # strict: no Infinity token
    assert raw["runs"][0]["params"]["wtp"] == "inf"
    code, err = cli(capsys, "gate", "--baseline", str(out), "--bank", str(tmp_path / "two.jsonl"))
    assert code == 0, err
    assert cli(capsys, "compare", str(out), str(out))[0] == 0


@pytest.mark.parametrize("cache", [None, "none"])
def test_site_of_a_board_with_only_oracle_runs(two, capsys, cache):
    """Only oracle runs, or a prefix-cache setting only an oracle run used: the site builds."""
    tmp_path, db = two
    if cache:
        run(capsys, db, "single:model=big")
    run(capsys, db, "oracle", *(("--prefix-cache", cache) if cache else ()))
    code, err = cli(capsys, "site", "build", "--out", str(tmp_path / "site"), "--db", db)
    assert code == 0, err
    assert (tmp_path / "site" / "index.html").is_file()


# ---------------------------------------------------------------- item 14
def test_frugal_cascade_refuses_more_plans_than_can_be_fitted(tmp_path, capsys):
    """Each option is within its bound, but together they ask for 15.2 million plans."""
    models = [f"m{i}" for i in range(6)]
    rows = [row(q, 0, m, split="train" if q < 20 else "test") for q in range(40) for m in models]
    bank = tmp_path / "six.jsonl"
    bank.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    db = str(tmp_path / "u.db")
    assert cli(capsys, "bank", "import", str(bank), "--db", db)[0] == 0
    before = list(sqlite3.connect(db).iterdump())
    spec = "frugal-cascade:grid=100,max_len=4,signal=logprob"
    code, err = cli(capsys, "run", "--bank", "six", "--strategy", spec, "--no-report", "--db", db)
    assert code == 2 and err.count("\n") == 1 and "15201506 candidate plans" in err, err
    assert list(sqlite3.connect(db).iterdump()) == before
