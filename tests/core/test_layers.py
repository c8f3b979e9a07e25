"""Layers import one way: storage knows nothing of strategies, tasks or results, and so on.

Every ``import`` in the package (module level and inside functions) is read with ``ast`` and
checked against the table below; a wrong-way import fails with the file and line. Likewise every
SQLAlchemy ``select`` built outside storage and the results layer's reads.
"""

from __future__ import annotations

import ast
import importlib
import types
from pathlib import Path

import pytest
import sqlalchemy

ROOT = Path(__file__).resolve().parents[2]
#: Source folder → package it installs as (pyproject's package-dir).
FOLDERS = {
    "harness": "uisbench",
    "strategies": "uisbench.strategies",
    "tasks": "uisbench.tasks",
    "results": "uisbench.results",
    "site": "uisbench.site",
}
#: Module prefix → layer; the longest matching prefix wins.
LAYERS = {
    "uisbench.errors": "base",
    "uisbench.registry": "base",
    "uisbench.provenance": "base",
    "uisbench.redact": "base",
    "uisbench.terminal": "base",
    "uisbench.files": "base",
    "uisbench.store": "store",
    "uisbench.tasks": "tasks",
    "uisbench.costs": "core",
    "uisbench.sampling": "core",
    "uisbench.blind": "core",
    "uisbench.meter": "core",
    "uisbench.fitcache": "core",
    "uisbench.isolation": "core",
    "uisbench.runner": "core",
    "uisbench.parallel": "core",
    "uisbench.run_loop": "core",
    "uisbench.strategies.base": "core",  # the contract the runner drives
    "uisbench.strategies.references": "core",  # FILE.py:Class, module:Class (runner, worker)
    "uisbench.strategies": "strategies",
    "uisbench.live": "live",
    "uisbench.importers": "importers",
    "uisbench.results": "results",
    "uisbench.site": "site",
    "uisbench.decompose": "decompose",
    "uisbench.job": "top",
    "uisbench.progress": "top",
    "uisbench.cli": "top",
    "uisbench": "top",
}
#: Layer → the layers it may import.
ALLOWED = {
    "base": {"base"},
    "store": {"base", "store"},
    "tasks": {"base", "tasks"},
    "core": {"base", "store", "core"},
    "strategies": {"base", "store", "core", "strategies"},
    "live": {"base", "store", "tasks", "live"},
    "importers": {"base", "store", "tasks", "importers"},
    "decompose": {"base", "store", "tasks", "live", "core", "decompose"},
    "results": {"base", "store", "tasks", "core", "results"},
    "site": {"base", "store", "tasks", "core", "results", "site"},
    "top": set(LAYERS.values()),
}


def layer_of(module: str) -> str:
    best = max((p for p in LAYERS if module == p or module.startswith(p + ".")), key=len)
    return LAYERS[best]


def package_modules() -> list[tuple[str, Path]]:
    out = []
    for folder, package in FOLDERS.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            rel = path.relative_to(ROOT / folder).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            # harness/strategies does not exist: subfolders of harness are its own subpackages
            out.append((".".join([package, *parts]), path))
    return out


def imported(module: str, path: Path) -> list[tuple[str, int]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    is_pkg = path.name == "__init__.py"
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base[: len(base) - node.level + (1 if is_pkg else 0)]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            found.append((name, node.lineno))
            # ``from uisbench import x`` may name a submodule: check it too
            found += [(f"{name}.{a.name}", node.lineno) for a in node.names]
    return [(n, line) for n, line in found if n == "uisbench" or n.startswith("uisbench.")]


def violations() -> list[str]:
    known = {m for m, _ in package_modules()}
    bad = []
    for module, path in package_modules():
        here = layer_of(module)
        for name, line in imported(module, path):
            if name not in known and name.rsplit(".", 1)[0] in known:
                name = name.rsplit(".", 1)[0]  # ``from pkg.mod import symbol``
            there = layer_of(name)
            if there not in ALLOWED[here]:
                bad.append(f"{path.relative_to(ROOT)}:{line}: {here} imports {there} ({name})")
    return bad


def test_imports_go_one_way() -> None:
    assert len(package_modules()) > 40  # the walk found the package, not an empty folder
    assert violations() == []


def test_checker_catches_a_wrong_way_import(tmp_path: Path) -> None:
    """The table is not vacuous: storage importing a strategy is reported."""
    assert layer_of("uisbench.store.bank") == "store"
    assert "strategies" not in ALLOWED["store"]
    fake = tmp_path / "bank.py"
    fake.write_text("from uisbench.strategies.tts import MajorityVote\n")
    names = [n for n, _ in imported("uisbench.store.bank", fake)]
    assert any(layer_of(n) == "strategies" for n in names)


@pytest.mark.parametrize("module", ["uisbench.store.schema", "uisbench.site.build"])
def test_every_module_has_a_layer(module: str) -> None:
    assert layer_of(module) in ALLOWED


#: The folders whose modules may build a SQLAlchemy SELECT: storage, and the results layer's
#: reads (the leaderboard's figures, the site's rows, result files).
SQL_FOLDERS = ("harness/store", "results")
SCHEMA = "uisbench.store.schema"


def _from_import(module: str, name: str) -> str | None:
    """What ``from module import name`` binds: SQLAlchemy's ``select``, a SQLAlchemy module,
    the schema module or one of its tables, or nothing of interest (None)."""
    if module.split(".")[0] == "sqlalchemy":
        try:
            obj = getattr(importlib.import_module(module), name, None)
        except ImportError:
            return None
        if obj is sqlalchemy.select:
            return "select"
        return "module" if isinstance(obj, types.ModuleType) else None
    return "schema" if SCHEMA in (module, f"{module}.{name}") else None


def _bindings(tree: ast.AST) -> dict[str, set[str]]:
    """Names the module binds to SQLAlchemy's ``select``, to a SQLAlchemy module (``sa``,
    ``sql``), and to the schema module or one of its tables."""
    bound: dict[str, set[str]] = {"select": set(), "module": set(), "schema": set()}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] == "sqlalchemy":
                    bound["module"].add(a.asname or "sqlalchemy")
                elif a.name == SCHEMA and a.asname:
                    bound["schema"].add(a.asname)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for a in node.names:
                kind = _from_import(node.module, a.name)
                if kind:
                    bound[kind].add(a.asname or a.name)
    return bound


def _root(node: ast.expr) -> str | None:
    """``a`` of ``a.b.c``."""
    while isinstance(node, ast.Attribute):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def sqlalchemy_selects(path: Path) -> list[int]:
    """Lines that build a SQLAlchemy SELECT: ``select(...)`` imported from SQLAlchemy under any
    name, ``sqlalchemy.select(...)`` / ``sa.sql.select(...)``, or ``.select()`` on a table of the
    schema module (``s.runs.select()``). Not the standard library's ``select.select`` nor a
    ``selectors`` object's ``sel.select``: the name is resolved through the module's imports."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    bound = _bindings(tree)
    owners = bound["module"] | bound["schema"]
    lines = []
    for node in ast.walk(tree):
        f = node.func if isinstance(node, ast.Call) else None
        if isinstance(f, ast.Name) and f.id in bound["select"]:
            lines.append(node.lineno)
        elif isinstance(f, ast.Attribute) and f.attr == "select" and _root(f.value) in owners:
            lines.append(node.lineno)
    return sorted(lines)


def selects_outside_sql_layers() -> list[str]:
    bad = []
    for _, path in package_modules():
        rel = path.relative_to(ROOT).as_posix()
        if any(rel.startswith(folder + "/") for folder in SQL_FOLDERS):
            continue
        bad += [f"{rel}:{line}: builds a SQL select" for line in sqlalchemy_selects(path)]
    return bad


def test_selects_only_in_store_and_results() -> None:
    """Every query lives in storage (or the results layer's reads): the runner, the site, the
    CLI and the live recorder ask those modules for rows instead of writing SQL."""
    assert any(sqlalchemy_selects(p) for _, p in package_modules() if "harness/store" in str(p))
    assert selects_outside_sql_layers() == []


def test_select_checker_tells_sqlalchemy_from_select_module(tmp_path: Path) -> None:
    """SQLAlchemy's select under any spelling is found; ``select.select`` and a selector's
    ``sel.select`` are not (both occur in the package: isolation.py, tasks/sandbox.py)."""
    found = tmp_path / "found.py"
    found.write_text(
        "import sqlalchemy as sa\n"
        "from sqlalchemy import select as pick\n"
        "from sqlalchemy import sql\n"
        "from uisbench.store import schema as s\n"
        "from uisbench.store.schema import runs\n"
        "def f():\n"
        "    from sqlalchemy import select\n"
        "    return select(s.runs), pick(runs), sa.select(runs), sql.expression.select(runs)\n"
        "s.runs.select()\n"
        "runs.select()\n"
    )
    assert sqlalchemy_selects(found) == [8, 8, 8, 8, 9, 10]
    ignored = tmp_path / "ignored.py"
    ignored.write_text(
        "import select\n"
        "import selectors\n"
        "sel = selectors.DefaultSelector()\n"
        "select.select([0], [], [], 1.0)\n"
        "sel.select(1.0)\n"
        "frame.select_dtypes(include=['number'])\n"
    )
    assert sqlalchemy_selects(ignored) == []
    assert sqlalchemy_selects(ROOT / "tasks" / "sandbox.py") == []
    assert sqlalchemy_selects(ROOT / "harness" / "isolation.py") == []
