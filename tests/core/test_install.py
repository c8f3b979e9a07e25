"""The installed package is found without an import hook (scripts/build_backend.py).

With setuptools' default editable install (a meta-path finder, after the plain path search),
``import uisbench`` run from the folder above a checkout named ``uisbench`` found the checkout
as an empty namespace package.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import uisbench

ROOT = Path(__file__).resolve().parents[2]
FOLDERS = ("harness", "strategies", "tasks", "results", "site")


def test_import_from_the_folder_above_a_checkout_named_uisbench_finds_the_package(tmp_path):
    checkout = tmp_path / "uisbench"
    checkout.mkdir()
    for entry in [*FOLDERS, "pyproject.toml", "scripts"]:
        (checkout / entry).symlink_to(ROOT / entry)
    code = "import uisbench, uisbench.strategies.tts as t; print(uisbench.__file__, t.__file__)"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    init, tts = out.stdout.split()
    assert init == uisbench.__file__  # the installed package, not a namespace (None)
    assert Path(tts).resolve() == ROOT / "strategies" / "tts.py"


def test_the_editable_install_holds_every_module_of_harness():
    """A module or package added at the top of ``harness/`` is found once ``pip install -e .``
    ran again (the folders below it, and strategies/, tasks/, results/, site/, are linked
    whole)."""
    package = Path(uisbench.__file__).parent
    if not Path(uisbench.__file__).is_symlink():
        pytest.skip(f"not an editable install of this checkout ({package})")
    for name in ["cli", "store", "live", *FOLDERS[1:]]:
        assert (package / name).is_symlink(), f"{name} is not linked whole: reinstall"
    missing = sorted(
        p.name
        for p in (ROOT / "harness").iterdir()
        if (p.suffix == ".py" or (p / "__init__.py").exists())
        and not os.path.lexists(package / p.name)
    )
    assert not missing, f"{', '.join(missing)} not installed: run pip install -e . again"


def test_every_public_name_resolves_from_where_the_package_says():
    """The package re-exports lazily (PEP 562): ``__all__``, the name -> module table and what
    each module defines agree, so ``from uisbench import X`` works for every listed name."""
    assert set(uisbench.__all__) == {*uisbench._EXPORTS, "UisbenchError"}
    for name, module in uisbench._EXPORTS.items():
        assert getattr(uisbench, name) is getattr(__import__(module, fromlist=[name]), name)
    assert set(uisbench.__all__) <= set(dir(uisbench))
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        uisbench.nope  # noqa: B018
