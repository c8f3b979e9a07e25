"""Readers never wait for writers: read-only commands read their WAL snapshot during an import.

An import holds SQLite's write lock for its whole transaction (all rows or none). Before, every
connection began with ``BEGIN IMMEDIATE``, so ``uisbench report`` queued behind it for as long as
the import lasted (up to the 300 s busy timeout).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from uisbench.cli import main

ROOT = Path(__file__).resolve().parents[2]

#: Imports a bank in one transaction and, before committing, says so and waits for stdin:
#: an import that takes as long as the test needs, with the write lock held throughout.
HOLD_IMPORT = textwrap.dedent(
    """
    import sys
    from uisbench.store import bank, digest
    from uisbench.store.engine import open_engine

    apply = digest.DigestDelta.apply  # the last write of either import path

    def slow_apply(self, conn):
        print("importing", flush=True)
        sys.stdin.readline()
        return apply(self, conn)

    digest.DigestDelta.apply = slow_apply
    bank.import_file(open_engine(sys.argv[1]), bank.Path(sys.argv[2]), name="second")
    """
)


def write_bank(path: Path, n: int) -> Path:
    rows = [
        dict(task="t", query_id=f"q{q}", split="test", prompt=f"p{q}", reference="1", model="m")
        | dict(sample=k, answer="1", correct=(q + k) % 3 > 0, input_tokens=3, output_tokens=4)
        | dict(cost_usd=1e-6, latency_s=0.1, logprob=-0.5)
        for q in range(n)
        for k in range(2)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_report_does_not_wait_for_an_import(tmp_path, capsys):
    db = str(tmp_path / "r.db")
    for args in (
        ["bank", "import", str(write_bank(tmp_path / "b.jsonl", 30)), "--db", db],
        ["run", "--bank", "b", "--strategy", "single:model=m", "--no-report", "--db", db],
    ):
        with pytest.raises(SystemExit) as exc:
            main(args)
            raise SystemExit(0)
        assert exc.value.code == 0
    capsys.readouterr()
    writer = subprocess.Popen(
        [sys.executable, "-c", HOLD_IMPORT, db, str(write_bank(tmp_path / "c.jsonl", 2000))],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout.readline().strip() == "importing"  # write lock held from here
        report = subprocess.run(
            [sys.executable, "-m", "uisbench.cli", "report", "--db", db],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert writer.poll() is None, "the import ended before the report: nothing was tested"
        assert report.returncode == 0, report.stderr
        assert "single:model=m" in report.stdout
    finally:
        writer.communicate("go\n", timeout=120)
    assert writer.returncode == 0
