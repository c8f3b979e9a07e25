"""One registry for every kind of plugin: strategies, tasks and backends.

Plugins are found only through Python entry points, built-ins included (uisbench's own
``pyproject.toml`` registers them like any other package would), so there is one way to find
anything. The entry point's name is the plugin's name: a plugin that declares another ``name``
is refused, and an unknown name gets a "did you mean" (after lm-eval's ``api/registry.py``).
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import os
import re
import sys
from collections.abc import Iterable, Iterator
from importlib import metadata
from importlib.machinery import ModuleSpec, PathFinder
from pathlib import Path
from typing import Any, Generic, TypeVar

from uisbench.errors import UisbenchError
from uisbench.files import MAX_SOURCE_BYTES, read_bounded
from uisbench.terminal import printable

#: A registered name: what a spec (``name:key=value``) and the runs table hold. It is the
#: plugin author's text (``entry_points.txt``), printed by ``list`` and in the job's lines.
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
#: A distribution's version as the board takes it: PEP 440's characters, at most 80 of them. It
#: is the plugin author's text (METADATA), stored with every run and shown on the site.
VERSION = re.compile(r"[A-Za-z0-9.+!_-]{1,80}")

T = TypeVar("T")


class Registry(Generic[T]):
    """Plugins of one kind, registered under the entry-point group ``group``.

    ``base`` is the class (or runtime-checkable protocol) every plugin must be a subclass or an
    instance of. Entry points are listed once and loaded on first use.

    Tests change what a registry holds only through :meth:`added` and :meth:`scoped`, two
    context managers that restore it on exit.
    """

    def __init__(self, group: str, kind: str, base: type | None = None) -> None:
        self.group = group
        self.kind = kind
        self.base = base
        self._eps: dict[str, metadata.EntryPoint] | None = None
        self._loaded: dict[str, T] = {}
        self._dists: dict[str, str | None] = {}
        self._kept: tuple[frozenset[str] | None, frozenset[str] | None] = (None, None)
        self._clashes: dict[str, set[str]] = {}  # a name two other distributions register

    def _entry_points(self) -> dict[str, metadata.EntryPoint]:
        """The entry points by name. Two distributions registering one name do not depend on
        the order they are found in: a shipped plugin's name stays uisbench's (the other is
        ignored with one note: it would be ranked under our name), and a name two other
        distributions claim is refused where it is used (:meth:`_entry`)."""
        if self._eps is None:
            eps: dict[str, metadata.EntryPoint] = {}
            self._clashes = {}
            for ep in metadata.entry_points(group=self.group):
                if not self._keeps(ep):
                    continue
                if not NAME.fullmatch(ep.name):
                    print(
                        f"note: {self.kind} {ep.name[:40]!r} of distribution "
                        f"{_dist_name(ep)!r} ignored: not a name (at most 100 letters, digits "
                        "and _ . -)",
                        file=sys.stderr,
                    )
                    continue
                dist = _dist_of(ep)
                if dist == "uisbench" and not _of_uisbench(ep):
                    print(
                        f"note: {self.kind} {ep.name!r} ignored: its distribution calls itself "
                        f"uisbench but it names {ep.module!r}, not uisbench's own code",
                        file=sys.stderr,
                    )
                    continue
                held = eps.get(ep.name)
                if held is None or _dist_of(held) == dist:
                    eps[ep.name] = ep
                    continue
                shipped = [e for e in (held, ep) if _dist_of(e) == "uisbench"]
                if shipped:
                    eps[ep.name] = shipped[0]
                    other = _dist_name(ep if shipped[0] is held else held) or "an unnamed one"
                    other = printable(other)  # the author's text
                    print(
                        f"note: {self.kind} {ep.name!r} of distribution {other} ignored: "
                        f"uisbench ships a {self.kind} of that name",
                        file=sys.stderr,
                    )
                else:
                    names = {_dist_name(e) or "an unnamed one" for e in (held, ep)}
                    self._clashes.setdefault(ep.name, set()).update(names)
            self._eps = eps
        return self._eps

    def _entry(self, name: str) -> metadata.EntryPoint:
        """The entry point of ``name``, or one error: unknown, or claimed by two plugins."""
        eps = self._entry_points()
        if name not in eps:
            raise UisbenchError(self._unknown(name))
        if name in self._clashes:
            dists = printable(" and ".join(sorted(self._clashes[name])))
            raise UisbenchError(
                f"{self.kind} {name!r} is registered by {dists}: uninstall one of them"
            )
        return eps[name]

    def _keeps(self, ep: metadata.EntryPoint) -> bool:
        dists, names = self._kept
        if names is not None and ep.name not in names:
            return False
        return dists is None or _dist_of(ep) in dists

    @contextlib.contextmanager
    def added(
        self, name: str, plugin: T | str, *, distribution: str | None = None
    ) -> Iterator[None]:
        """Within the block, ``name`` is registered as ``plugin`` (for a test), in place of an
        installed plugin of that name; on exit the registry is as it was.

        ``plugin`` is an object of this kind, or an entry-point value ``"module:attribute"``
        loaded on first use as an installed plugin's would be. Lookups and the name and type
        checks run as for an installed plugin; :meth:`distribution` answers ``distribution``
        (None: not a distribution's, so a strategy runs isolated like a third party's).
        """
        value = plugin if isinstance(plugin, str) else _reference(plugin)
        with self._restored():
            self._eps = {**self._entry_points(), name: metadata.EntryPoint(name, value, self.group)}
            self._clashes = {k: v for k, v in self._clashes.items() if k != name}
            self._loaded.pop(name, None)
            self._dists[name] = distribution
            if not isinstance(plugin, str):
                self._loaded[name] = self._check(name, plugin, value)
            yield

    @contextlib.contextmanager
    def scoped(
        self, distributions: Iterable[str] | None = None, names: Iterable[str] | None = None
    ) -> Iterator[Registry[T]]:
        """Within the block, the registry reads the installed entry points afresh (a
        distribution put on ``sys.path`` since is found, and a plugin's module imported again
        when it has left ``sys.modules``) and keeps only those of ``distributions`` and named in
        ``names`` (None: all); on exit it is as it was. For tests: the suite keeps uisbench's
        own plugins, and a test that wants another distribution's says so.
        """
        with self._restored():
            self._eps, self._loaded, self._dists = None, {}, {}
            kept = None if distributions is None else frozenset(map(normal_name, distributions))
            self._kept = (kept, None if names is None else frozenset(names))
            yield self

    @contextlib.contextmanager
    def _restored(self) -> Iterator[None]:
        saved = (self._eps, self._loaded, self._dists, self._kept, self._clashes)
        self._loaded, self._dists = dict(self._loaded), dict(self._dists)
        try:
            yield
        finally:
            self._eps, self._loaded, self._dists, self._kept, self._clashes = saved

    def names(self) -> list[str]:
        """Registered names, sorted; nothing is imported."""
        return sorted(self._entry_points())

    def __contains__(self, name: object) -> bool:
        return name in self._entry_points()

    def get(self, name: str) -> T:
        """The plugin registered as ``name``, loaded and checked."""
        if name not in self._loaded:
            ep = self._entry(name)
            self._loaded[name] = self._check(name, ep.load(), ep.value)
        return self._loaded[name]

    def target(self, name: str) -> str:
        """What the entry point ``name`` loads, ``module:attribute`` (nothing is imported)."""
        return re.sub(r"\s+|\[.*\]", "", self._entry(name).value)

    def code_version(self, name: str) -> str:
        """``DIST_VERSION+DIGEST`` of the plugin ``name``: the version of the distribution that
        registers its entry point and a digest of its module's source file.

        The file is located without importing the plugin (the module's spec, found by the
        import system's finders, names it), so a changed plugin is noticed before its code
        runs. A run's identity holds it: an edited plugin gets new runs.
        """
        return code_version(self._entry(name))

    def shipped(self, name: str) -> bool:
        """Is ``name`` registered by uisbench itself (code that may run in this process; any
        other strategy runs in its own)? Nothing is imported; an unknown name, or one two
        plugins claim, is one error (:meth:`distribution`)."""
        return self.distribution(name) == "uisbench"

    def distribution(self, name: str) -> str | None:
        """Name of the distribution whose entry point registers ``name`` (None if unknown);
        nothing is imported."""
        ep = self._entry(name)
        if name not in self._dists:
            self._dists[name] = _dist_name(ep)
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


def _dist_name(ep: metadata.EntryPoint) -> str | None:
    """The name of the distribution declaring ``ep`` as it spells it (None: not known)."""
    dist = getattr(ep, "dist", None)
    return None if dist is None else str(dist.metadata["Name"])


def _dist_of(ep: metadata.EntryPoint) -> str | None:
    """:func:`_dist_name`, normalised as the registry compares names."""
    name = _dist_name(ep)
    return None if name is None else normal_name(name)


def _of_uisbench(ep: metadata.EntryPoint) -> bool:
    """Does ``ep`` name code of the uisbench package? A distribution's name is its author's
    text: one calling itself uisbench would otherwise count as shipped (in-process)."""
    return ep.module == "uisbench" or ep.module.startswith("uisbench.")


def normal_name(dist: str) -> str:
    """A distribution name as its registry compares it (PEP 503: ``My_Plugin`` is ``my-plugin``)."""
    return re.sub(r"[-_.]+", "-", dist).lower()


def _reference(plugin: Any) -> str:
    """``module:qualified.name`` of a class or function (of its type for any other object)."""
    named = plugin if hasattr(plugin, "__qualname__") else type(plugin)
    return f"{named.__module__}:{named.__qualname__}"


def code_version(ep: metadata.EntryPoint) -> str:
    """The distribution version of ``ep`` and the SHA-256 (16 hex digits) of its module's source
    (``unknown`` for either when it cannot be found, e.g. a module built in); a version that is
    no version (control or bidi characters, kilobytes of text) is refused in one line."""
    dist = getattr(ep, "dist", None)
    version = str(dist.version) if dist is not None else "unknown"
    if not VERSION.fullmatch(version):
        raise UisbenchError(
            f"distribution {_dist_name(ep)}: its version {version[:40]!r}... is not a version "
            "(at most 80 letters, digits and . + ! _ -)"
        )
    return f"{version}+{source_digest(ep.module)}"


def source_digest(module: str) -> str:
    """SHA-256 (16 hex digits) of ``module``'s source file, found without executing it;
    ``unknown`` where there is no file (a module built in, or not found)."""
    return file_digest(_module_origin(module), f"module {module}")


def file_digest(origin: str | None, what: str) -> str:
    """SHA-256 (16 hex digits) of the source file ``origin`` (``unknown`` where there is none),
    read here: over :data:`~uisbench.files.MAX_SOURCE_BYTES` it is one error naming ``what``."""
    if not origin or not os.path.isfile(origin):
        return "unknown"
    try:
        data = read_bounded(Path(origin), MAX_SOURCE_BYTES)
    except UisbenchError as exc:
        raise UisbenchError(f"{what}: {exc}") from None
    return hashlib.sha256(data).hexdigest()[:16]


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
