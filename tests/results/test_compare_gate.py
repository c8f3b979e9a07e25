"""``uisbench gate`` on the shipped bank against the committed baseline: an unchanged strategy
run with other seeds passes, deliberately worsened majority votes fail, bad input exits 2."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes import cli_code
from uisbench.cli.main import main
from uisbench.strategies.base import STRATEGIES, Decisions
from uisbench.strategies.tts import MajorityVote, majority_column, require_model, take

BASELINE = Path(__file__).resolve().parents[2] / "results" / "baselines" / "arith-smoke.json"
MAJORITY_8 = "majority:model=smollm2-135m-instruct,k=8"
MAJORITY_4 = "majority:model=smollm2-135m-instruct,k=4"


def gate(*args: str) -> int:
    try:
        main(["gate", *args])
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def subset(tmp_path: Path, config: str) -> Path:
    """The committed baseline cut down to one configuration (a faster gate for a test)."""
    raw = json.loads(BASELINE.read_text())
    raw["runs"] = [r for r in raw["runs"] if r["config"] == config]
    assert raw["runs"], config
    path = tmp_path / "baseline.json"
    path.write_text(json.dumps(raw))
    return path


class VotesOnOne(MajorityVote):
    """Pays for k samples but answers with the first one drawn (a vote that drops k − 1)."""

    def run(self, ctx) -> Iterator[Decisions]:
        model = require_model(ctx, self.params.model, self.name)
        draw = ctx.meter.draw(model, ctx.stream, self.params.k)
        yield Decisions(ctx.stream, take(draw.handle, majority_column(draw.answer[:, :1])))


class DrawsTwice(MajorityVote):
    """Draws 2k samples and votes on k of them: same accuracy, more generated tokens."""

    def run(self, ctx) -> Iterator[Decisions]:
        model = require_model(ctx, self.params.model, self.name)
        k = self.params.k
        draw = ctx.meter.draw(model, ctx.stream, 2 * k)
        yield Decisions(ctx.stream, take(draw.handle, majority_column(draw.answer[:, :k])))


def test_committed_baseline_passes_with_other_seeds(tmp_path: Path) -> None:
    md, xml = tmp_path / "gate.md", tmp_path / "gate.xml"
    args = ["--baseline", str(BASELINE), "--seed", "3", "--seed", "4", "--seed", "5"]
    assert gate(*args, "--markdown", str(md), "--junit", str(xml)) == 0
    assert "no regression" in md.read_text()
    assert 'failures="0"' in xml.read_text() and 'tests="5"' in xml.read_text()


@pytest.mark.parametrize(
    "worse, config, verdict",
    [(VotesOnOne, MAJORITY_8, "FAIL accuracy"), (DrawsTwice, MAJORITY_4, "FAIL cost")],
)
def test_worsened_majority_fails(tmp_path: Path, worse: type, config: str, verdict: str) -> None:
    md = tmp_path / "gate.md"
    args = ["--baseline", str(subset(tmp_path, config)), "--seed", "3", "--seed", "4"]
    with STRATEGIES.added("majority", worse, distribution="uisbench"):  # the shipped one, edited
        assert gate(*args, "--seed", "5", "--markdown", str(md)) == 1
    assert verdict in md.read_text()


def test_unchanged_majority_with_other_seeds_passes(tmp_path: Path) -> None:
    args = ["--baseline", str(subset(tmp_path, MAJORITY_8)), "--seed", "3", "--seed", "4"]
    assert gate(*args, "--seed", "5") == 0


def test_baseline_of_another_bank_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    raw = json.loads(subset(tmp_path, MAJORITY_8).read_text())
    raw["bank"]["digest"] = "sha256:" + "0" * 64
    path = tmp_path / "other.json"
    path.write_text(json.dumps(raw))
    assert gate("--baseline", str(path)) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "made on another bank" in err


def test_bad_baseline_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.json"
    path.write_text("not json")
    assert gate("--baseline", str(path)) == 2
    assert "not a result file" in capsys.readouterr().err


def test_export_and_compare_by_run_ids(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db, out = str(tmp_path / "r.db"), tmp_path / "runs.json"
    main(["run", "--db", db, "--strategy", MAJORITY_4, "--seed", "0", "--seed", "1", "--no-report"])
    main(["results", "export", "--db", db, "--config", MAJORITY_4, "--out", str(out)])
    exported = json.loads(out.read_text())
    assert [r["seed"] for r in exported["runs"]] == [0, 1]
    assert all(len(r["rows"]) == 120 for r in exported["runs"])  # the shipped test split
    main(["compare", "1", "2", "--db", db])
    assert "1 configuration(s) on bank arith-smoke-cpu-tiny" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exc:
        main(["compare", "1", "x7", "--db", db])
    assert exc.value.code == 2


def test_gate_reruns_with_the_baselines_prefix_cache(tmp_path: Path) -> None:
    """A result file keeps its runs' caching assumption and the gate re-runs under it, so costs
    compare like with like (adaptive made under ``none`` is re-run under ``none``, not the
    default ``block:16``)."""
    adaptive = "adaptive:model=smollm2-135m-instruct,k=8,confidence=0.95"
    bank = Path(__file__).resolve().parents[2] / "harness/data/banks/arith-smoke-cpu-tiny.jsonl.gz"
    db, out, gate_db = tmp_path / "b.db", tmp_path / "none.json", tmp_path / "gate.db"
    run = ["run", "--db", str(db), "--bank", str(bank), "--strategy", adaptive, "--no-report"]
    assert cli_code(*run, "--prefix-cache", "none") == 0
    assert cli_code("results", "export", "--db", str(db), "--out", str(out)) == 0
    assert [r["prefix_cache"] for r in json.loads(out.read_text())["runs"]] == ["none"]
    assert gate("--baseline", str(out), "--bank", str(bank), "--db", str(gate_db)) == 0
    with sqlite3.connect(gate_db) as conn:
        assert conn.execute("SELECT DISTINCT prefix_cache FROM runs").fetchall() == [("none",)]
