"""``uisbench run`` and ``bank record`` options (issue 19 items 6, 7, 9): --seed 0 alone is one
seed, every --strategy is checked before any runs, --task-arg lists of data files are paired
with --split, and ``run --live`` takes --task-arg."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from tests.cli.test_outcomes_only import outcomes_bank
from tests.fakes import cli_code
from uisbench.store import schema
from uisbench.store.engine import open_engine


def _runs(db: str) -> list[tuple[str, int]]:
    with open_engine(db, create=False).connect() as conn:
        return sorted(
            map(tuple, conn.execute(select(schema.runs.c.config_label, schema.runs.c.seed)))
        )


def test_seed_zero_alone_runs_one_seed_and_the_site_goes_beside_the_db(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    """Item 9, and the default job's site beside ``--db X`` (said on stderr)."""
    (tmp_path / "here").mkdir()
    monkeypatch.chdir(tmp_path / "here")
    db = str(tmp_path / "there" / "r.db")
    (tmp_path / "there").mkdir()
    assert cli_code("run", "--db", db, "--seed", "0", "--no-report") == 0
    assert {seed for _, seed in _runs(db)} == {0}
    site = tmp_path / "there" / "_site" / "index.html"
    assert site.exists() and f"leaderboard written to {site}" in capsys.readouterr().err
    assert not list((tmp_path / "here").iterdir())


def test_default_database_is_in_the_working_directory(tmp_path: Path, monkeypatch) -> None:
    from uisbench.store.engine import default_db_path

    monkeypatch.chdir(tmp_path)
    assert default_db_path() == tmp_path.resolve() / "uisbench.db"
    assert "site-packages" not in str(default_db_path())


def test_every_strategy_is_checked_before_any_runs(tmp_path: Path, capsys) -> None:
    bank = outcomes_bank(tmp_path / "outcomes.jsonl")
    db = str(tmp_path / "r.db")
    code = cli_code(
        "run",
        "--bank",
        str(bank),
        "--db",
        db,
        "--no-report",
        "--strategy",
        "single:model=small",
        "--strategy",
        "majority:model=big,k=1",
        "--strategy",
        "single:model=nope",
    )
    err = capsys.readouterr().err
    assert code == 2
    assert "majority" in err and "needs the samples' answers" in err
    assert "'nope'" in err
    assert len(err.strip().splitlines()) == 1
    assert _runs(db) == []  # nothing committed


def test_each_named_strategy_is_described_once(tmp_path: Path, monkeypatch) -> None:
    """Checking the named strategies describes each once (an isolated one is a round trip to
    its process), not once to validate it and again to check it."""
    from uisbench import job
    from uisbench.runner import Runner

    described: list[str] = []
    real = Runner.describe

    def counting(self, spec):
        described.append(spec)
        return real(self, spec)

    monkeypatch.setattr(Runner, "describe", counting)
    engine = open_engine(str(tmp_path / "r.db"))
    bank = outcomes_bank(tmp_path / "outcomes.jsonl")
    req = job.RunRequest(bank=str(bank), strategies=["single:model=small", "single:model=big"])
    work = job._work_list(engine, job.plan(engine, req), req, [0, 1])
    assert [(spec, seed) for _, spec, seed in work] == [
        ("single:model=small", 0),
        ("single:model=small", 1),
        ("single:model=big", 0),
        ("single:model=big", 1),
    ]
    assert described == req.strategies


GSM8K = Path(__file__).parents[2].parent / "shared/data/tasks/gsm8k"


def _tiny_gsm8k(folder: Path) -> tuple[Path, Path]:
    out = []
    for split, n in (("train", 3), ("test", 2)):
        lines = (GSM8K / f"{split}.jsonl").read_text().splitlines()[:n]
        path = folder / f"{split}.jsonl"
        path.write_text("\n".join(lines) + "\n")
        out.append(path)
    return out[0], out[1]


@pytest.mark.skipif(not GSM8K.exists(), reason="../shared/data/tasks/gsm8k is absent")
def test_record_pairs_data_files_with_splits(tmp_path: Path, fake_backend, capsys) -> None:
    pytest.importorskip("lm_eval")
    train, test = _tiny_gsm8k(tmp_path)
    db = str(tmp_path / "r.db")
    args = ["bank", "record", "--task", "gsm8k", "--pool", "cpu-tiny", "--backend", "fake"]
    args += ["--models", "smollm2-135m-instruct", "--k", "1", "--db", db]
    code = cli_code(*args, "--split", "train,test", "--task-arg", f"data_files={train},{test}")
    assert code == 0, capsys.readouterr().err
    with open_engine(db, create=False).connect() as conn:
        splits = dict(
            conn.execute(
                select(schema.queries.c.split, func.count()).group_by(schema.queries.c.split)
            ).all()
        )
    assert splits == {"train": 3, "test": 2}
    # One file per split, or say so.
    code = cli_code(*args, "--split", "test", "--task-arg", f"data_files={train},{test}")
    assert code == 2
    assert "2 data files for 1 split" in capsys.readouterr().err


def test_run_live_takes_task_args(tmp_path: Path, fake_backend, capsys) -> None:
    pytest.importorskip("lm_eval")
    db = str(tmp_path / "r.db")
    code = cli_code(
        "run",
        "--live",
        "--backend",
        "fake",
        "--models",
        "smollm2-135m-instruct",
        "--k",
        "2",
        "--db",
        db,
        "--no-report",
        "--strategy",
        "single:model=smollm2-135m-instruct",
        "--task-arg",
        "levels=add1",
        "--task-arg",
        "n_per_level=3",
        "--task-arg",
        "n_train_per_level=2",
    )
    assert code == 0, capsys.readouterr().err
    with open_engine(db, create=False).connect() as conn:
        keys = sorted(conn.execute(select(schema.queries.c.query_key)).scalars())
        config = json.loads(json.dumps(conn.execute(select(schema.banks.c.config)).scalar()))
    assert len(keys) == 5 and all("add1" in k for k in keys)
    assert config["task_overrides"]["levels"] == "add1"
