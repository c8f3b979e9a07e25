"""uisbench's build backend: setuptools', with an editable install that needs no import hook.

The package's folders are renamed (``uisbench`` is ``harness/``, ``uisbench.strategies`` is
``strategies/``, ... in ``pyproject.toml``), so setuptools' default editable install is a
meta-path finder, which comes after the plain path search: from the folder above a checkout
named ``uisbench``, ``import uisbench`` found the checkout as a namespace package. Here the
editable wheel is setuptools' "strict" one, a ``.pth`` naming a folder of links
(``build/__editable__.uisbench-*/``) that holds a regular package ``uisbench``; every folder of it
that mirrors one source folder is then one link to that folder, so a module added to
``strategies/``, ``harness/store/``, ... is found at once. Only a module added at the top of
``harness/`` needs ``pip install -e .`` again (tests/core/test_install.py says so). Every other
hook (wheel, sdist) is setuptools' own.
"""

from __future__ import annotations

import os
import shutil
import zipfile
from pathlib import Path

from setuptools import build_meta as _setuptools
from setuptools.build_meta import *  # noqa: F403 - the other hooks, unchanged


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    settings = {**(config_settings or {}), "editable-mode": "strict"}
    name = _setuptools.build_editable(wheel_directory, settings, metadata_directory)
    for tree in _pth_folders(Path(wheel_directory) / name):
        for package in [p for p in tree.iterdir() if p.is_dir() and not p.is_symlink()]:
            _fold(package)
    return name


def _pth_folders(wheel: Path) -> list[Path]:
    """The folders the wheel's ``.pth`` files put on ``sys.path``."""
    with zipfile.ZipFile(wheel) as zf:
        lines = [
            line.strip()
            for member in zf.namelist()
            if member.endswith(".pth") and "/" not in member
            for line in zf.read(member).decode().splitlines()
        ]
    return [Path(line) for line in lines if line and not line.startswith(("#", "import"))]


def _fold(folder: Path) -> Path | None:
    """Replace each sub-folder of ``folder`` (a folder of file links) that mirrors one source
    folder by one link to it; the source folder ``folder`` mirrors, or None."""
    sources = set()
    for entry in list(folder.iterdir()):
        if entry.is_symlink() and entry.is_file():
            sources.add(Path(os.path.realpath(entry)).parent)
        elif entry.is_dir() and not entry.is_symlink():
            source = _fold(entry)
            if source is None or source.name != entry.name:
                sources.add(None)
                continue
            shutil.rmtree(entry)
            entry.symlink_to(source, target_is_directory=True)
            sources.add(source.parent)
        else:
            sources.add(None)
    return sources.pop() if len(sources) == 1 and None not in sources else None
