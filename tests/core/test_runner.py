"""Runs through the runner and the CLI: one decision per query, resume, and one-line errors."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import pandas as pd
import pytest

from tests.fakes import FakeBank, FakeModel
from uisbench.cli import main
from uisbench.runner import Runner
from uisbench.store import schema as s
from uisbench.store.bank import import_file
from uisbench.store.engine import open_engine

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "banks"


#: 3 models x 8 samples on 60 queries; no split, so the runner draws one.
TOY = FakeBank(
    models=tuple(
        FakeModel(m, acc, samples=8, params_b=p, price_in_per_mtok=p, price_out_per_mtok=2 * p)
        for m, acc, p in (("m-small", 0.3, 0.1), ("m-mid", 0.5, 1.0), ("m-big", 0.7, 10.0))
    ),
    queries=60,
)


@pytest.fixture
def engine(tmp_path):
    e = open_engine(str(tmp_path / "r.db"))
    import_file(e, TOY.write(tmp_path), tmp_path / "toy.models.json")
    return e


def decisions(engine, run_id: int) -> pd.DataFrame:
    with engine.connect() as conn:
        query = s.decisions.select().where(s.decisions.c.run_id == run_id)
        rows = conn.execute(query.order_by(s.decisions.c.query_id)).mappings().all()
    return pd.DataFrame(rows).drop(columns=["id"])


def test_one_decision_per_test_query_and_rerun_is_skipped(engine):
    runner = Runner(engine, "toy", "toy")
    res = runner.run("majority:model=m-mid,k=4", seed=1)
    df = decisions(engine, res.run_id)
    assert len(df) == len(runner.test_pos) == df["query_id"].nunique()
    assert (df["samples_used"] == 4).all()
    assert df["flops"].iloc[0] == pytest.approx(2 * 1e9 * (20 + df["output_tokens"].iloc[0]))
    again = Runner(engine, "toy", "toy").run("majority:model=m-mid,k=4", seed=1)
    assert again.skipped and again.run_id == res.run_id


def test_resume_writes_only_missing_decisions_with_identical_results(engine):
    spec = "majority:model=m-big,k=8"
    full = Runner(engine, "toy", "toy").run(spec, seed=2)
    reference = decisions(engine, full.run_id)
    with engine.begin() as conn:  # simulate a kill: half the rows lost, status still running
        drop = reference["query_id"].iloc[::2].tolist()
        conn.execute(s.decisions.delete().where(s.decisions.c.query_id.in_(drop)))
        conn.execute(s.runs.update().values(status="running"))
    resumed = Runner(engine, "toy", "toy").run(spec, seed=2)
    assert resumed.resumed and resumed.run_id == full.run_id
    pd.testing.assert_frame_equal(decisions(engine, full.run_id), reference)


def test_seeded_split_is_reused_and_depends_on_the_seed(engine):
    a = Runner(engine, "toy", "toy", split_seed=5)
    b = Runner(engine, "toy", "toy", split_seed=5)
    c = Runner(engine, "toy", "toy", split_seed=6)
    assert list(a.split) == list(b.split) and list(a.split) != list(c.split)
    assert 0 < len(a.train_pos) < len(a.test_pos)


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
        assert conn.execute(s.runs.select().where(s.runs.c.status != "complete")).first() is None


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
