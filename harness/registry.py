"""One registry for every kind of plugin: strategies, tasks and backends.

Plugins are found only through Python entry points, built-ins included (uisbench's own
``pyproject.toml`` registers them like any other package would), so there is one way to find
anything. The entry point's name is the plugin's name: a plugin that declares another ``name``
is refused, and an unknown name gets a "did you mean" (after lm-eval's ``api/registry.py``).
"""

from __future__ import annotations

import difflib
import hashlib
import sys
from importlib import metadata
from importlib.machinery import ModuleSpec, PathFinder
from typing import Any, Generic, TypeVar

from uisbench.errors import UisbenchError

T = TypeVar("T")


class Registry(Generic[T]):
    """Plugins of one kind, registered under the entry-point group ``group``.

    ``base`` is the class (or runtime-checkable protocol) every plugin must be a subclass or an
    instance of. Entry points are listed once and loaded on first use.
    """

    def __init__(self, group: str, kind: str, base: type | None = None) -> None:
        self.group = group
        self.kind = kind
        self.base = base
        self._eps: dict[str, metadata.EntryPoint] | None = None
        self._loaded: dict[str, T] = {}
        self._dists: dict[str, str | None] = {}

    def _entry_points(self) -> dict[str, metadata.EntryPoint]:
        if self._eps is None:
            self._eps = {ep.name: ep for ep in metadata.entry_points(group=self.group)}
        return self._eps

    def names(self) -> list[str]:
        """Registered names, sorted; nothing is imported."""
        return sorted(self._entry_points())

    def __contains__(self, name: object) -> bool:
        return name in self._entry_points()

    def get(self, name: str) -> T:
        """The plugin registered as ``name``, loaded and checked."""
        if name not in self._loaded:
            eps = self._entry_points()
            if name not in eps:
                raise UisbenchError(self._unknown(name))
            self._loaded[name] = self._check(name, eps[name].load(), eps[name].value)
        return self._loaded[name]

    def code_version(self, name: str) -> str:
        """``DIST_VERSION+DIGEST`` of the plugin ``name``: the version of the distribution that
        registers its entry point and a digest of its module's source file.

        The file is located without importing the plugin (the module's spec, found by the
        import system's finders, names it), so a changed plugin is noticed before its code
        runs. A run's identity holds it: an edited plugin gets new runs.
        """
        eps = self._entry_points()
        if name not in eps:
            raise UisbenchError(self._unknown(name))
        return code_version(eps[name])

    def distribution(self, name: str) -> str | None:
        """Name of the distribution whose entry point registers ``name`` (None if unknown);
        nothing is imported."""
        eps = self._entry_points()
        if name not in eps:
            raise UisbenchError(self._unknown(name))
        if name not in self._dists:
            dist = getattr(eps[name], "dist", None)
            self._dists[name] = None if dist is None else dist.metadata["Name"]
        return self._dists[name]

    def all(self) -> dict[str, T]:
        """Every registered plugin by name (loads them all)."""
        return {name: self.get(name) for name in self.names()}

    def _unknown(self, name: str) -> str:
        known = self.names()
        close = difflib.get_close_matches(name, known, n=1)
        hint = f"; did you mean {close[0]}?" if close else ""
        return f"unknown {self.kind} {name!r}{hint} (available: {', '.join(known) or 'none'})"

    def _check(self, name: str, obj: Any, target: str) -> T:
        base = self.base
        if base is not None:
            ok = issubclass(obj, base) if isinstance(obj, type) else isinstance(obj, base)
            if not ok:
                raise UisbenchError(
                    f"{self.kind} plugin {name!r} ({target}) is not a {base.__name__}"
                )
        declared = getattr(obj, "name", None) if isinstance(obj, type) else None
        if isinstance(declared, str) and declared != name:
            raise UisbenchError(
                f"{self.kind} plugin {target} declares the name {declared!r} but is registered "
                f"as {name!r}; the entry-point name is the plugin's name"
            )
        return obj


def code_version(ep: metadata.EntryPoint) -> str:
    """The distribution version of ``ep`` and the SHA-256 (16 hex digits) of its module's source
    (``unknown`` for either when it cannot be found, e.g. a module built in)."""
    dist = getattr(ep, "dist", None)
    version = dist.version if dist is not None else "unknown"
    return f"{version}+{source_digest(ep.module)}"


def source_digest(module: str) -> str:
    """SHA-256 (16 hex digits) of ``module``'s source file, found without executing it;
    ``unknown`` where there is no file (a module built in, or not found)."""
    origin = _module_origin(module)
    try:
        with open(origin or "", "rb") as fh:
            return hashlib.sha256(fh.read()).hexdigest()[:16]
    except OSError:
        return "unknown"


def _module_origin(module: str) -> str | None:
    """The file ``module`` is (or would be) loaded from, found without executing it: from the
    loaded module's spec, else by asking each meta-path finder for each dotted prefix in turn
    (``importlib.util.find_spec`` would import the parent packages)."""
    loaded = sys.modules.get(module)
    spec = getattr(loaded, "__spec__", None) if loaded is not None else None
    if spec is None:
        spec = find_spec_unimported(module)
    origin = getattr(spec, "origin", None)
    return origin if origin and origin not in ("built-in", "frozen") else None


def find_spec_unimported(module: str, top_path: list[str] | None = None) -> ModuleSpec | None:
    """The spec of ``module`` found by the finders without executing it or its parents
    (``importlib.util.find_spec`` would import the parent packages); with ``top_path``, the
    top-level package is looked for only on those folders (path finder alone)."""
    path: Any = top_path
    spec = None
    parts = module.split(".")
    for i in range(len(parts)):
        spec = _spec_of(".".join(parts[: i + 1]), path, top_path is not None)
        if spec is None:
            return None
        path = spec.submodule_search_locations
    return spec


def _spec_of(name: str, path: Any, path_only: bool) -> ModuleSpec | None:
    loaded = sys.modules.get(name)
    if loaded is not None and getattr(loaded, "__spec__", None) is not None:
        return loaded.__spec__
    if path_only:
        return PathFinder.find_spec(name, path)
    for finder in sys.meta_path:
        find = getattr(finder, "find_spec", None)
        spec = find(name, path) if find is not None else None
        if spec is not None:
            return spec
    return None
