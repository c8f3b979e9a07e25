"""A submitted package's wheels are read before anything of them is installed
(``uisbench.wheels``, scripts/verify_submissions.sh): a wheel may add its own modules and its
metadata; one that would add a ``.pth`` or a ``sitecustomize`` (run by every later Python
process, the verifying one included), replace another distribution's module (uisbench's gate,
numpy, the standard library), a script in ``bin`` or anything outside site-packages is refused
in one line per problem, and nothing is installed."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from uisbench.wheels import main, problems

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "verify_submissions.sh"


def wheel(folder: Path, files: dict[str, str], name: str = "uisbench_zz_plugin") -> Path:
    """A pure-Python wheel holding ``files`` and its metadata (nothing of it is imported)."""
    path = folder / f"{name}-0.1-py3-none-any.whl"
    info = f"{name}-0.1.dist-info"
    with zipfile.ZipFile(path, "w") as zf:
        for entry, text in files.items():
            zf.writestr(entry, text)
        zf.writestr(f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
        zf.writestr(
            f"{info}/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        )
        zf.writestr(f"{info}/entry_points.txt", f"[uisbench.strategies]\nzz = {name}:Zz\n")
        zf.writestr(f"{info}/RECORD", "")
    return path


PLUGIN = {"uisbench_zz_plugin/__init__.py": "class Zz: ...\n"}
#: What a wheel may not install, and the words of its refusal.
REFUSED = {
    "a .pth": ({"zz_hook.pth": "import os\n"}, "every Python process"),
    "sitecustomize": ({"sitecustomize.py": "print(1)\n"}, "every Python process"),
    "uisbench's gate": ({"uisbench/gate.py": "PASS = True\n"}, "uisbench exists already"),
    "numpy": ({"numpy/__init__.py": ""}, "numpy exists already (from numpy)"),
    "the standard library": ({"json/__init__.py": ""}, "from the standard library"),
    "a script in bin": ({"uisbench_zz_plugin-0.1.data/scripts/python": ""}, "would replace"),
    "data outside site-packages": (
        {"uisbench_zz_plugin-0.1.data/data/lib/python3.11/site-packages/uisbench/gate.py": ""},
        "outside site-packages",
    ),
    "a .pth through purelib": (
        {"uisbench_zz_plugin-0.1.data/purelib/zz_hook.pth": "import os\n"},
        "every Python process",
    ),
    "a path out of the wheel": ({"../evil.py": ""}, "outside the wheel"),
}


def test_a_plugin_wheel_with_its_own_modules_only_passes(tmp_path):
    assert problems(wheel(tmp_path, PLUGIN)) == []
    data = {"uisbench_zz_plugin-0.1.data/purelib/uisbench_zz_extra.py": "X = 1\n"}
    assert problems(wheel(tmp_path, {**PLUGIN, **data})) == []


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_a_wheel_that_installs_more_than_its_modules_is_refused(tmp_path, case, capsys):
    files, words = REFUSED[case]
    path = wheel(tmp_path, {**PLUGIN, **files})
    found = problems(path)
    assert len(found) == 1 and words in found[0], found
    assert main([str(path)]) == 1
    assert capsys.readouterr().err.count("\n") == 1


def test_the_submission_script_installs_nothing_of_a_refused_package(tmp_path):
    """The script downloads the wheel, reads it, refuses it: the .pth never reaches
    site-packages, and the file is not verified."""
    site = Path(sysconfig.get_path("purelib"))
    hook = site / "zz_hook.pth"
    assert not hook.exists()
    results = tmp_path / "results"
    results.mkdir()
    path = wheel(tmp_path, {**PLUGIN, "zz_hook.pth": "# would run in every process\n"})
    (results / "zz.json").write_text("{}")
    (results / "zz.package.txt").write_text(f"{path}\n")
    env = {**os.environ, "PYTHON": sys.executable, "PIP_NO_INDEX": "1"}
    try:
        done = subprocess.run(
            ["bash", str(SCRIPT), str(results)],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 1, done.stderr
        assert "zz_hook.pth would run in every Python process" in done.stderr
        assert "not verified" in done.stderr
        assert not hook.exists()
        assert not (results / "zz.verified.json").exists()
    finally:  # a broken check must not leave the hook in this environment
        if hook.exists():
            subprocess.run([sys.executable, "-m", "pip", "uninstall", "-y", "uisbench-zz-plugin"])
