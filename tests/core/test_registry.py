"""The one plugin Registry: entry points only, did-you-mean, name and type checks.

The entry-point list is replaced by a fake one (``importlib.metadata.entry_points`` patched), so
each test knows exactly what is installed; the built-ins are checked against ``pyproject.toml``.
"""

from __future__ import annotations

import re
import sys
from importlib import metadata
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: pytest depends on tomli there
    import tomli as tomllib

from uisbench.errors import UisbenchError
from uisbench.live.backends import BACKENDS
from uisbench.registry import Registry, source_digest
from uisbench.strategies.base import STRATEGIES, Strategy
from uisbench.strategies.tts import MajorityVote
from uisbench.tasks import TASKS

GROUP = "uisbench.test-plugins"
PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"
CHEATERS = Path(__file__).resolve().parent / "cheaters"  # a plugin distribution (dist-info)


@pytest.fixture
def installed(monkeypatch: pytest.MonkeyPatch) -> list[EntryPoint]:
    """The entry points a fresh Registry of group ``GROUP`` will see (append to it)."""
    eps: list[EntryPoint] = []
    real = metadata.entry_points

    def entry_points(**kw):
        return list(eps) if kw.get("group") == GROUP else real(**kw)

    monkeypatch.setattr(metadata, "entry_points", entry_points)
    return eps


def ep(name: str, value: str) -> EntryPoint:
    return EntryPoint(name, value, GROUP)


def test_plugins_come_from_entry_points_only(installed):
    reg = Registry(GROUP, "strategy", Strategy)
    assert reg.names() == [] and "majority" not in reg
    installed.append(ep("majority", "uisbench.strategies.tts:MajorityVote"))
    reg = Registry(GROUP, "strategy", Strategy)
    assert reg.names() == ["majority"] and "majority" in reg
    assert reg.get("majority") is MajorityVote
    assert reg.all() == {"majority": MajorityVote}


class _Dist:
    """What the registry reads of a distribution: its name."""

    def __init__(self, name: str) -> None:
        self.metadata = {"Name": name}


def ep_of(dist: str, name: str, value: str) -> EntryPoint:
    """An entry point as a distribution named ``dist`` declares it."""
    return EntryPoint(name, value, GROUP)._for(_Dist(dist))


@pytest.mark.parametrize("shipped_first", [True, False])
def test_a_plugin_cannot_take_the_name_of_a_shipped_one(installed, capsys, shipped_first):
    """Which of two entry points of one name the registry kept used to follow the order the
    distributions were found in: a plugin could put its figures on the board under a shipped
    strategy's name (and a shipped name could hide a plugin without a word)."""
    ours = ep_of("uisbench", "majority", "uisbench.strategies.tts:MajorityVote")
    theirs = ep_of("Some_Plugin", "majority", "some_plugin:Majority")
    installed += [ours, theirs] if shipped_first else [theirs, ours]
    reg = Registry(GROUP, "strategy", Strategy)
    assert reg.names() == ["majority"]
    assert reg.distribution("majority") == "uisbench"
    assert reg.get("majority") is MajorityVote
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Some_Plugin" in err and "majority" in err


def test_one_name_of_two_plugins_is_refused_where_it_is_used(installed):
    installed += [
        ep_of("plugin-a", "fast", "plugin_a:Fast"),
        ep_of("plugin-b", "fast", "plugin_b:Fast"),
        ep_of("plugin-a", "slow", "uisbench.strategies.tts:MajorityVote"),
    ]
    reg = Registry(GROUP, "strategy", Strategy)
    assert reg.names() == ["fast", "slow"]  # listed, so that the clash can be seen
    for use in (reg.get, reg.distribution, reg.code_version):
        with pytest.raises(UisbenchError, match=r"'fast' is registered by plugin-a and plugin-b"):
            use("fast")
    assert reg.distribution("slow") == "plugin-a"


def test_unknown_name_gets_did_you_mean(installed):
    installed += [
        ep("majority", "uisbench.strategies.tts:MajorityVote"),
        ep("oracle", "uisbench.strategies.reference:Oracle"),
    ]
    reg = Registry(GROUP, "strategy", Strategy)
    with pytest.raises(UisbenchError) as exc:
        reg.get("majorty")
    assert str(exc.value) == (
        "unknown strategy 'majorty'; did you mean majority? (available: majority, oracle)"
    )
    with pytest.raises(UisbenchError) as exc:
        reg.get("zzz")
    assert str(exc.value) == "unknown strategy 'zzz' (available: majority, oracle)"


def test_declared_name_must_be_the_entry_point_name(installed):
    installed.append(ep("vote", "uisbench.strategies.tts:MajorityVote"))
    reg = Registry(GROUP, "strategy", Strategy)
    assert MajorityVote.name == "majority"
    with pytest.raises(
        UisbenchError, match="declares the name 'majority' but is registered as 'vote'"
    ):
        reg.get("vote")


def test_a_plugin_of_the_wrong_kind_is_refused(installed):
    installed.append(ep("arrays", "uisbench.store.arrays:BankArrays"))
    reg = Registry(GROUP, "strategy", Strategy)
    with pytest.raises(
        UisbenchError, match=r"'arrays' \(uisbench.store.arrays:BankArrays\) is not a Strategy"
    ):
        reg.get("arrays")
    installed.append(ep("tts", "uisbench.strategies.tts"))  # a module, not a class
    with pytest.raises(UisbenchError, match="is not a Strategy"):
        Registry(GROUP, "strategy", Strategy).get("tts")


def _builtins() -> list:
    """(registry, name, target) of each plugin ``pyproject.toml`` registers."""
    groups = tomllib.loads(PYPROJECT.read_text("utf-8"))["project"]["entry-points"]
    return [
        pytest.param(registry, name, target, id=f"{registry.kind}-{name}")
        for registry in (STRATEGIES, TASKS, BACKENDS)
        for name, target in groups[registry.group].items()
    ]


def _extra_of(module: str) -> str | None:
    """The optional extra (``pyproject.toml``) that installs the top-level ``module``."""
    extras = tomllib.loads(PYPROJECT.read_text("utf-8"))["project"]["optional-dependencies"]
    wanted = module.split(".")[0].replace("_", "-").lower()
    for extra, requirements in extras.items():
        names = {re.split(r"[\s<>=!~;\[]", r, maxsplit=1)[0].lower() for r in requirements}
        if wanted in names:
            return extra
    return None


@pytest.mark.parametrize(("registry", "name", "target"), _builtins())
def test_builtins_are_the_entry_points_in_pyproject(registry, name, target):
    assert name in registry.names()
    try:
        plugin = Registry(registry.group, registry.kind).get(name)
    except ModuleNotFoundError as exc:
        extra = _extra_of(exc.name or "")
        if extra is None:
            raise
        pytest.skip(f"{target} needs the {extra!r} extra ({exc.name} is not installed)")
    assert plugin is not None, target


class Votes(MajorityVote):
    """Another majority (a test's plugin)."""


def test_added_registers_a_plugin_for_the_block_only():
    before = STRATEGIES.names()
    with STRATEGIES.added("majority", Votes, distribution="uisbench"):
        assert STRATEGIES.get("majority") is Votes
        assert STRATEGIES.distribution("majority") == "uisbench"
        assert STRATEGIES.code_version("majority").endswith(source_digest(__name__))
    assert STRATEGIES.get("majority") is MajorityVote
    with STRATEGIES.added("votes", f"{__name__}:Votes"):  # loaded on first use
        assert "votes" in STRATEGIES and STRATEGIES.distribution("votes") is None
        with pytest.raises(UisbenchError, match="declares the name 'majority'"):
            STRATEGIES.get("votes")  # the checks of an installed plugin
    assert STRATEGIES.names() == before and "votes" not in STRATEGIES
    with pytest.raises(UisbenchError, match="is not a Strategy"):
        with STRATEGIES.added("tts", MajorityVote.run):
            pass
    assert STRATEGIES.names() == before


def test_scoped_rereads_the_installed_plugins_and_keeps_those_asked_for(monkeypatch):
    monkeypatch.syspath_prepend(str(CHEATERS))  # a distribution installed after the first look
    with STRATEGIES.scoped(distributions=["uisbench"]):
        assert "honest" not in STRATEGIES and "majority" in STRATEGIES
    with STRATEGIES.scoped(distributions=["UISBENCH_cheaters"]):  # names compare normalised
        assert "honest" in STRATEGIES and "majority" not in STRATEGIES
        with STRATEGIES.scoped(names=["honest", "majority"]):
            assert STRATEGIES.names() == ["honest", "majority"]
        assert "single" not in STRATEGIES
    assert "honest" not in STRATEGIES and "majority" in STRATEGIES


def test_the_suite_sees_uisbench_plugins_unless_a_test_asks(monkeypatch, request):
    monkeypatch.syspath_prepend(str(CHEATERS))
    with STRATEGIES.scoped(distributions=["uisbench"]):  # the suite's own (tests/conftest.py)
        assert {STRATEGIES.distribution(n) for n in STRATEGIES.names()} == {"uisbench"}
    request.getfixturevalue("installed_plugins")
    assert STRATEGIES.distribution("honest") == "uisbench-cheaters"
    assert STRATEGIES.distribution("majority") == "uisbench"


def test_a_distribution_calling_itself_uisbench_is_not_shipped(installed, capsys):
    """Shipped strategies run in-process; a distribution's name is its author's text, so a
    plugin whose METADATA says ``Name: uisbench`` ran in-process beside the database and the
    truth. Only code of the uisbench package is uisbench's: such an entry point is ignored with
    one note each."""
    installed += [
        ep_of("uisbench", "majority", "uisbench.strategies.tts:MajorityVote"),
        ep_of("uisbench", "fake-shipped", "fakeship_pkg:Evil"),
        ep_of("UisBench", "fake-prefix", "uisbench_fake.strategies:Evil"),
    ]
    reg = Registry(GROUP, "strategy", Strategy)
    assert reg.names() == ["majority"] and reg.distribution("majority") == "uisbench"
    err = capsys.readouterr().err
    assert err.count("\n") == 2 and "fakeship_pkg" in err and "uisbench_fake.strategies" in err


def test_a_plugin_calling_itself_uisbench_never_runs_here(tmp_path, monkeypatch):
    """The same, installed and run: the strategy is unknown and its module never imported."""
    from tests.fakes import FakeBank, FakeModel
    from uisbench.runner import Runner
    from uisbench.store.bank import import_file
    from uisbench.store.engine import open_engine

    (tmp_path / "fakeship_pkg.py").write_text(
        "from uisbench.strategies import Decisions, Strategy\n\n\n"
        "class Evil(Strategy):\n"
        "    name = 'fake-shipped'\n    family = 'reference'\n    description = 'impostor'\n\n"
        "    def run(self, ctx):\n"
        "        draw = ctx.meter.draw(ctx.models[0], ctx.stream, 1)\n"
        "        yield Decisions(ctx.stream, draw.handle[:, 0])\n"
    )
    dist = tmp_path / "uisbench-9.9.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: uisbench\nVersion: 9.9\n")
    (dist / "entry_points.txt").write_text(
        f"[{STRATEGIES.group}]\nfake-shipped = fakeship_pkg:Evil\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    bank = FakeBank(models=(FakeModel("a", 0.5, samples=2),), queries=20, seed=1)
    engine = open_engine(str(tmp_path / "r.db"))
    import_file(engine, bank.write(tmp_path), tmp_path / "toy.models.json")
    with STRATEGIES.scoped(distributions=["uisbench"]):
        with pytest.raises(UisbenchError, match="unknown strategy 'fake-shipped'"):
            Runner(engine, "toy", "toy").run("fake-shipped")
    assert "fakeship_pkg" not in sys.modules


def test_a_name_that_is_no_name_is_ignored(installed, capsys):
    """An entry point's name is its author's text (``entry_points.txt``), printed by ``list``,
    in the job's skip lines and on the site: escape sequences there clear the screen or retitle
    the terminal. A name that a spec cannot hold either is ignored with one note, shown as
    Python writes it (escapes escaped)."""
    installed += [
        ep_of("plugin-a", "evil\x1b[2J\x1b]0;pwned\x07", "plugin_a:Evil"),
        ep_of("plugin-a", "with space", "plugin_a:Spaced"),
        ep_of("plugin-a", "x" * 101, "plugin_a:Long"),
        ep_of("plugin-a", "fine-1.0_b", "plugin_a:Fine"),
    ]
    reg = Registry(GROUP, "strategy", Strategy)
    assert reg.names() == ["fine-1.0_b"]
    err = capsys.readouterr().err
    assert err.count("\n") == 3 and "\x1b" not in err and "\\x1b[2J" in err


def test_a_distribution_s_name_is_shown_without_its_escapes(installed, capsys):
    """A distribution's name (METADATA) is its author's text too: the note on a shipped name
    taken and the error on a name two plugins claim show it without control characters."""
    installed += [
        ep_of("uisbench", "majority", "uisbench.strategies.tts:MajorityVote"),
        ep_of("evil\x1b[2J", "majority", "evil:Majority"),
        ep_of("evil\x1b]0;a\x07", "fast", "evil_a:Fast"),
        ep_of("other", "fast", "other:Fast"),
    ]
    reg = Registry(GROUP, "strategy", Strategy)
    with pytest.raises(UisbenchError) as exc:
        reg.get("fast")
    err = capsys.readouterr().err
    assert "evil" in err and "evil" in str(exc.value)
    assert "\x1b" not in err and "\x1b" not in str(exc.value)
