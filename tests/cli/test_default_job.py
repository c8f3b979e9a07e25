"""`uisbench run` with no arguments: the shipped bank, every strategy, the report and the site."""

from __future__ import annotations

import gzip
import json

from sqlalchemy import func, select

from uisbench.cli import main
from uisbench.job import shipped_banks
from uisbench.store import schema
from uisbench.store.engine import open_engine
from uisbench.strategies.base import STRATEGIES
from uisbench.tasks import task_note


def test_shipped_bank_is_real_and_small():
    (bank,) = shipped_banks()
    assert bank.stat().st_size < 5 * 2**20
    rows = [json.loads(x) for x in gzip.open(bank, "rt", encoding="utf-8")]
    assert {r["model"] for r in rows} == {"smollm2-135m-instruct", "gemma-3-270m"}
    assert all(r["text"] is not None and r["output_tokens"] >= 1 for r in rows)
    for model in ("smollm2-135m-instruct", "gemma-3-270m"):  # neither at 0% nor near 100%
        acc = sum(r["correct"] for r in rows if r["model"] == model) / (len(rows) / 2)
        assert 0.02 < acc < 0.9
    assert task_note("arith-smoke").smoke


def test_run_without_arguments_runs_every_strategy_and_builds_the_site(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    db = str(tmp_path / "r.db")
    try:
        main(["run", "--db", db])
    except SystemExit as exc:
        assert exc.code in (0, None)
    out, err = capsys.readouterr()
    assert "SMOKE TASK" in out and "leaderboard written to" in err
    engine = open_engine(db, create=False)
    with engine.connect() as conn:
        ran = set(
            conn.execute(
                select(schema.runs.c.strategy).where(schema.runs.c.status == "complete")
            ).scalars()
        )
        per_run = conn.execute(
            select(func.count()).select_from(schema.decisions).group_by(schema.decisions.c.run_id)
        ).scalars()
        assert set(per_run) == {120}  # one decision per test query in every run
    # decomposed runs only on a bank holding a MODEL@decomposed variant; the shipped one has none
    assert ran == set(STRATEGIES.all()) - {"decomposed"}
    index = (tmp_path / "_site" / "index.html").read_text()
    assert "arith-smoke" in index and "smoke task" in index


def test_smoke_label_survives_the_terminal_tables(capsys):
    """Descriptions are data: a "[smoke task]" prefix must not be swallowed as rich markup."""
    try:
        main(["list", "tasks"])
    except SystemExit as exc:
        assert exc.code in (0, None)
    assert "[smoke task] seeded arithmetic" in capsys.readouterr().out
