"""The example plugin (examples/strategy-plugin) as the board sees it: run in its own process,
on the site, and an edit to its code gives new runs.

A copy of its package and a ``dist-info`` with its entry points (read from its pyproject) are
put on the path, so this needs no install; scripts/test.sh also installs it with pip and runs
its own tests.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: pytest depends on tomli there
    import tomli as tomllib

from tests.fakes import FakeBank, FakeModel
from uisbench.cli import main
from uisbench.store import schema
from uisbench.store.bank import import_file
from uisbench.store.engine import open_engine
from uisbench.strategies.base import STRATEGIES

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "strategy-plugin"
BANK = FakeBank(
    models=(
        FakeModel("small", 0.3, samples=4, params_b=1.0),
        FakeModel("big", 0.8, samples=4, params_b=8.0),
    ),
    queries=40,
    train=20,
)


@pytest.fixture
def plugin(tmp_path, monkeypatch) -> Path:
    """The example's package copied beside a dist-info made from its pyproject; the module
    file's path."""
    meta = tomllib.loads((EXAMPLE / "pyproject.toml").read_text())["project"]
    root = tmp_path / "site-packages"
    shutil.copytree(EXAMPLE / "src" / "uisbench_example", root / "uisbench_example")
    info = root / f"uisbench_example_plugin-{meta['version']}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {meta['name']}\nVersion: {meta['version']}\n"
    )
    eps = meta["entry-points"]["uisbench.strategies"]
    lines = [f"{k} = {v}" for k, v in eps.items()]
    (info / "entry_points.txt").write_text("[uisbench.strategies]\n" + "\n".join(lines) + "\n")
    monkeypatch.syspath_prepend(str(root))
    for mod in [m for m in sys.modules if m.startswith("uisbench_example")]:
        monkeypatch.delitem(sys.modules, mod)  # e.g. imported by another test
    monkeypatch.setattr(sys, "argv", ["uisbench", "run"])
    with STRATEGIES.scoped(distributions=["uisbench", meta["name"]]):
        yield root / "uisbench_example" / "cheapest.py"
    for mod in [m for m in sys.modules if m.startswith("uisbench_example")]:
        sys.modules.pop(mod)


def cli(*args: str) -> None:
    with pytest.raises(SystemExit) as exc:
        main(list(args))
        raise SystemExit(0)
    assert exc.value.code == 0


def test_the_example_runs_isolated_shows_on_the_site_and_an_edit_gives_new_runs(
    tmp_path, plugin, capsys
):
    db = str(tmp_path / "r.db")
    import_file(open_engine(db), BANK.write(tmp_path), tmp_path / "toy.models.json")
    run = ["run", "--db", db, "--bank", "toy", "--no-report", "--strategy"]
    cli(*run, "cheapest-enough:target=0.9")
    assert STRATEGIES.distribution("cheapest-enough") == "uisbench-example-plugin"
    assert "uisbench_example" not in sys.modules  # run in its own process
    cli("site", "build", "--db", db, "--out", str(tmp_path / "site"), "--include-synthetic")
    pages = "".join(p.read_text() for p in (tmp_path / "site").rglob("*.html"))
    assert "cheapest-enough:target=0.9" in pages

    cli(*run, "cheapest-enough:target=0.9")  # unchanged code: the same run, complete
    with open_engine(db).connect() as conn:
        assert len(conn.execute(select(schema.runs)).all()) == 1
    plugin.write_text(plugin.read_text() + "\n# an edit\n")
    cli(*run, "cheapest-enough:target=0.9")
    with open_engine(db).connect() as conn:
        rows = conn.execute(select(schema.runs.c.run_key, schema.runs.c.summary)).all()
    assert len(rows) == 2 and rows[0].run_key != rows[1].run_key
    assert rows[1].summary["strategy"]["model"] == "big"  # what it chose on train
