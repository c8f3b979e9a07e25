"""A run's identity holds the strategy's code: an edited plugin gets new runs, not old figures.

A plugin module is written to a temporary folder and registered as an entry point; it is run,
edited, and run again in the same database.
"""

from __future__ import annotations

import sys
import uuid

import pytest

from tests.fakes import FakeBank, FakeModel
from uisbench.errors import UisbenchError
from uisbench.registry import source_digest
from uisbench.results.aggregate import load_decisions, load_runs
from uisbench.results.export import select_runs
from uisbench.runner import Runner
from uisbench.store.bank import import_file
from uisbench.store.engine import open_engine
from uisbench.strategies.base import STRATEGIES

PLUGIN = """
from collections.abc import Iterator

from uisbench.strategies import Decisions, RunContext, Strategy

MODEL = {model}


class Edited(Strategy):
    name = "edited"
    family = "reference"
    description = "test plugin: one sample of one model"

    def run(self, ctx: RunContext) -> Iterator[Decisions]:
        draw = ctx.meter.draw(ctx.models[MODEL], ctx.stream, 1)
        yield Decisions(ctx.stream, draw.handle[:, 0])
"""

BANK = FakeBank(models=(FakeModel("a", 0.2, samples=2), FakeModel("b", 0.9, samples=2)))


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    """(module name, source path) of a fresh plugin registered as strategy ``edited`` by a
    distribution folder on the path (as installed; an isolated run's process finds it too)."""
    module = f"edited_plugin_{uuid.uuid4().hex[:8]}"
    path = tmp_path / f"{module}.py"
    path.write_text(PLUGIN.format(model=0))
    dist = tmp_path / f"{module}-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(f"[{STRATEGIES.group}]\nedited = {module}:Edited\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)  # an edit in the same second reloads
    with STRATEGIES.scoped(distributions=["uisbench", module]):
        yield module, path
    sys.modules.pop(module, None)


def test_code_version_is_read_without_importing_the_plugin(plugin):
    module, path = plugin
    version = STRATEGIES.code_version("edited")
    assert module not in sys.modules
    assert version == "0.1+" + source_digest(module)  # the distribution's version
    assert "unknown" not in source_digest(module)
    path.write_text(PLUGIN.format(model=1))
    assert STRATEGIES.code_version("edited") != version


def test_an_edited_plugin_gets_a_new_run(plugin, tmp_path):
    module, path = plugin
    engine = open_engine(str(tmp_path / "r.db"))
    import_file(engine, BANK.write(tmp_path), tmp_path / "toy.models.json")
    first = Runner(engine, "toy", "toy").run("edited")  # a plugin: isolated by default
    again = Runner(engine, "toy", "toy").run("edited")
    assert again.skipped and again.run_id == first.run_id  # unchanged code: already complete
    path.write_text(PLUGIN.format(model=1))
    sys.modules.pop(module, None)
    with STRATEGIES.scoped(distributions=["uisbench", module]):  # what a new process would see
        edited = Runner(engine, "toy", "toy").run("edited")
    assert not edited.skipped and edited.run_id != first.run_id
    assert edited.accuracy > first.accuracy  # the new code ran (model b, not a)


def test_the_board_keeps_two_versions_of_one_configuration_apart(plugin, tmp_path):
    """An edited plugin gets new runs; on the board (one row per configuration label) its old
    and new runs must not average into one row: each version gets ``label@code``, as a bank
    re-imported with other content gets ``name@digest``. One version keeps its label."""
    module, path = plugin
    engine = open_engine(str(tmp_path / "r.db"))
    import_file(engine, BANK.write(tmp_path), tmp_path / "toy.models.json")
    first = Runner(engine, "toy", "toy").run("edited")
    Runner(engine, "toy", "toy").run("single:model=a")
    (only,) = load_runs(engine)["config_label"].drop_duplicates().loc[lambda s: s == "edited"]
    assert only == "edited"
    path.write_text(PLUGIN.format(model=1))
    sys.modules.pop(module, None)
    with STRATEGIES.scoped(distributions=["uisbench", module]):
        edited = Runner(engine, "toy", "toy").run("edited")
    decisions = load_decisions(engine)
    label = dict(zip(decisions["run_id"], decisions["config_label"]))
    assert label[first.run_id] != label[edited.run_id]
    assert label[first.run_id].startswith("edited@") and label[edited.run_id].startswith("edited@")
    accuracy = decisions.groupby("config_label")["correct"].mean()
    assert accuracy[label[first.run_id]] == pytest.approx(first.accuracy)
    assert accuracy[label[edited.run_id]] == pytest.approx(edited.accuracy)
    assert "single:model=a" in accuracy.index  # one version: its label as it is
    # what the board shows selects the runs it stands for
    assert select_runs(engine, configs=[label[first.run_id]]) == [first.run_id]
    assert select_runs(engine, configs=["edited"]) == [first.run_id, edited.run_id]


def test_builtin_strategies_carry_the_distribution_version():
    from importlib import metadata

    version = STRATEGIES.code_version("cascade")
    assert version.startswith(metadata.version("uisbench") + "+")
    assert version != STRATEGIES.code_version("majority")  # another module, another digest


@pytest.mark.parametrize(
    "version",
    [
        "1.0\x1b]8;;https://example.invalid/\x1b\\click\x1b]8;;\x1b\\",
        "1." + "9" * 5000,
        "1.0\u202e2",
    ],
    ids=["escape", "long", "bidi"],
)
def test_a_version_that_is_no_version_is_refused(plugin, tmp_path, version):
    """A distribution's version is its author's text (METADATA), stored with every run and shown
    on the site: control or bidi characters and kilobytes of it are refused in one line that
    names the distribution, and nothing is stored."""
    module, _ = plugin
    meta = tmp_path / f"{module}-0.1.dist-info" / "METADATA"
    meta.write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: {version}\n", "utf-8")
    engine = open_engine(str(tmp_path / "r.db"))
    import_file(engine, BANK.write(tmp_path), tmp_path / "toy.models.json")
    with pytest.raises(UisbenchError, match=f"distribution {module}: its version .* is not"):
        Runner(engine, "toy", "toy").run("edited")
    assert load_runs(engine).empty


def test_a_plugin_module_of_megabytes_is_refused(plugin):
    """The code version hashes the plugin's module file in this process: a module of
    gigabytes (a zip bomb's worth of a wheel) was read whole into memory. Over the bound of a
    strategy file it is refused in one line, before anything is stored."""
    _, path = plugin
    with open(path, "r+b") as fh:
        fh.truncate(17 << 20)  # sparse: no room taken on the disk
    with pytest.raises(UisbenchError, match="larger than"):
        STRATEGIES.code_version("edited")
