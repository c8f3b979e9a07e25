"""Runs through the CLI: bad inputs as one line, bank export, run, report and list."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import pytest

from tests.core.test_runner import TOY
from uisbench.cli import main
from uisbench.store import schema
from uisbench.store.bank import import_file
from uisbench.store.engine import open_engine

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "banks"


@pytest.fixture
def engine(tmp_path):
    """A database holding the runner tests' toy bank, as ``r.db`` in ``tmp_path``."""
    e = open_engine(str(tmp_path / "r.db"))
    import_file(e, TOY.write(tmp_path), tmp_path / "toy.models.json")
    return e


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(list(args))
        raise SystemExit(0)
    out = capsys.readouterr()
    return exc.value.code, out.out, out.err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "--strategy", "no-such-strategy"], "unknown strategy 'no-such-strategy'"),
        (["run", "--task", "nope"], "unknown task 'nope'"),
        (["run", "--strategy", "majority:model=ghost"], "unknown model 'ghost'"),
        (["run", "--strategy", "majority:model=m-big,k=x"], "k='x' is not a valid int"),
        (["run", "--strategy", "majority:model=m-big,k=16"], "holds 8 samples"),
        (["run", "--bogus-option"], "No such option"),
        (["bank", "export", "--bank", "nope", "--out", "nope.jsonl"], "unknown bank 'nope'"),
    ],
)
def test_bad_input_gives_one_line_and_exit_2(tmp_path, engine, capsys, monkeypatch, args, message):
    db = str(tmp_path / "r.db")
    monkeypatch.chdir(tmp_path)
    extra = ["--bank", "toy"] if args[0] == "run" and "--task" not in args else []
    code, _, err = run_cli(capsys, *args, *extra, "--db", db)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("uisbench: error:") and message in err
    assert not (tmp_path / "nope.jsonl").exists() and not list(tmp_path.glob("*.part"))
    with engine.connect() as conn:  # a configuration that could not run left no run behind
        assert (
            conn.execute(schema.runs.select().where(schema.runs.c.status != "complete")).first()
            is None
        )


def test_export_gz_is_compressed_into_new_dirs_and_unwritable_target_is_one_line(
    tmp_path, engine, capsys
):
    db = str(tmp_path / "r.db")
    out = tmp_path / "new" / "dir" / "toy.jsonl.gz"
    code, _, _ = run_cli(capsys, "bank", "export", "--bank", "toy", "--out", str(out), "--db", db)
    assert code == 0 and out.read_bytes()[:2] == b"\x1f\x8b"  # gzip magic, not plain text
    lines = gzip.decompress(out.read_bytes()).decode().splitlines()
    key = lambda d: (d["query_id"], d["model"], d["sample"])  # noqa: E731
    as_set = lambda ls: sorted((json.loads(x) for x in ls), key=key)  # noqa: E731
    assert as_set(lines) == as_set((tmp_path / "toy.jsonl").read_text().splitlines())
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    code, _, err = run_cli(
        capsys, "bank", "export", "--bank", "toy", "--out", str(blocker / "x.jsonl"), "--db", db
    )
    assert code == 2 and err.count("\n") == 1 and "a-file" in err


def test_missing_and_malformed_inputs(tmp_path, capsys):
    code, _, err = run_cli(capsys, "bank", "info", "--db", str(tmp_path / "none.db"))
    assert code == 2 and "no database" in err
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"task": "t"}\n')
    code, _, err = run_cli(capsys, "bank", "import", str(bad), "--db", str(tmp_path / "b.db"))
    assert code == 2 and "line 1: missing field(s)" in err and err.count("\n") == 1


def test_cli_run_report_and_list(tmp_path, engine, capsys):
    db = str(tmp_path / "r.db")
    code, out, _ = run_cli(
        capsys,
        "run",
        "--bank",
        "toy",
        "--strategy",
        "single:model=m-big",
        "--strategy",
        "oracle",
        "--seed",
        "0",
        "--seed",
        "1",
        "--db",
        db,
    )
    assert code == 0 and "single:model=m-big" in out and "upper bound" in out
    code, out, _ = run_cli(capsys, "list", "strategies")
    assert code == 0 and "majority" in out and "oracle" in out


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data/banks not present")
def test_run_on_real_bank_file(tmp_path, capsys):
    db = str(tmp_path / "m.db")
    code, out, _ = run_cli(
        capsys,
        "run",
        "--bank",
        str(SHARED / "mmlu-llama-ladder.jsonl"),
        "--strategy",
        "single:model=llama3.1-405b",
        "--db",
        db,
    )
    assert code == 0
    # The report's row against the bank file read directly: 405B's one sample per test query.
    rows = [json.loads(line) for line in (SHARED / "mmlu-llama-ladder.jsonl").open()]
    right = [r["correct"] for r in rows if r["split"] == "test" and r["model"] == "llama3.1-405b"]
    line = next((x for x in out.splitlines() if "single:model=llama3.1-405b" in x), "")
    row = re.search(r"([01]\.\d{3}) \[([01]\.\d{3}), ([01]\.\d{3})\]", line)
    assert row, out
    acc, lo, hi = map(float, row.groups())
    assert acc == pytest.approx(sum(right) / len(right), abs=5e-4)
    # Its interval is the bootstrap's: about ± 1.96·√(p(1−p)/n) = ± 0.018 for n = 1531 (either
    # end's distance from that over 200 bootstrap seeds: sd 0.0008, largest 0.0024).
    half = 1.96 * (acc * (1 - acc) / len(right)) ** 0.5
    assert (lo, hi) == pytest.approx((acc - half, acc + half), abs=0.0025)
