"""A plugin that cannot be loaded or cannot run is skipped by a job that did not name it, with
one line each, and the rest run; named explicitly, it fails the job (exit 2).

``tests/cli/brokenplugins`` is a plugin distribution (package and ``dist-info`` with entry
points) put on the path, as ``tests/core/cheaters`` is: no install needed.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.fakes import FakeBank, FakeModel, cli
from uisbench.store import schema
from uisbench.store.bank import import_file
from uisbench.store.engine import open_engine
from uisbench.strategies.base import STRATEGIES

PLUGINS = Path(__file__).resolve().parent / "brokenplugins"
#: ``twice`` is registered by both distributions in that folder (the second one, ``-twin``,
#: also claims the shipped name ``single``, which stays uisbench's).
BROKEN = [
    "bad-import",
    "bad-sweep",
    "fails-in-run",
    "huge-sweep",
    "no-such-class",
    "no-such-module",
    "twice",
]
DISTRIBUTIONS = ["uisbench", "uisbench-brokenplugins", "uisbench-brokenplugins-twin"]
BANK = FakeBank(models=(FakeModel("m", 0.5, samples=2),), queries=30, seed=3)


@pytest.fixture
def db(tmp_path, monkeypatch):
    """A toy bank, the broken plugins on the path, the registry cut to them and one built-in
    (``single``: the job stays small)."""
    monkeypatch.syspath_prepend(str(PLUGINS))
    names = {*BROKEN, "fine", "single"}
    with STRATEGIES.scoped(DISTRIBUTIONS, names):
        assert STRATEGIES.names() == sorted(names)
        path = tmp_path / "r.db"
        import_file(open_engine(str(path)), BANK.write(tmp_path), tmp_path / "toy.models.json")
        monkeypatch.setattr(sys, "argv", ["uisbench", "run"])
        yield str(path)
    for mod in [m for m in sys.modules if m.startswith("uisbench_brokenplugins")]:
        sys.modules.pop(mod)


def strategies_run(db: str) -> set[str]:
    with open_engine(db).connect() as conn:
        return set(conn.execute(select(schema.runs.c.strategy)).scalars())


def test_each_broken_plugin_is_skipped_in_one_line_and_the_rest_run(db, capsys):
    code, out, err = cli(capsys, "run", "--db", db, "--bank", "toy", "--no-report")
    err += out  # both streams, stderr first
    assert code == 0, err
    skipped = [line for line in err.splitlines() if line.startswith("skipped: plugin")]
    assert sorted(line.split()[2] for line in skipped) == BROKEN  # one line each
    assert "the run is broken" in next(x for x in skipped if "fails-in-run" in x)
    assert "the sweep is broken" in next(x for x in skipped if "bad-sweep" in x)
    assert "600 settings (at most" in next(x for x in skipped if "huge-sweep" in x)
    assert "a_package_that_is_not_installed" in next(x for x in skipped if "bad-import" in x)
    twice = next(x for x in skipped if "twice" in x)
    assert "uisbench-brokenplugins and uisbench-brokenplugins-twin" in twice
    assert strategies_run(db) == {"fine", "single"}  # the failed run left no row
    assert "1 of broken plugins skipped" in err  # fails-in-run's one setting, not "executed"


def test_list_shows_a_broken_plugin_as_such(db, capsys):
    code, out, err = cli(capsys, "list", "strategies")
    assert code == 0
    text = " ".join((err + out).split())
    assert "cannot be loaded" in text and "fine" in text


def table_rows(out: str) -> dict[str, str]:
    """A rich table with lines between rows as {first cell: the row's words, cells joined}."""
    rows = {}
    for block in re.split(r"\n[├└┡][^\n]*", out):
        lines = [line.split("│")[1:-1] for line in block.splitlines() if line.startswith("│")]
        if lines:
            cells = [" ".join(" ".join(c.split()) for c in col).strip() for col in zip(*lines)]
            rows[cells[0]] = " ".join(cells)
    return rows


def test_list_never_imports_a_plugin_here(db, capsys):
    """A plugin's module is untrusted code, as in ``run``: ``list strategies`` asks a strategy
    process for a plugin's description, family and options and never imports it itself."""
    for mod in [m for m in sys.modules if m.startswith("uisbench_brokenplugins")]:
        sys.modules.pop(mod)
    code, out, err = cli(capsys, "list", "strategies", "-v")
    assert code == 0, err
    assert not [m for m in sys.modules if m.startswith("uisbench_brokenplugins")]
    rows = table_rows(out)
    assert "the first sample of the first model reference none" in rows["fine"]
    assert rows["huge-sweep"].endswith("reference i=0")  # its options, from its own process
    bad = "cannot be loaded: ModuleNotFoundError: No module named 'a_package_that_is_not_installed'"
    assert bad in rows["bad-import"]
    assert "Reference point: one fixed model" in rows["single"]  # shipped: read here


def test_the_report_never_imports_a_plugin_here(db, capsys):
    """The report names each configuration by the options that differ from its strategy's
    defaults; a plugin's defaults are in its module, which this process never imports (its
    runs were isolated): its label is shown whole."""
    args = ["--strategy", "huge-sweep:i=0", "--strategy", "single:model=m", "--no-report"]
    code, out, err = cli(capsys, "run", "--db", db, "--bank", "toy", *args)
    assert code == 0, err
    for mod in [m for m in sys.modules if m.startswith("uisbench_brokenplugins")]:
        sys.modules.pop(mod)
    code, out, err = cli(capsys, "report", "--all", "--db", db)
    assert code == 0, err
    assert not [m for m in sys.modules if m.startswith("uisbench_brokenplugins")]
    assert "huge-sweep:i=0" in out  # whole, its default included
    assert "single:model=m" in out  # a shipped one: as before


@pytest.mark.parametrize("name", ["fails-in-run", "no-such-class"])
def test_a_broken_plugin_named_explicitly_fails_the_job(db, capsys, name):
    code, out, err = cli(capsys, "run", "--db", db, "--bank", "toy", "--strategy", name)
    err += out  # both streams, stderr first
    assert code == 2
    assert len(err.strip().splitlines()) == 1
    assert strategies_run(db) == set()


def test_a_batch_stops_at_its_plugin_s_first_failed_run(db, capsys, monkeypatch):
    """``--jobs``: the runs of a plugin's batch after its failed one are dropped, not written
    and not reported again (one line), and the other strategies' batches run."""
    from uisbench import parallel

    def whole(work, jobs):  # each strategy's runs in one batch, whatever their number
        out: list[list[int]] = []
        for i, (_, spec, _) in enumerate(work):
            same = out and work[out[-1][0]][1].split(":")[0] == spec.split(":")[0]
            out[-1].append(i) if same else out.append([i])
        return out

    monkeypatch.setattr(parallel, "batches", whole)
    seeds = ["--seed", "0", "--seed", "1", "--seed", "2"]
    args = ["run", "--db", db, "--bank", "toy", "--no-report", "--jobs", "2", *seeds]
    code, out, err = cli(capsys, *args)
    err += out
    assert code == 0, err
    assert [line.split()[2] for line in err.splitlines() if "fails-in-run" in line] == [
        "fails-in-run"
    ]
    assert "3 of broken plugins skipped" in err  # its three seeds: one failed, two dropped
    with open_engine(db).connect() as conn:
        runs = conn.execute(select(schema.runs.c.strategy, schema.runs.c.status)).all()
    assert sorted(runs) == [("fine", "complete")] * 3 + [("single", "complete")] * 3
