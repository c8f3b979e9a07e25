"""A submitted plugin's wheels, read before they are installed (scripts/verify_submissions.sh).

Installing a package is not isolated: a wheel can replace files of other installed
distributions (uisbench's own, whose gate writes the *verified* verdict), add a ``.pth`` file or
a ``sitecustomize`` that every later Python process of the environment runs (the verifying one
too), or a script over one in ``bin``. Strategies run sandboxed; their installation does not. So
the submission script downloads each requirement as a wheel (no build code runs), and
:func:`problems` reads it as a zip, running nothing of it: it may install its own top-level
modules and its metadata, nothing else. ``python -m uisbench.wheels WHEEL...`` prints one line
per problem and exits 1 if there is any.
"""

from __future__ import annotations

import pkgutil
import sys
import sysconfig
import zipfile
from importlib import metadata
from pathlib import Path, PurePosixPath

from uisbench.registry import normal_name

#: Modules the interpreter imports by itself at start-up (``site``).
STARTUP = frozenset({"sitecustomize", "usercustomize"})
#: Where a wheel's ``NAME.data`` subfolders install; only these two are site-packages.
LIBRARY = frozenset({"purelib", "platlib"})


def _top(part: str) -> str:
    """The import name of a site-packages entry: ``pkg``, ``mod.py``, ``_ext.cpython-311.so``."""
    return part.split(".", 1)[0]


def owners() -> dict[str, set[str]]:
    """Top-level import name -> distributions that install it (normalized); the standard
    library's names and what is importable without a known owner (an editable install) map to
    a description instead."""
    out: dict[str, set[str]] = {}
    for name in sys.stdlib_module_names:
        out.setdefault(name, set()).add("the standard library")
    for dist in metadata.distributions():
        # the metadata is parsed once here: a distribution has many files
        name = normal_name(dist.metadata["Name"] or "")
        firsts = {str(f).split("/", 1)[0] for f in dist.files or []}
        for first in firsts:
            if not first or first == ".." or first.endswith((".dist-info", ".egg-info", ".pth")):
                continue
            out.setdefault(_top(first), set()).add(name)
    for module in pkgutil.iter_modules():  # importable, no distribution lists it
        out.setdefault(module.name, {"the environment"})
    return out


def problems(wheel: Path, known: dict[str, set[str]] | None = None) -> list[str]:
    """What ``wheel`` would install beyond its own modules and metadata, one line each."""
    known = owners() if known is None else known
    dist = normal_name(wheel.name.split("-", 1)[0])
    scripts = Path(sysconfig.get_path("scripts"))
    out: list[str] = []
    try:
        names = zipfile.ZipFile(wheel).namelist()
    except (OSError, zipfile.BadZipFile) as exc:
        return [f"{wheel.name}: not a wheel ({exc})"]
    for entry in names:
        path = PurePosixPath(entry)
        parts = path.parts
        if not parts or path.is_absolute() or ".." in parts:
            out.append(f"{wheel.name}: {entry} lies outside the wheel")
            continue
        if parts[0].endswith(".dist-info"):
            continue
        if parts[0].endswith(".data"):
            kind = parts[1] if len(parts) > 2 else ""
            if kind == "scripts" and (scripts / parts[2]).exists():
                out.append(
                    f"{wheel.name}: its script {parts[2]} would replace {scripts / parts[2]}"
                )
                continue
            if kind == "scripts":
                continue
            if kind not in LIBRARY:
                out.append(f"{wheel.name}: {entry} installs outside site-packages")
                continue
            parts = parts[2:]
        out += _library_problem(wheel.name, "/".join(parts), dist, known)
    return list(dict.fromkeys(out))


def _library_problem(wheel: str, entry: str, dist: str, known: dict[str, set[str]]) -> list[str]:
    first = entry.split("/", 1)[0]
    if "/" not in entry and first.endswith(".pth"):
        return [f"{wheel}: {first} would run in every Python process of this environment"]
    top = _top(first)
    if top in STARTUP:
        return [f"{wheel}: {first} would run in every Python process of this environment"]
    others = known.get(top, set()) - {dist}
    if others:
        return [f"{wheel}: {top} exists already (from {', '.join(sorted(others))})"]
    return []


def main(argv: list[str]) -> int:
    known = owners()
    found = [line for arg in argv for line in problems(Path(arg), known)]
    for line in found:
        print(f"uisbench: refused: {line}", file=sys.stderr)
    return 1 if found or not argv else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
