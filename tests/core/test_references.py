"""Strategies named by reference (``FILE.py:Class``, ``module:Class``): run without packaging,
always isolated, their code version (the digest of the code that ran) in the run's key."""

from __future__ import annotations

import sys

import pytest
from sqlalchemy import select

from tests.fakes import FakeBank, FakeModel
from uisbench.cli import main
from uisbench.errors import UisbenchError
from uisbench.isolation import bwrap_works
from uisbench.runner import Runner
from uisbench.store import schema
from uisbench.store.bank import import_file
from uisbench.store.engine import open_engine
from uisbench.strategies.base import parse_spec

BANK = FakeBank(models=(FakeModel("m", 0.4, samples=6), FakeModel("n", 0.7, samples=6)), queries=40)

PLUGIN = """
from dataclasses import dataclass

from uisbench.strategies import Decisions, Strategy, bounded

MARK = "{mark}"


class FirstOf(Strategy):
    name = "first-of"
    family = "reference"
    description = "the first sample of one model"

    @dataclass
    class Params:
        model: str = "m"
        k: int = bounded(1, ge=1)

    def run(self, ctx):
        draw = ctx.meter.draw(self.params.model, ctx.stream, self.params.k)
        yield Decisions(ctx.stream, draw.handle[:, 0])
"""


@pytest.fixture
def db(tmp_path, monkeypatch):
    path = tmp_path / "r.db"
    engine = open_engine(str(path))
    import_file(engine, BANK.write(tmp_path), tmp_path / "toy.models.json")
    monkeypatch.setattr(sys, "argv", ["uisbench", "run"])
    return engine


def runs(engine) -> list:
    with engine.connect() as conn:
        return conn.execute(select(schema.runs).order_by(schema.runs.c.id)).mappings().all()


@pytest.mark.parametrize(
    ("spec", "name", "params"),
    [
        ("dir/my.py:Router", "dir/my.py:Router", {}),
        ("dir/my.py:Router:k=2,model=m", "dir/my.py:Router", {"k": "2", "model": "m"}),
        ("pkg.mod:Router", "pkg.mod:Router", {}),
        ("pkg.mod:Router:k=2", "pkg.mod:Router", {"k": "2"}),
        ("majority:k=2", "majority", {"k": "2"}),
        ("majority", "majority", {}),
    ],
)
def test_parse_spec_tells_references_from_names(spec, name, params):
    assert parse_spec(spec) == (name, params)


@pytest.mark.parametrize("spec", ["dir/my.py", "dir/my.py:k=2", "majority:k"])
def test_bad_references_and_options_are_one_line(spec):
    with pytest.raises(UisbenchError):
        parse_spec(spec)


def test_a_file_strategy_runs_isolated_and_an_edit_gives_a_new_run(db, tmp_path):
    plugin = tmp_path / "first_of.py"
    plugin.write_text(PLUGIN.format(mark="one"))
    runner = Runner(db, "toy", "toy")
    spec = f"{plugin}:FirstOf:model=n"
    res = runner.run(spec, seed=0)
    assert runner.isolated(spec)
    assert not any("first_of" in m or m.startswith("uisbench_file_") for m in sys.modules)
    assert res.n_queries == len(runner.test_pos)
    assert runner.run(spec, seed=0).skipped  # same code, same run
    plugin.write_text(PLUGIN.format(mark="two"))  # any edit: new code version
    edited = Runner(db, "toy", "toy").run(spec, seed=0)
    assert not edited.skipped and edited.run_id != res.run_id
    rows = runs(db)
    assert [r["strategy"] for r in rows] == ["first-of", "first-of"]
    assert [r["config_label"] for r in rows] == ["first-of:model=n,k=1"] * 2
    codes = [r["summary"]["code"] for r in rows]
    assert codes[0] != codes[1] and all(c.startswith("file+") for c in codes)
    runner.close()


def test_a_file_strategy_is_isolated_even_under_inprocess(db, tmp_path):
    plugin = tmp_path / "first_of.py"
    plugin.write_text(PLUGIN.format(mark="x"))
    runner = Runner(db, "toy", "toy", isolation="inprocess")
    assert runner.isolated(f"{plugin}:FirstOf")
    runner.run(f"{plugin}:FirstOf", seed=1)
    assert not any(m.startswith("uisbench_file_") for m in sys.modules)
    runner.close()


def test_a_module_strategy_from_the_current_directory(db, tmp_path, monkeypatch):
    pkg = tmp_path / "mine" / "myplug"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "routers.py").write_text(PLUGIN.format(mark="m"))
    monkeypatch.chdir(tmp_path / "mine")
    runner = Runner(db, "toy", "toy")
    res = runner.run("myplug.routers:FirstOf:k=2", seed=0)
    assert res.n_queries == len(runner.test_pos)
    assert "myplug" not in sys.modules  # the parent found it without importing it
    assert runs(db)[0]["summary"]["code"].startswith("module+")
    runner.close()


def test_option_bounds_hold_for_a_file_strategy(db, tmp_path):
    plugin = tmp_path / "first_of.py"
    plugin.write_text(PLUGIN.format(mark="x"))
    runner = Runner(db, "toy", "toy")
    with pytest.raises(UisbenchError, match="k=0 must be >= 1"):
        runner.run(f"{plugin}:FirstOf:k=0", seed=0)
    runner.close()


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("missing.py:FirstOf", "No such file"),
        ("{plugin}:Nope", "Nope is not a Strategy subclass"),
        ("no_such_module_here:FirstOf", "no module 'no_such_module_here'"),
    ],
)
def test_cli_refuses_a_bad_reference_in_one_line(db, tmp_path, capsys, ref, message):
    plugin = tmp_path / "first_of.py"
    plugin.write_text(PLUGIN.format(mark="x"))
    spec = ref.format(plugin=plugin)
    argv = ["run", "--db", str(tmp_path / "r.db"), "--task", "toy", "--strategy", spec]
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert runs(db) == []


def test_cli_runs_a_file_strategy(db, tmp_path, capsys):
    plugin = tmp_path / "first_of.py"
    plugin.write_text(PLUGIN.format(mark="x"))
    argv = ["run", "--db", str(tmp_path / "r.db"), "--task", "toy", "--no-report"]
    with pytest.raises(SystemExit) as exc:
        main([*argv, "--strategy", f"{plugin}:FirstOf:model=n"])
        raise SystemExit(0)
    assert exc.value.code == 0
    assert [r["config_label"] for r in runs(db)] == ["first-of:model=n,k=1"]


PROBE = """
import os
from dataclasses import dataclass

from uisbench.strategies import Decisions, Strategy


class Probe(Strategy):
    name = "probe"
    family = "reference"
    description = "reports whether it can see a path"

    @dataclass
    class Params:
        path: str = ""

    def run(self, ctx):
        draw = ctx.meter.draw(ctx.models[0], ctx.stream, 1)
        saw = os.path.exists(self.params.path)
        yield Decisions(ctx.stream, draw.handle[:, 0], extra=[{"saw": saw}] * len(ctx.stream))
"""


@pytest.mark.skipif(not bwrap_works(), reason="needs bubblewrap")
def test_a_module_strategy_sees_its_package_not_the_rest_of_its_folder(db, tmp_path, monkeypatch):
    """The current directory may hold a bank file (its answers): only the package is bound."""
    pkg = tmp_path / "work" / "probepkg"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(PROBE)
    secret = tmp_path / "work" / "toy.jsonl"
    secret.write_text("the answers\n")
    monkeypatch.chdir(tmp_path / "work")
    runner = Runner(db, "toy", "toy")
    res = runner.run(f"probepkg:Probe:path={secret}", seed=0)
    seen = f"probepkg:Probe:path={pkg / '__init__.py'}"
    res2 = runner.run(seen, seed=0)  # its own package: there
    with db.connect() as conn:
        extra = dict(
            conn.execute(
                select(schema.decisions.c.run_id, schema.decisions.c.extra).where(
                    schema.decisions.c.run_id.in_([res.run_id, res2.run_id])
                )
            ).all()
        )
    assert extra[res.run_id] == {"saw": False}
    assert extra[res2.run_id] == {"saw": True}
    runner.close()
