"""Every bad input: exit code 2, exactly one line on stderr, the database and folder unchanged."""

from __future__ import annotations

import json
import math
import os
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.fakes import cli as run_cli
from uisbench.cli import main


def row(q: int = 0, k: int = 0, **change) -> dict:
    base = dict(task="t", query_id=f"q{q}", split="test", prompt=f"p{q}", reference="1")
    base |= dict(model="m", sample=k, answer="1", correct=(q + k) % 2 == 0, input_tokens=3)
    return base | dict(output_tokens=4, cost_usd=0.5, latency_s=0.25, logprob=-1.0) | change


def write(path: Path, rows: list[dict]) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return str(path)


def write_bytes(path: Path, data: bytes) -> str:
    path.write_bytes(data)
    return str(path)


def sparse(path: Path, size: int) -> str:
    with open(path, "wb") as fh:
        fh.truncate(size)
    return str(path)


def cli(capsys, *args: str) -> tuple[int, str]:
    """Exit code and standard error of one call."""
    code, _, err = run_cli(capsys, *args)
    return code, err


def dump(db: Path) -> list[str]:
    with sqlite3.connect(db) as conn:
        return list(conn.iterdump())


@pytest.fixture
def work(tmp_path, capsys, monkeypatch):
    """A database holding bank ``b`` (20 queries × 2 samples) and one complete run."""
    monkeypatch.chdir(tmp_path)
    db = tmp_path / "u.db"
    rows = [row(q, k) for q in range(20) for k in range(2)]
    assert cli(capsys, "bank", "import", write(tmp_path / "b.jsonl", rows), "--db", str(db))[0] == 0
    args = ("run", "--bank", "b", "--strategy", "single:model=m", "--no-report", "--db", str(db))
    assert cli(capsys, *args)[0] == 0
    assert (
        cli(
            capsys, "results", "export", "1", "--out", str(tmp_path / "base.json"), "--db", str(db)
        )[0]
        == 0
    )
    return tmp_path, db


DEEP = b"[" * 100_000 + b"]" * 100_000


def baseline(change) -> Callable[[Path], bytes]:
    """A result file: the fixture's exported run 1 with ``change`` applied to its first run."""

    def make(tmp_path: Path) -> bytes:
        raw = json.loads((tmp_path / "base.json").read_text(encoding="utf-8"))
        change(raw["runs"][0])
        return json.dumps(raw).encode()

    return make


def cell(column: int, value) -> Callable[[dict], None]:
    return lambda run: run["rows"][0].__setitem__(column, value)


def setting(key: str, value) -> Callable[[dict], None]:
    return lambda run: run.__setitem__(key, value)


def line(r: dict, **change) -> bytes:
    return (json.dumps(r | change) + "\n").encode()


CASES = {
    # bank files
    "sample 2**63": (["bank", "import", "@bank"], [row(sample=2**63)], "sample must be"),
    "NaN cost": (["bank", "import", "@bank"], [row(cost_usd=math.nan)], "invalid JSON"),
    "negative cost": (["bank", "import", "@bank"], [row(cost_usd=-1.0)], "cost_usd must be"),
    "infinite latency": (["bank", "import", "@bank"], [row(latency_s=1e999)], "line 1"),
    "negative latency": (["bank", "import", "@bank"], [row(latency_s=-1.0)], "latency_s must"),
    "0xff byte in a prompt": (
        ["bank", "import", "@raw"],
        line(row()).replace(b'"p0"', b'"p\xff"'),
        "line 1",
    ),
    "encoded surrogate in a prompt": (
        ["bank", "import", "@raw"],
        line(row(), prompt="a\ud800b"),
        "line 1",
    ),
    "conflicting duplicate": (
        ["bank", "import", "@bank", "--name", "b"],
        [row(0, 0, answer="9", correct=False)],
        "another answer",
    ),
    "query id with another prompt": (
        ["bank", "import", "@bank", "--name", "b"],
        [row(0, 5, prompt="other")],
        "another prompt or split",
    ),
    # models files
    "non-UTF-8 models.json": (
        ["bank", "import", "@bank", "--name", "n", "--models", "@models"],
        b'{"m": {"family": "\xff"}}',
        "not UTF-8",
    ),
    "active_params_b x": (
        ["bank", "import", "@bank", "--name", "n", "--models", "@models"],
        b'{"m": {"active_params_b": "x"}}',
        "m.active_params_b must be",
    ),
    "negative price": (
        ["bank", "import", "@bank", "--name", "n", "--models", "@models"],
        b'{"m": {"price_in_per_mtok": -2}}',
        "m.price_in_per_mtok must be",
    ),
    # options
    "seed -1": (["run", "--bank", "b", "--seed", "-1"], None, "'--seed'"),
    "huge seed": (["run", "--bank", "b", "--seed", str(10**23)], None, "'--seed'"),
    "huge split seed": (["run", "--bank", "b", "--split-seed", str(10**23)], None, "split-seed"),
    # strategy parameters (generic bounds in strategies/base.py)
    **{
        f"strategy {spec}": (["run", "--bank", "b", "--strategy", spec], None, message)
        for spec, message in [
            ("majority:model=m,k=99999999999999999999", "k=99999999999999999999 must be"),
            ("majority:model=m,k=3", "holds 2 samples"),
            ("lr-router:c=0", "c=0.0 must be > 0"),
            ("lr-router:c=-1", "c=-1.0 must be > 0"),
            ("oracle:k=0", "k=0 must be >= 1"),
            ("oracle:k=-5", "k=-5 must be >= 1"),
            ("cascade:k=0", "k=0 must be >= 1"),
            ("lr-router:wtp=nan", "wtp=nan must be a finite number"),
            ("t2:budget=nan", "budget=nan must be a finite number"),
            ("uniscale:cost_weight=nan", "cost_weight=nan must be a finite number"),
            ("uniscale:cost_weight=inf", "cost_weight=inf must be a finite number"),
            ("t2:restarts=100000000", "restarts=100000000 must be <= 256"),
            # bounded by what can finish (issue 20 item 14)
            ("mf-router:dim=100000", "dim=100000 must be <= 256"),
            ("mf-router:dim=2147483647", "dim=2147483647 must be <= 256"),
            ("mf-router:steps=2147483647", "steps=2147483647 must be <= 4000"),
            ("mf-router:dim=256,steps=4000", "dim × steps = 1024000 must be <= 102400"),
            ("mf-router:lr=1e308", "lr=1e+308 must be <= 10"),
            ("frugal-cascade:grid=100000", "grid=100000 must be <= 100"),
            ("frugal-cascade:grid=2147483647", "grid=2147483647 must be <= 100"),
            ("frugal-cascade:max_len=2147483647", "max_len=2147483647 must be <= 8"),
            ("uniscale:cost_weight=1e308", "cost_weight=1e+308 must be <= 1000000.0"),
            ("uniscale:w_correct=1e308", "w_correct=1e+308 must be <= 1000000.0"),
            # text options declared with choice(): refused when parsed, choices listed
            ("lr-router:unit=flop", "unit='flop' must be one of auto, flops, dollars"),
            ("cascade:signal=lp", "signal='lp' must be one of auto, logprob, agreement"),
            ("uniscale:norm=lin", "norm='lin' must be one of auto, linear, log, rank"),
            ("t2:metric=majority", "metric='majority' must be one of maj, pass"),
            ("threshold-router:pair=both", "pair='both' must be one of auto, extremes"),
            ("lr-router:features=bert", "features='bert' must be one of auto, minilm, hash"),
        ]
    },
    # finite but absurd (the plausible-range table): never inf on the report
    "cost 1e308": (["bank", "import", "@bank"], [row(cost_usd=1e308)], "cost_usd must be"),
    "100k samples on one query": (["bank", "import", "@bank"], [row(sample=99_999)], "sample must"),
    "params_b 1e300": (
        ["bank", "import", "@bank", "--name", "n", "--models", "@models"],
        b'{"m": {"params_b": 1e300}}',
        "m.params_b must be",
    ),
    # result files are validated like banks (compare and gate)
    **{
        f"result row {what} ({command})": (
            [command, "@result", "1"]
            if command == "compare"
            else ["gate", "--baseline", "@result", "--bank", "b.jsonl"],
            baseline(cell(column, value)),
            message,
        )
        for command in ("compare", "gate")
        for what, column, value, message in [
            ("correct 5", 1, 5, "correct must be 0 or 1"),
            ("correct -3", 1, -3, "correct must be 0 or 1"),
            ("correct 0.5", 1, 0.5, "correct must be 0 or 1"),
            ("negative dollars", 3, -3.0, "dollars must be"),
            ("dollars 1e308", 3, 1e308, "dollars must be"),
            ("tokens as text", 4, "7", "tokens must be"),
            ("negative latency", 5, -1, "latency_s must be"),
        ]
    },
    "result file with Infinity (compare)": (
        ["compare", "@result", "1"],
        lambda tmp: baseline(cell(3, 0.5))(tmp).replace(b"0.5", b"Infinity", 1),
        "invalid JSON",
    ),
    # what PostgreSQL refuses, refused on SQLite too (issue 20 item 20)
    "tokens 2**31": (["bank", "import", "@bank"], [row(output_tokens=2**31)], "output_tokens must"),
    "NUL in a prompt": (["bank", "import", "@bank"], [row(prompt="a\0b")], "prompt holds a NUL"),
    "NUL in an answer": (["bank", "import", "@bank"], [row(answer="\0")], "answer holds a NUL"),
    # a name is shown on the terminal: no control sequence (OSC 52 sets the clipboard); bidi
    # controls are stripped where shown (test_edge_states.py)
    "ESC in a model name": (
        ["bank", "import", "@bank"],
        [row(model="m\x1b]52;c;eA==\x07")],
        "model holds a control character",
    ),
    "C1 in a query id": (
        ["bank", "import", "@bank"],
        [row(query_id="q\x9b2J")],
        "query_id holds a control character",
    ),
    "DEL in a task": (
        ["bank", "import", "@bank"],
        [row(task="t\x7fabc")],
        "task holds a control character",
    ),
    "ESC in a bank name": (
        ["bank", "import", "@bank", "--name", "b\x1b[2J"],
        [row()],
        "bank name holds a control character",
    ),
    "ESC in a family": (
        ["bank", "import", "@bank", "--name", "n", "--models", "@models"],
        json.dumps({"m": {"family": "f\x1b[2J"}}).encode(),
        "m.family holds a control character",
    ),
    "model name of 201 characters": (
        ["bank", "import", "@bank"],
        [row(model="m" * 201)],
        "model is longer than 200 characters",
    ),
    "query id of 301 characters": (
        ["bank", "import", "@bank"],
        [row(query_id="q" * 301)],
        "query_id is longer than 300 characters",
    ),
    "task of 201 characters": (
        ["bank", "import", "@bank"],
        [row(task="t" * 201)],
        "task is longer",
    ),
    "configuration label over 300 characters": (
        ["run", "--bank", "b", "--strategy", "cascade:k=2,models=" + "+".join(["m"] * 60)],
        None,
        "config label is longer than 300 characters",
    ),
    "bank name of 201 characters": (
        ["bank", "import", "@bank", "--name", "b" * 201],
        [row()],
        "bank name is longer than 200 characters",
    ),
    "family of 101 characters": (
        ["bank", "import", "@bank", "--name", "n", "--models", "@models"],
        json.dumps({"m": {"family": "f" * 101}}).encode(),
        "m.family is longer than 100 characters",
    ),
    # JSON beside a bank and result files: one line however hostile (nesting, bytes)
    "models.json nested 100,000 deep": (
        ["bank", "import", "@bank", "--name", "n", "--models", "@models"],
        DEEP,
        "depth limit",
    ),
    "NAME.bank.json nested 100,000 deep": (
        ["bank", "import", "@bank", "--name", "n", "@meta"],
        DEEP,
        "depth limit",
    ),
    "NAME.bank.json not UTF-8": (
        ["bank", "import", "@bank", "--name", "n", "@meta"],
        b'{"source": "\xff"}',
        "not UTF-8",
    ),
    "result file nested deep (compare)": (["compare", "@result", "1"], DEEP, "depth limit"),
    "result file not UTF-8 (compare)": (
        ["compare", "1", "@result"],
        b'{"format": "uisbench-results/1", "bank": "\xff"}',
        "not UTF-8",
    ),
    "result file nested deep (gate)": (
        ["gate", "--baseline", "@result", "--bank", "b.jsonl"],
        DEEP,
        "depth limit",
    ),
    **{
        f"baseline {key}={value!r}": (
            ["gate", "--baseline", "@result", "--bank", "b.jsonl"],
            baseline(setting(key, value)),
            message,
        )
        for key, value, message in [
            ("seed", 2**64, "seed must be"),
            ("seed", 1e300, "seed must be"),
            ("seed", -1, "seed must be"),
            ("split_seed", 2**70, "split_seed must be"),
            ("prefix_cache", 5, "prefix_cache must be"),
        ]
    },
    "baseline naming mf-router:dim=100000": (
        ["gate", "--baseline", "@result", "--bank", "b.jsonl"],
        baseline(lambda run: run.update(strategy="mf-router", params={"dim": 100000})),
        "dim=100000 must be <= 256",
    ),
    "baseline with a list for a number": (
        ["gate", "--baseline", "@result", "--bank", "b.jsonl"],
        baseline(
            lambda run: run.update(strategy="majority", params={"model": "m", "k": ["a", "b"]})
        ),
        "option k='a+b' is not a valid int",
    ),
    "site build --queries 10**20": (["site", "build", "--queries", str(10**20)], None, "--queries"),
    "results export of run 10**20": (
        ["results", "export", str(10**20), "--out", "r.json"],
        None,
        "run id",
    ),
    "results export of a range of 10**12 runs": (
        ["results", "export", f"1-{10**12}", "--out", "r.json"],
        None,
        "run id",
    ),
    "export to a folder": (["bank", "export", "--bank", "b", "--out", "@dir"], None, "directory"),
    # files that are not files, or larger than anything real: read, they block or fill memory
    "models file that is a FIFO": (
        ["bank", "import", "@bank", "--name", "n", "--models", "@fifo:new.models.json"],
        [row(0, 7)],
        "not a regular file",
    ),
    "models file of 17 MB": (
        ["bank", "import", "@bank", "--name", "n", "--models", "@sparse:new.models.json:17"],
        [row(0, 7)],
        "larger than",
    ),
    "bank file that is a FIFO": (["bank", "import", "@fifo:new.jsonl"], None, "not a regular"),
    "flat bank file that is a FIFO": (
        ["bank", "import", "@fifo:new.jsonl", "--format", "flat"],
        None,
        "not a regular",
    ),
    "result file that is a FIFO": (
        ["gate", "--baseline", "@fifo:r.json", "--bank", "b.jsonl"],
        None,
        "not a regular file",
    ),
    "result file of 1.1 GB": (
        ["gate", "--baseline", "@sparse:r.json:1100", "--bank", "b.jsonl"],
        None,
        "larger than",
    ),
    "info of an unknown bank": (["bank", "info", "--bank", "zzz"], None, "unknown bank 'zzz'"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_one_line_exit_2_and_changes_nothing(work, capsys, case):
    tmp_path, db = work
    args, content, message = CASES[case]
    files = {
        "@bank": lambda: write(tmp_path / "new.jsonl", content),
        "@raw": lambda: write_bytes(tmp_path / "new.jsonl", content),
        "@models": lambda: write_bytes(tmp_path / "new.models.json", content),
        "@dir": lambda: str((tmp_path / "outdir").mkdir() or tmp_path / "outdir"),
        "@meta": lambda: write_bytes(tmp_path / "new.bank.json", content) and None,
        "@result": lambda: write_bytes(
            tmp_path / "r.json", content(tmp_path) if callable(content) else content
        ),
    }
    if "@models" in args or "@meta" in args:
        write(tmp_path / "new.jsonl", [row(0, 7)])
    for a in args:
        kind, _, rest = a.partition(":")
        if kind == "@fifo":
            files[a] = lambda rest=rest: os.mkfifo(tmp_path / rest) or str(tmp_path / rest)
        elif kind == "@sparse":  # a file of MB megabytes that takes no room on the disk
            name, mb = rest.split(":")
            files[a] = lambda name=name, mb=int(mb): sparse(tmp_path / name, mb << 20)
    argv = [a for a in (files[a]() if a in files else a for a in args) if a is not None]
    before, listing = dump(db), sorted(p.name for p in tmp_path.iterdir())
    code, err = cli(capsys, *argv, "--db", str(db))
    assert code == 2 and err.count("\n") == 1 and err.startswith("uisbench: error:"), err
    assert message in err, err
    assert dump(db) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == listing  # no .part, no new file


def test_missing_database_is_not_created_by_a_failing_run(work, capsys):
    tmp_path, _ = work
    code, err = cli(capsys, "run", "--bank", "zzz", "--db", str(tmp_path / "missing.db"))
    assert code == 2 and err.count("\n") == 1 and "unknown bank" in err
    assert not list(tmp_path.glob("missing.db*"))


def test_foreign_database_is_refused_untouched(work, capsys):
    tmp_path, _ = work
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE accounts (id integer)")
    before = other.read_bytes()
    code, err = cli(capsys, "bank", "import", str(tmp_path / "b.jsonl"), "--db", str(other))
    assert code == 2 and err.count("\n") == 1 and "not a uisbench database" in err
    assert other.read_bytes() == before and not list(tmp_path.glob("other.db-*"))


def test_report_with_only_synthetic_runs_says_so(tmp_path, capsys):
    db = str(tmp_path / "s.db")
    bank = write(tmp_path / "s.jsonl", [row(q, k) for q in range(10) for k in range(2)])
    assert cli(capsys, "bank", "import", bank, "--synthetic", "--db", db)[0] == 0
    run = ("run", "--bank", "s", "--strategy", "single:model=m", "--no-report", "--db", db)
    assert cli(capsys, *run)[0] == 0
    code, err = cli(capsys, "report", "--db", db)
    assert code == 2 and err.count("\n") == 1 and "--include-synthetic" in err


@pytest.mark.parametrize(
    "args",
    [
        ["bank", "record", "--task", "arith-smoke", "--pool", "cpu-tiny", "--k", "1"],
        ["run", "--live", "--k", "1"],
    ],
)
def test_live_commands_on_the_base_install_name_the_extra(work, capsys, monkeypatch, args):
    tmp_path, db = work
    monkeypatch.setitem(sys.modules, "lm_eval", None)  # as if the live extra were absent
    before = dump(db)
    code, err = cli(capsys, *args, "--db", str(db))
    assert code == 2 and err.count("\n") == 1 and "scripts/setup.sh --full" in err, err
    assert dump(db) == before


def test_adaptive_default_k_adapts_to_the_bank(work, capsys):
    """The bank holds 2 samples per query; adaptive's default k is what the bank holds."""
    _, db = work
    args = ("run", "--bank", "b", "--strategy", "adaptive:model=m", "--no-report", "--db", str(db))
    code, err = cli(capsys, *args)
    assert code == 0, err


def _immutable(path: Path) -> bool:
    """chattr +i (root on ext4/xfs/btrfs); False where the file system or user cannot."""
    import shutil
    import subprocess

    if not shutil.which("chattr"):
        return False
    return subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode == 0


def test_immutable_database_is_one_line(work, capsys):
    tmp_path, db = work
    frozen = tmp_path / "frozen.db"
    with sqlite3.connect(db) as src, sqlite3.connect(frozen) as dst:
        src.backup(dst)
    with sqlite3.connect(frozen) as conn:
        conn.execute("PRAGMA journal_mode = DELETE")  # not yet WAL: opening would switch it
    if not _immutable(frozen):
        pytest.skip("chattr +i is not available here (needs root and ext4/xfs/btrfs)")
    try:
        before = frozen.read_bytes()
        args = ("run", "--bank", "b", "--strategy", "majority:model=m,k=2", "--no-report")
        code, err = cli(capsys, *args, "--db", str(frozen))
        assert code == 2 and err.count("\n") == 1 and "readonly" in err.replace("-", ""), err
        assert frozen.read_bytes() == before
        assert cli(capsys, "report", "--db", str(frozen))[0] == 0  # reading still works
    finally:
        import subprocess

        subprocess.run(["chattr", "-i", str(frozen)], check=True)


def test_a_run_that_crashes_leaves_no_running_row(work, capsys, monkeypatch):
    """Any failure (not only UisbenchError) before the first decision drops the run's row."""
    tmp_path, db = work
    from uisbench.strategies.tts import MajorityVote

    def boom(self, ctx):
        raise ValueError("min() arg is an empty sequence")

    monkeypatch.setattr(MajorityVote, "run", boom)
    before = dump(db)
    args = ("run", "--bank", "b", "--strategy", "majority:model=m,k=2", "--no-report")
    with pytest.raises(ValueError):
        main([*args, "--db", str(db)])
    assert dump(db) == before


@pytest.mark.timeout(60)
def test_a_strategy_file_that_is_no_file_is_one_line(work, capsys):
    """``--strategy FILE.py:Class`` reads the file in this process (its text goes to the
    strategy's process): a FIFO there blocked the command for ever."""
    tmp_path, db = work
    os.mkfifo(tmp_path / "s.py")
    before = dump(db)
    code, err = cli(capsys, "run", "--bank", "b", "--strategy", "s.py:Mine", "--db", str(db))
    assert code == 2 and err.count("\n") == 1 and "not a regular file" in err, err
    assert dump(db) == before
