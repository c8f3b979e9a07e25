"""Layers import one way: storage knows nothing of strategies, tasks or results, and so on.

Every ``import`` in the package (module level and inside functions) is read with ``ast`` and
checked against the table below; a wrong-way import fails with the file and line.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

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
    "uisbench.replay": "core",
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
