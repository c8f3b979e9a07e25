"""Strategies named by reference, not registered: ``path/to/file.py:Class`` and ``module:Class``.

``uisbench run --strategy my_router.py:MyRouter`` tries a strategy without packaging it. Like
every strategy not shipped with uisbench it runs in its own process (:mod:`uisbench.isolation`):
the parent never imports it. Here the parent reads what it needs without executing anything
(a file's bytes; a module's location, found by the import system's finders), and the strategy's
process loads the class (:func:`load_class`).

- A **file** is read once by the parent and its text sent to the strategy's process, which
  executes exactly that text: the code version in the run's key is the digest of the code that
  ran (``file+SHA256[:16]``). It may import installed packages, not its sibling files.
- A **module** is imported by the strategy's process from the folder that holds its top-level
  package (bound read-only there): the installed environment, or the current directory. Its
  code version is the digest of the module's own source file (``module+SHA256[:16]``): an edit
  to another module of its package is not seen.
"""

from __future__ import annotations

import hashlib
import os
import sys
import types
from dataclasses import dataclass
from pathlib import Path

from uisbench.errors import UisbenchError
from uisbench.files import MAX_SOURCE_BYTES, read_bounded
from uisbench.registry import file_digest, find_spec_unimported


@dataclass(frozen=True)
class Reference:
    """A resolved reference: ``ref`` is canonical (a file's absolute real path)."""

    ref: str
    kind: str  # "file" | "module"
    target: str  # the file's path or the module's dotted name
    cls: str
    source: bytes | None  # a file's text (sent to the strategy's process)
    root: str | None  # a module's import root (added to the strategy's process's path)
    code_version: str
    #: what of the root is bound into the strategy's sandbox: its top-level package folder,
    #: or the module's file (never the whole root: the current directory may hold a bank)
    top: str | None = None


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def resolve(ref: str) -> Reference:
    """Check ``ref`` (``FILE.py:Class`` or ``module:Class``) and read what the parent needs,
    executing none of its code; one line when the file or module cannot be found."""
    target, _, cls = ref.rpartition(":")
    if not target or not cls.isidentifier():
        raise UisbenchError(f"bad strategy reference {ref!r} (expected FILE.py:Class)")
    if target.endswith(".py"):
        path = os.path.realpath(target)
        try:
            data = read_bounded(Path(path), MAX_SOURCE_BYTES)
        except UisbenchError as exc:
            raise UisbenchError(f"strategy file {exc}") from None
        return Reference(f"{path}:{cls}", "file", path, cls, data, None, "file+" + _digest(data))
    origin, root = _locate(target)
    if origin is None or root is None:
        raise UisbenchError(
            f"strategy reference {ref}: no module {target!r} in this environment or the "
            "current directory (a NAME:OPTIONS spec takes key=value options)"
        )
    version = "module+" + file_digest(origin, f"strategy module {target}")
    first = Path(root) / target.split(".")[0]
    top = str(first) if first.is_dir() else str(first.with_suffix(".py"))
    return Reference(ref, "module", target, cls, None, root, version, os.path.realpath(top))


def _locate(module: str) -> tuple[str | None, str | None]:
    """(source file, import root) of ``module``, found by the finders without executing it
    (``importlib.util.find_spec`` would import its parent packages); the current directory is
    searched last, as ``python -m`` would."""
    parts = module.split(".")
    for extra in (None, [os.getcwd()]):
        spec = find_spec_unimported(module, extra)
        origin = getattr(spec, "origin", None)
        if spec is not None and origin and origin not in ("built-in", "frozen"):
            p = Path(origin)
            if p.name.startswith("__init__."):
                p = p.parent
            return origin, str(p.parents[len(parts) - 1])
    return None, None


# ------------------------------------------------------------------ the strategy's process
_LOADED: dict[str, type] = {}


def load_class(ref: str, source: bytes | None = None) -> type:
    """The class ``ref`` names, loaded once per process: a file from ``source`` (its text as
    the parent read it), a module by import. It must be a :class:`Strategy` that declares its
    own ``name``, ``family`` and ``description``."""
    if ref in _LOADED:
        return _LOADED[ref]
    from uisbench.strategies.base import Strategy

    target, _, cls_name = ref.rpartition(":")
    if target.endswith(".py"):
        if source is None:
            raise UisbenchError(f"strategy file {target}: its text was not sent")
        mod_name = "uisbench_file_" + hashlib.sha256(target.encode()).hexdigest()[:12]
        module = types.ModuleType(mod_name)
        module.__file__ = target
        sys.modules[mod_name] = module  # dataclasses resolve annotations through it
        exec(compile(source, target, "exec"), module.__dict__)
    else:
        import importlib

        module = importlib.import_module(target)
    cls = getattr(module, cls_name, None)
    if not (isinstance(cls, type) and issubclass(cls, Strategy)):
        raise UisbenchError(f"strategy reference {ref}: {cls_name} is not a Strategy subclass")
    for attr in ("name", "family", "description"):
        if not isinstance(getattr(cls, attr, None), str):
            raise UisbenchError(f"strategy reference {ref}: {cls_name} declares no {attr}")
    _LOADED[ref] = cls
    return cls
