"""The strategy contract: what a strategy is, how it is configured, and how plugins are found.

A strategy is a class with a ``Params`` dataclass (its configuration), an optional ``fit`` on
the training split, and ``run`` — its one abstract method — which spends compute only through
``ctx.meter`` and yields :class:`Decisions` in chunks (the runner commits each chunk, so a killed
run resumes). Plugins register under the ``uisbench.strategies`` entry-point group
(:data:`STRATEGIES`).
"""

from __future__ import annotations

import dataclasses
import math
import typing
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from uisbench.errors import UisbenchError
from uisbench.fitcache import FitCache
from uisbench.meter import MeterClient
from uisbench.registry import Registry
from uisbench.store.arrays import BankArrays


@dataclass
class Decisions:
    """Final answers for a chunk of queries: one chosen sample handle per query (-1: none)."""

    q: np.ndarray
    handle: np.ndarray
    reward: np.ndarray | None = None
    extra: list[dict[str, Any]] | None = None


@dataclass
class RunContext:
    """Everything a strategy may look at during a run.

    ``meter`` is a client of the parent's meter (:mod:`uisbench.meter`): of the test queries it
    shows positions, prompts, model metadata and samples held per query, and the content of the
    samples drawn (and paid for) through it; correctness only as feedback on committed answers.
    """

    meter: MeterClient  # the test queries, behind the meter
    stream: np.ndarray  # test query positions, in the seeded order they arrive
    train: BankArrays  # the training split, fully visible (for fitting)
    seed: int
    #: Fits shared by the runs of one runner or replay call, keyed by the training split's
    #: content (:class:`uisbench.fitcache.FitCache`); a strategy keeps no module-level cache.
    cache: FitCache = field(default_factory=FitCache)
    rng: np.random.Generator = field(init=False)

    def __post_init__(self) -> None:
        self.rng = np.random.default_rng(self.seed)

    @property
    def models(self) -> list[str]:
        return self.meter.models

    @property
    def model_meta(self) -> dict[str, dict[str, Any]]:
        return self.meter.bank.model_meta

    def max_samples(self, model: str) -> int:
        """Samples held for every test query of ``model`` (the largest k it can be asked)."""
        n = self.meter.bank.models[model].n_avail[self.stream]
        return int(n.min()) if len(n) else 0


class Strategy(ABC):
    """Base class of every strategy plugin; a subclass writes :meth:`run` and nothing else."""

    name: ClassVar[str]
    family: ClassVar[str]  # "reference" | "routing" | "tts" | "uniscale" | "t2" | "decomposed"
    description: ClassVar[str]
    upper_bound: ClassVar[bool] = False  # oracle-style strategies, drawn as bounds
    #: Reads the samples' extracted answers (votes, agreement): cannot run on a bank that
    #: recorded outcomes only (correct flags, no answers).
    needs_answers: ClassVar[bool] = False

    @dataclass
    class Params:
        pass

    def __init__(self, **params: Any) -> None:
        self.params = parse_params(self.Params, params, self.name)

    @classmethod
    def sweep(cls, models: list[str], max_k: dict[str, int]) -> list[dict[str, Any]]:
        """Settings run by ``uisbench run`` with no arguments (the default front)."""
        return [{}]

    def fit(self, train: BankArrays, ctx: RunContext) -> None:
        """Learn from the training split; the default strategy needs nothing."""
        return None

    def evaluate(self, truth: BankArrays, ctx: RunContext) -> list[dict[str, Any]] | None:
        """Evaluation-only figures, one dict per query of ``ctx.stream`` (merged into each
        decision's ``extra``), or None.

        The runner calls this after every decision is committed, with the full bank ``truth``
        (test correctness included), which ``ctx.meter`` hides from :meth:`run`: regret
        against the best fixed arm or the oracle, a fitted law's test error. Nothing computed
        here can change a decision. A strategy run in its own process (every plugin not
        shipped with uisbench) gets the truth there, and only under OS-level isolation
        (bubblewrap and seccomp); elsewhere its figures are skipped with a note.
        """
        return None

    def run_summary(self) -> dict[str, Any]:
        """What the last run learned or chose, for the run's summary (and its site page):
        e.g. UniScale's pull counts and learning curve, T2's fit and extrapolation errors."""
        return {}

    @abstractmethod
    def run(self, ctx: RunContext) -> Iterator[Decisions]:
        """Decide every query of ``ctx.stream``, drawing samples only through ``ctx.meter``."""

    def label(self) -> str:
        """Human-readable configuration, e.g. ``majority:model=x,k=8``."""
        return config_label(self.name, dataclasses.asdict(self.params))


def config_label(name: str, params: dict[str, Any]) -> str:
    body = ",".join(f"{k}={v}" for k, v in params.items())
    return f"{name}:{body}" if body else name


def _convert(value: Any, typ: Any, key: str, strategy: str) -> Any:
    if not isinstance(value, str):
        return value
    origin = typing.get_origin(typ)
    args = [a for a in typing.get_args(typ) if a is not type(None)]
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)) and args:
        if value.lower() in ("none", "null", ""):
            return None
        typ = args[0]
    try:
        if typ is bool:
            if value.lower() in ("1", "true", "yes", "on"):
                return True
            if value.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(value)
        if typ in (int, float):
            return typ(value)
        if typing.get_origin(typ) is tuple or typ is tuple:
            return tuple(v for v in value.split("+") if v)
    except ValueError:
        raise UisbenchError(
            f"strategy {strategy}: option {key}={value!r} is not a valid {typ.__name__}"
        ) from None
    return value


#: Integers a parameter may hold (numpy and database integers; ``k=10**20`` is a typo).
MAX_INT_PARAM = 2**31 - 1


def bounded(
    default: Any,
    *,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    allow_inf: bool = False,
) -> Any:
    """A Params field whose value :func:`parse_params` keeps within ``ge ≤ v``, ``gt < v``,
    ``v ≤ le`` (one line naming the bound otherwise); ``allow_inf`` admits +inf (e.g. a
    willingness to pay that weighs quality only). NaN is never admitted."""
    return field(default=default, metadata={"bounds": (ge, gt, le), "allow_inf": allow_inf})


def choice(default: str, *choices: str) -> Any:
    """A text Params field whose value :func:`parse_params` keeps among ``default`` and
    ``choices`` (one line listing them otherwise), e.g. ``unit: str = choice("auto", "flops",
    "dollars", "param_calls")``: a typo fails when the option is parsed, not at fit time."""
    allowed = (default, *(c for c in choices if c != default))
    return field(default=default, metadata={"choices": allowed})


def option_lines(cls: type[Strategy]) -> list[str]:
    """``name=default`` per option of a strategy, with its bounds and choices where it
    declares them (``uisbench list strategies -v``; a plugin's come from its own process)."""
    lines = []
    for f in dataclasses.fields(cls.Params):
        default = f.default if f.default is not dataclasses.MISSING else "(required)"
        ge, gt, le = f.metadata.get("bounds", (None, None, None))
        bounds = [b for b in (ge is not None and f">= {ge}", gt is not None and f"> {gt}") if b]
        bounds += [f"<= {le}"] if le is not None else []
        if f.metadata.get("allow_inf"):
            bounds.append("inf allowed")
        if f.metadata.get("choices"):
            bounds.append("one of " + ", ".join(f.metadata["choices"]))
        shown = "''" if default == "" else default
        lines.append(f"{f.name}={shown}" + (f" ({', '.join(bounds)})" if bounds else ""))
    return lines


def _check_value(f: dataclasses.Field, value: Any, strategy: str) -> None:
    """Every number finite and in range; declared bounds (:func:`bounded`) and choices
    (:func:`choice`) hold."""
    allowed = f.metadata.get("choices")
    if allowed is not None and value not in allowed:
        raise UisbenchError(
            f"strategy {strategy}: option {f.name}={value!r} must be one of {', '.join(allowed)}"
        )
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return
    bad = None
    if isinstance(value, float) and not math.isfinite(value):
        if not (value == math.inf and f.metadata.get("allow_inf")):
            bad = "a finite number"
    elif isinstance(value, int) and abs(value) > MAX_INT_PARAM:
        bad = f"at most {MAX_INT_PARAM} in size"
    ge, gt, le = f.metadata.get("bounds", (None, None, None))
    if bad is None and ge is not None and value < ge:
        bad = f">= {ge}"
    if bad is None and gt is not None and value <= gt:
        bad = f"> {gt}"
    if bad is None and le is not None and value > le:
        bad = f"<= {le}"
    if bad:
        raise UisbenchError(f"strategy {strategy}: option {f.name}={value!r} must be {bad}")


def parse_params(params_cls: type, given: dict[str, Any], strategy: str) -> Any:
    """Build the Params dataclass from ``key=value`` strings; unknown keys are an error."""
    hints = typing.get_type_hints(params_cls)
    names = [f.name for f in dataclasses.fields(params_cls)]
    unknown = [k for k in given if k not in names]
    if unknown:
        known = ", ".join(names) or "none"
        raise UisbenchError(
            f"strategy {strategy}: unknown option(s) {', '.join(unknown)} (options: {known})"
        )
    values = {k: _convert(v, hints[k], k, strategy) for k, v in given.items()}
    try:
        obj = params_cls(**values)
    except (TypeError, ValueError) as exc:
        raise UisbenchError(f"strategy {strategy}: {exc}") from None
    for f in dataclasses.fields(obj):
        _check_value(f, getattr(obj, f.name), strategy)
    check = getattr(obj, "validate", None)
    if check:
        check()
    return obj


def parse_spec(spec: str) -> tuple[str, dict[str, str]]:
    """``name:key=value,key=value`` → (name, {key: value}).

    A strategy not registered as a plugin is named by a *reference* instead of a name:
    ``path/to/file.py:Class`` or ``module.path:Class``, its options after a second colon
    (``file.py:Class:k=4,unit=flops``). The part before the first colon is a file when it ends
    in ``.py``; otherwise it is a module when what follows the first colon is a bare identifier
    (no ``=``) and the part before is not a registered strategy's name. A path holding a colon
    cannot be given. The reference (``FILE.py:Class`` or ``module:Class``) is returned as the
    name; :func:`is_reference` tells the two apart.
    """
    parts = spec.split(":")
    head = parts[0].strip()
    second = parts[1].strip() if len(parts) > 1 else ""
    module_like = all(p.isidentifier() for p in head.split("."))
    if head.endswith(".py") or (second.isidentifier() and module_like and head not in STRATEGIES):
        if not second.isidentifier():
            raise UisbenchError(
                f"bad strategy reference {spec!r} (expected FILE.py:Class[:key=value,...])"
            )
        name, rest = f"{head}:{second}", ":".join(parts[2:])
    else:
        name, _, rest = spec.partition(":")
    params: dict[str, str] = {}
    for part in filter(None, rest.split(",")):
        key, eq, value = part.partition("=")
        if not eq or not key.strip():
            raise UisbenchError(f"bad strategy option {part!r} in {spec!r} (expected key=value)")
        params[key.strip()] = value.strip()
    return name.strip(), params


def is_reference(name: str) -> bool:
    """Is ``name`` a reference to an unregistered class (``FILE.py:Class``, ``module:Class``)?"""
    return ":" in name


STRATEGIES: Registry[type[Strategy]] = Registry("uisbench.strategies", "strategy", Strategy)


def make_strategy(spec: str | Strategy) -> Strategy:
    """``name:key=value,...`` → a configured strategy (unknown names and options refused).

    A strategy already configured is returned as is, so callers take either.
    """
    if isinstance(spec, Strategy):
        return spec
    name, params = parse_spec(spec)
    return STRATEGIES.get(name)(**params)
