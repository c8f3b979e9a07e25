"""A run's identity includes its bank's content: a grown bank under the same name gets new runs."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import select

from tests.fakes import cli
from uisbench.results.aggregate import load_runs
from uisbench.store import schema
from uisbench.store.engine import open_engine


def write_bank(path: Path, n_queries: int) -> Path:
    lines = [
        json.dumps(
            {
                "task": "toy",
                "query_id": f"q{q:03d}",
                "split": "test",
                "prompt": f"p{q}",
                "reference": "r",
                "model": "m",
                "sample": k,
                "answer": "r",
                "correct": (q + k) % 3 > 0,
                "input_tokens": 10,
                "output_tokens": 2,
                "cost_usd": 1e-6,
                "latency_s": 0.1,
                "logprob": -0.5,
            }
        )
        for q in range(n_queries)
        for k in range(2)
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_grown_bank_gets_new_runs_and_old_ones_keep_their_label(tmp_path, capsys):
    db = str(tmp_path / "r.db")
    run = ("run", "--bank", "mm", "--strategy", "single:model=m", "--no-report", "--db", db)
    small = write_bank(tmp_path / "small.jsonl", 30)
    assert cli(capsys, "bank", "import", str(small), "--name", "mm", "--db", db)[0] == 0
    assert cli(capsys, *run)[0] == 0
    code, out, err = cli(capsys, *run)
    assert code == 0 and "1 already complete" in out + err  # same content: nothing to do
    full = write_bank(tmp_path / "full.jsonl", 50)
    assert cli(capsys, "bank", "import", str(full), "--name", "mm", "--db", db)[0] == 0
    code, out, err = cli(capsys, *run)
    assert code == 0 and "0 already complete" in out + err
    engine = open_engine(db)
    with engine.connect() as conn:
        rows = conn.execute(select(schema.runs.c.n_queries, schema.runs.c.bank_digest)).all()
    assert sorted(n for n, _ in rows) == [30, 50]
    assert len({d for _, d in rows}) == 2
    labels = sorted(load_runs(engine)["bank"])
    assert len(set(labels)) == 2 and all(x.startswith("mm@") for x in labels)
    code, out, err = cli(capsys, "report", "--db", db)
    assert code == 0 and (out + err).count("mm@") >= 2
