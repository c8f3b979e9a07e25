"""Valid inputs in unusual states: each either works or is one line, exit 2, nothing written.

Issue 20: infinite options in result files, boards of oracle runs only, databases that are not
uisbench's yet (a view, a user_version, a hot journal), read-only file systems, lopsided banks.
"""

from __future__ import annotations

import json
import re
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from tests.fakes import cli as run_cli
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
    """Exit code and standard error of one call."""
    code, _, err = run_cli(capsys, *args)
    return code, err


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


# ---------------------------------------------------------------- item 16
def _view_only(path: Path) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE VIEW answers AS SELECT 42 AS answer")


def _user_version_only(path: Path) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA user_version = 7")


def _hot_journal(path: Path) -> None:
    """A copy taken mid-transaction: the database and its rollback journal (a crashed writer)."""
    import shutil

    src = path.with_name("src.db")
    conn = sqlite3.connect(src, isolation_level=None)
    conn.execute("PRAGMA journal_mode = DELETE")
    conn.execute("CREATE TABLE x (a)")
    conn.execute("INSERT INTO x VALUES (randomblob(100000))")
    conn.execute("PRAGMA cache_size = 2")  # spill changed pages into the file before commit
    conn.execute("BEGIN")
    conn.execute("UPDATE x SET a = randomblob(100000)")
    conn.execute("INSERT INTO x VALUES (randomblob(200000))")
    shutil.copy(src, path)
    shutil.copy(f"{src}-journal", f"{path}-journal")
    conn.execute("ROLLBACK")
    conn.close()
    src.unlink()


@pytest.mark.parametrize("make", [_view_only, _user_version_only, _hot_journal])
@pytest.mark.parametrize("command", ["import", "report"])
def test_a_database_that_is_not_ours_yet_is_refused_before_any_write(
    tmp_path, capsys, make, command
):
    bank = tmp_path / "b.jsonl"
    bank.write_text(json.dumps(row(0, 0, "big")) + "\n", encoding="utf-8")
    db = tmp_path / "other.db"
    make(db)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    args = ["bank", "import", str(bank)] if command == "import" else ["report"]
    code, err = cli(capsys, *args, "--db", str(db))
    assert code == 2 and err.count("\n") == 1, err
    assert "not a uisbench database" in err or "hot journal" in err, err
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


# ---------------------------------------------------------------- item 18
@pytest.fixture
def read_only_copy(two, capsys):
    """The fixture's database (with a run) behind a read-only bind mount; skipped where this
    process may not mount (not root, or no CAP_SYS_ADMIN)."""
    import subprocess

    tmp_path, db = two
    run(capsys, db, "single:model=big")
    folder, mnt = tmp_path / "ro-src", tmp_path / "ro"
    folder.mkdir(), mnt.mkdir()
    with closing(sqlite3.connect(db)) as src, closing(sqlite3.connect(folder / "u.db")) as dst:
        src.backup(dst)
        dst.execute("PRAGMA journal_mode = WAL")  # as uisbench leaves it: WAL, no -shm
    assert sorted(p.name for p in folder.iterdir()) == ["u.db"]
    mounted = subprocess.run(["mount", "--bind", str(folder), str(mnt)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot bind-mount here: {mounted.stderr.decode().strip()}")
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(mnt)], check=True)
        yield tmp_path, mnt / "u.db"
    finally:
        subprocess.run(["umount", "--lazy", str(mnt)], check=True)  # pooled connections


@pytest.mark.parametrize(
    "args",
    [["report"], ["list", "banks"], ["site", "build", "--out", "SITE"], ["bank", "info"]],
)
def test_read_commands_work_on_a_read_only_file_system(read_only_copy, capsys, args):
    tmp_path, db = read_only_copy
    argv = [str(tmp_path / "site") if a == "SITE" else a for a in args]
    code, err = cli(capsys, *argv, "--db", str(db))
    assert code == 0, err


# ---------------------------------------------------------------- item 17
def test_a_lopsided_bank_is_refused_before_dense_arrays(tmp_path, capsys):
    """Per query and model at most 10,000 samples are imported (sample indexes 0..9,999); a
    bank whose one query holds 10,000 beside a thousand of one sample each would pad to
    queries × 10,000 cells per array: replay refuses it instead of allocating."""
    rows = [row(q, 0, "big") for q in range(1001)] + [row(5000, k, "big") for k in range(10_000)]
    bank = tmp_path / "lop.jsonl"
    bank.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    db = str(tmp_path / "u.db")
    assert cli(capsys, "bank", "import", str(bank), "--db", db)[0] == 0
    spec = "single:model=big"
    before = list(sqlite3.connect(db).iterdump())
    code, err = cli(capsys, "run", "--bank", "lop", "--strategy", spec, "--no-report", "--db", db)
    assert code == 2 and err.count("\n") == 1 and "10000 samples" in err, err
    assert list(sqlite3.connect(db).iterdump()) == before

    over = tmp_path / "over.jsonl"
    over.write_text(json.dumps(row(0, 10_000, "big")) + "\n", encoding="utf-8")
    code, err = cli(capsys, "bank", "import", str(over), "--db", db)
    assert code == 2 and "sample must be an integer in 0..9999" in err, err


# ---------------------------------------------------------------- item 19
BIDI = re.compile("[\u200e\u200f\u061c\u202a-\u202e\u2066-\u2069]")


def test_the_cli_prints_no_bidi_control(two, capsys):
    tmp_path, db = two
    bank = tmp_path / "evil.jsonl"
    bank.write_text(json.dumps(row(0, 0, "m\u202eodel\u200f")) + "\n", encoding="utf-8")
    code = cli(capsys, "bank", "import", str(bank), "--name", "ev\u202eil\u061c", "--db", db)[0]
    assert code == 0
    for args in (["list", "banks"], ["bank", "info"], ["bank", "info", "--bank", "x\u202ey"]):
        with pytest.raises(SystemExit):
            main([*args, "--db", db])
            raise SystemExit(0)
        out = capsys.readouterr()
        assert not BIDI.search(out.out + out.err), args
        assert "evil" in out.out + out.err or "xy" in out.err


def test_a_models_file_of_80000_unknown_models_is_one_short_line(two, capsys):
    tmp_path, db = two
    models = {f"ghost-{i:05d}": {"params_b": 1.0} for i in range(80_000)}
    (tmp_path / "two.models.json").write_text(json.dumps(models), encoding="utf-8")
    with pytest.raises(SystemExit) as exc:
        main(["bank", "import", str(tmp_path / "two.jsonl"), "--db", db])
        raise SystemExit(0)
    out, err = capsys.readouterr()
    assert exc.value.code == 0 and len(out) < 300, out[:300]
    assert len(err) < 300 and err.count("\n") == 1 and "80000" in err, err[:300]
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM models").fetchone()[0] == 2
