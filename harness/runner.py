"""Running a strategy over a task: one decision row per test query, resumable.

A run is identified by a hash of everything that defines it (task, bank, models, strategy, its
code version and full configuration, seed, split seed, mode, prefix-cache assumption).
Strategies are deterministic given the seed, so resuming a killed run replays the strategy from
the start and writes only the decisions not yet committed; decision rows are unique per (run,
query), so nothing is lost or written twice.

Where a strategy runs (:meth:`Runner.run`, ``isolation``): strategies shipped with uisbench run
in-process through the same meter client as every other; any other strategy runs in a child
process forked per run from a template (:mod:`uisbench.isolation`) that never holds the test
truth, and the parent alone grades, charges and writes rows. ``process`` isolates every
strategy, ``inprocess`` none (a local debugging aid; ``gate`` never takes it).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import itertools
import json
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import Engine

from uisbench.blind import blind_view
from uisbench.costs import PrefixCache
from uisbench.errors import UisbenchError
from uisbench.fitcache import FitCache
from uisbench.isolation import DEFAULT_TIMEOUT_S, Described, ForkServer
from uisbench.meter import Meter, MeterService
from uisbench.provenance import command_line, git_commit, host, uisbench_version
from uisbench.registry import source_digest
from uisbench.run_loop import (
    arrival_order,
    decide,
    evaluation,
    figures_by_position,
    meter_for,
    start,
)
from uisbench.store import runs
from uisbench.store.arrays import BankArrays
from uisbench.store.bankfile import check_text
from uisbench.store.loading import CACHE_SUFFIX, load_arrays
from uisbench.store.runs import RunRows
from uisbench.store.splits import assign_splits
from uisbench.strategies.base import (
    STRATEGIES,
    Decisions,
    Strategy,
    config_label,
    is_reference,
    parse_spec,
)
from uisbench.strategies.references import Reference
from uisbench.strategies.references import resolve as resolve_reference

ISOLATION = ("auto", "process", "inprocess")
#: A run's decision rows are committed at most this often (and with its close): a killed run
#: loses at most about this much of its work, which its resume replays.
FLUSH_S = 1.0
#: What a strategy stores beside its decisions, as JSON text: shown on the board (run pages,
#: regret curves), and from a plugin untrusted, so bounded like everything read from it.
MAX_SUMMARY_BYTES = 64 << 10  # a run's summary (``run_summary()``)
MAX_EXTRA_BYTES = 4 << 10  # one decision's ``extra``, and its evaluation figures apart
MAX_PARAMS_BYTES = 4 << 10  # a configuration's options (stored with each of its runs)
#: Settings of one strategy's default sweep (the default job runs each with every seed; the
#: largest shipped sweep has 48 on six models). More are named with ``--strategy``.
MAX_SWEEP = 512
#: A strategy as the runner takes it: a spec ``name:key=value``, (name, params), or an object.
StrategyRef = Strategy | str | tuple[str, dict[str, Any]]


@dataclass
class RunResult:
    run_id: int
    label: str
    n_queries: int
    accuracy: float
    resumed: bool
    skipped: bool  # already complete before this call


def run_key(definition: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(definition, sort_keys=True).encode()).hexdigest()


def strategy_code_version(strat: Strategy) -> str:
    """The registered plugin's distribution version and source digest
    (:meth:`uisbench.registry.Registry.code_version`); for a strategy used without registering
    it, the digest of its class's module."""
    if strat.name in STRATEGIES:
        return STRATEGIES.code_version(strat.name)
    return "unregistered+" + source_digest(type(strat).__module__)


def _check_queries(q: list[int], position: dict[int, int], seen: set[int]) -> None:
    """Each decided query is a test query decided once; marks them ``seen``."""
    for p in q:
        if p not in position:
            raise UisbenchError("strategy decided a query that is not in the test stream")
        if p in seen:
            raise UisbenchError("strategy decided the same query twice")
        seen.add(p)


def bounded_json(value: Any, limit: int, what: str) -> str:
    """``json.dumps(value)``, refused in one line when longer than ``limit`` (ASCII: bytes)."""
    text = json.dumps(value)
    if len(text) > limit:
        raise UisbenchError(f"{what} is {len(text):,} bytes of JSON (at most {limit:,})")
    return text


def check_stored(summary: dict[str, Any], figures: dict[int, dict]) -> None:
    """A run's summary and its evaluation figures (per decision) within their bounds."""
    bounded_json(summary, MAX_SUMMARY_BYTES, "its run summary")
    for f in figures.values():
        bounded_json(f, MAX_EXTRA_BYTES, "its evaluation figures for one decision")


def _floats(x: np.ndarray) -> list[float | None]:
    x = np.asarray(x, dtype=float)
    return np.where(np.isnan(x), None, x).tolist()


def _ints(x: np.ndarray) -> list[int | None]:
    """Integers, None where unknown (a bank that recorded no token counts)."""
    x = np.asarray(x, dtype=float)
    finite = np.isfinite(x)
    if finite.all():
        return x.astype(np.int64).tolist()  # truncated toward zero, as int() does
    known = finite.tolist()
    return [int(v) if k else None for v, k in zip(np.nan_to_num(x).tolist(), known)]


def _extra_json(extra: dict[str, Any] | None) -> str:
    return bounded_json(extra, MAX_EXTRA_BYTES, "a decision's extra")


def database_files(engine: Engine) -> list[str]:
    """A SQLite database's files (the file, its WAL, shared memory and journal) and the folder
    of columnar copies of its samples beside it: what a strategy's sandbox must not read."""
    db = engine.url.database if engine.url.get_backend_name() == "sqlite" else None
    if not db:
        return []
    return [db, db + "-wal", db + "-shm", db + "-journal", db + CACHE_SUFFIX]


def _registered(strategy: Strategy) -> bool:
    """Is this object's class the plugin registered under its name (rebuildable elsewhere)?"""
    name = getattr(strategy, "name", None)
    return name in STRATEGIES and STRATEGIES.get(name) is type(strategy)


def _registered_as(name: str, ref: str) -> bool:
    """Is ``ref`` (``module:Class``) the very class registered as ``name``?"""
    try:
        return STRATEGIES.target(name) == ref.strip()
    except UisbenchError:  # a name two distributions claim
        return False


def _own_row(strat: Strategy | Described, asked: str, registered: str | None):
    """``strat``, if its runs can only land in its own row of the board (one row per
    configuration label): its label begins with its name, which is the registered name asked
    for or, for a class named by reference, no registered strategy's (unless the reference
    is that strategy's own class, as :func:`uisbench.testing.check_strategy` names it). Else
    one error: a plugin's runs would be averaged with another configuration's."""
    name, label = strat.name, strat.label()
    if registered is not None and name != registered:
        raise UisbenchError(f"strategy {asked}: it describes itself as {name!r}")
    if registered is None and name in STRATEGIES and not _registered_as(name, asked):
        raise UisbenchError(
            f"strategy {asked}: declares the name {name!r} of a registered strategy; a class "
            "named by reference needs a name of its own"
        )
    if label != name and not label.startswith(name + ":"):
        raise UisbenchError(
            f"strategy {asked}: its label {label!r} does not begin with its name {name!r} "
            "(the board keeps one row per label)"
        )
    return strat


class Runner:
    """Runs strategies on one (task, bank, models) working set, loaded once."""

    def __init__(
        self,
        engine: Engine,
        task: str,
        bank: str,
        models: Sequence[str] | None = None,
        split_seed: int = 0,
        prefix_cache: str | None = None,
        isolation: str = "auto",
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        if isolation not in ISOLATION:
            raise UisbenchError(
                f"unknown isolation {isolation!r} (choose one of: {', '.join(ISOLATION)})"
            )
        self.isolation = isolation
        self.timeout_s = timeout_s
        self._server: ForkServer | None = None
        self._refs: dict[str, Reference] = {}  # strategies named by reference, resolved
        self.engine = engine
        self.task = task
        self.prefix_cache = PrefixCache.parse(prefix_cache)
        with engine.begin() as conn:
            self.arrays: BankArrays = load_arrays(conn, bank, task, models)
        self.task_id = runs.task_id(engine, task)
        self.split_seed = split_seed
        self.split = assign_splits(task, self.arrays, split_seed)
        self.models = list(self.arrays.models)
        self.train_pos = np.flatnonzero(self.split == "train")
        self.test_pos = np.flatnonzero(self.split == "test")
        if len(self.test_pos) == 0:
            raise UisbenchError(f"task {task!r} has no test queries in bank {bank!r}")
        self.train = self.arrays.subset(self.train_pos)
        self.answers_known = any((m.answer >= 0).any() for m in self.arrays.models.values())
        self.cache = FitCache()  # fits shared by this runner's runs (a sweep fits once)
        self.hidden = database_files(engine)  # covered in a strategy's sandbox
        self._code_versions: dict[str, str] = {}  # strategy name -> code version, read once
        self._made_by: dict[str, Any] | None = None  # the runs' provenance (same for every run)
        self._complete: dict[str, int] = {}  # run key -> id (remember_complete_runs)
        self._accuracy: dict[int, float] = {}  # run id -> accuracy of those complete runs

    # ---------------------------------------------------------------- where strategies run
    def isolated(self, strategy: StrategyRef) -> bool:
        """Does ``strategy`` run in a child process? Shipped strategies (registered by the
        uisbench distribution) run in-process unless ``process``; every other one is isolated
        unless ``inprocess``. A Strategy object not registered under its name cannot be rebuilt
        in a child: under ``auto`` it runs in-process (its code already runs in the caller).
        A strategy named by reference (``FILE.py:Class``, ``module:Class``) is always isolated:
        this process never imports it."""
        if not isinstance(strategy, Strategy):
            name = strategy[0] if isinstance(strategy, tuple) else parse_spec(strategy)[0]
            if is_reference(name):
                return True
        if self.isolation != "auto":
            return self.isolation == "process"
        if isinstance(strategy, Strategy):
            return not type(strategy).__module__.startswith("uisbench.") and _registered(strategy)
        name = strategy[0] if isinstance(strategy, tuple) else parse_spec(strategy)[0]
        return not STRATEGIES.shipped(name)

    def _fork_server(self) -> ForkServer:
        if self._server is None:
            view = blind_view(self.arrays)
            self._server = ForkServer(self.train, view, self.hidden, self.timeout_s)
        return self._server

    def close(self) -> None:
        """Stop the strategies' template process, if one was started."""
        if self._server is not None:
            self._server.close()

    def describe(self, strategy: StrategyRef) -> Strategy | Described:
        """The configured strategy: built here when it runs in-process, else described by its
        own process (the parent never imports an isolated plugin's module)."""
        if isinstance(strategy, Strategy):
            if self.isolated(strategy):
                name, params = strategy.name, dataclasses.asdict(strategy.params)
                if not _registered(strategy):
                    raise UisbenchError(
                        f"strategy {name}: only a registered strategy can run in its own process"
                    )
                return self._fork_server().describe(name, params)
            return strategy
        name, params = strategy if isinstance(strategy, tuple) else parse_spec(strategy)
        if is_reference(name):
            ref = resolve_reference(name)
            self._refs[ref.ref] = ref
            server = self._fork_server()
            server.use(ref)
            return _own_row(server.describe(ref.ref, dict(params)), ref.ref, None)
        if self.isolated((name, params)):
            STRATEGIES.distribution(name)  # an unknown name: one line, nothing started
            return _own_row(self._fork_server().describe(name, dict(params)), name, name)
        return _own_row(STRATEGIES.get(name)(**params), name, name)

    def default_specs(self, name: str) -> tuple[list[str], str | None]:
        """The default sweep of strategy ``name`` on this working set as specs, or why it
        cannot run here."""
        if self.isolated((name, {})):
            settings, needs = self._fork_server().sweep(name, self.models, self.max_k())
            why = self._cannot(name, needs)
        else:
            cls = STRATEGIES.get(name)
            why = self.cannot_run(cls)
            settings = [] if why else cls.sweep(self.models, self.max_k())
        if len(settings) > MAX_SWEEP:
            raise UisbenchError(
                f"strategy {name}: its default sweep has {len(settings):,} settings (at most "
                f"{MAX_SWEEP}; name the ones to run with --strategy)"
            )
        return ([] if why else [config_label(name, p) for p in settings]), why

    def _cannot(self, name: str, needs_answers: bool) -> str | None:
        if needs_answers and not self.answers_known:
            return (
                f"{name} needs the samples' answers (votes) and bank {self.arrays.bank!r} "
                "recorded outcomes only"
            )
        return None

    def cannot_run(self, strat: type[Strategy] | Strategy | Described) -> str | None:
        """Why this working set cannot run ``strat`` (one line), or None."""
        return self._cannot(strat.name, strat.needs_answers)

    def max_k(self) -> dict[str, int]:
        return {m: int(a.n_avail[self.test_pos].min()) for m, a in self.arrays.models.items()}

    def definition(self, strat: Strategy, seed: int) -> dict[str, Any]:
        """Everything that defines a run; its hash is the run's key."""
        return {
            "task": self.task,
            "bank": self.arrays.bank,
            "models": self.models,
            "strategy": strat.name,
            "code": self._code_version(strat),  # an edited plugin: new runs
            "params": dataclasses.asdict(strat.params),
            "seed": seed,
            "split_seed": self.split_seed,
            "mode": "replay",  # no other mode is left; kept so that stored runs keep their key
            "prefix_cache": str(self.prefix_cache),
            "bank_digest": self.arrays.digest,  # a bank grown under the same name: new runs
        }

    def _code_version(self, strat: Strategy | Described) -> str:
        """:func:`strategy_code_version`, or for a strategy named by reference the digest of
        the file that runs (``file+``) or of the module's source (``module+``)."""
        source = getattr(strat, "source", "")
        if is_reference(source):
            return self._refs[source].code_version
        if strat.name not in self._code_versions:  # a file read and hashed: once per runner
            self._code_versions[strat.name] = strategy_code_version(strat)
        return self._code_versions[strat.name]

    def _reference(self, strat: Strategy | Described) -> dict[str, str]:
        """Where a strategy named by reference came from, for the run's summary."""
        source = getattr(strat, "source", "")
        return {"reference": source} if is_reference(source) else {}

    def run(
        self,
        strategy: StrategyRef,
        seed: int = 0,
        *,
        force: bool = False,
        progress: Callable[[int, int], None] | None = None,
        command: str | None = None,
    ) -> RunResult:
        """Run (or resume, or skip if complete) one strategy configuration with one seed.

        A strategy that fails, or whose process crashes, hangs or breaks the protocol, ends
        with one error; an isolated run that failed leaves no row behind.
        """
        strat = self.describe(strategy)
        why = self.cannot_run(strat)
        if why:
            raise UisbenchError(f"cannot run {strat.label()}: {why}")
        check_text("config label", strat.label(), "cannot run it: its ")  # PostgreSQL's rule
        params = dataclasses.asdict(strat.params)
        stored = self.open_run(strat, params, seed, force, command)
        if stored.complete:
            return self.complete_result(stored, strat)
        isolated = isinstance(strat, Described)
        try:
            if isolated:
                meter, summary, figures, last = self._run_isolated(
                    stored, strat, params, seed, progress
                )
            else:
                ctx, meter = start(
                    strat, self.arrays, self.train, self.test_pos, seed, self.prefix_cache
                )
                ctx.cache = self.cache  # fits shared by this runner's runs
                chunks = decide(strat, ctx, meter)
                last = self._write_decisions(stored, chunks, meter, ctx.stream, progress)
                figures = evaluation(strat, ctx, self.arrays)
                summary = strat.run_summary()
            check_stored(summary, figures)
        except UisbenchError as exc:
            raise self.failed(stored, strat, str(exc)) from None
        except BaseException:
            # a crash or Ctrl-C before any decision was written leaves no `running` row; one
            # with decisions stays, to be resumed
            stored.drop_if_empty()
            raise
        resumed = bool(stored.decided)
        return self.close_run(stored, strat, meter.used_oracle, resumed, summary, figures, last)

    @staticmethod
    def failed(stored: RunRows, strat: Strategy | Described, why: str) -> UisbenchError:
        """The one error of a run that failed, named by its label, after removing what it left:
        an isolated run goes whole (nothing half-written), any other only if it decided nothing
        (a configuration that cannot run leaves no trace)."""
        if isinstance(strat, Described):
            stored.discard()
        else:
            stored.drop_if_empty()
        return UisbenchError(f"strategy {strat.label()}: {why}")

    def _run_isolated(
        self,
        stored: RunRows | None,
        strat: Described,
        params: dict,
        seed: int,
        progress: Callable[[int, int], None] | None,
    ) -> tuple[Meter, dict[str, Any], dict[int, dict], list[tuple]]:
        """One run in a child process: the parent serves its meter calls, commits each chunk
        and writes its rows; returns the meter, the strategy's summary, its evaluation
        figures and the rows not yet written."""
        meter = meter_for(strat.label(), self.arrays, seed, self.prefix_cache)
        stream = arrival_order(self.test_pos, seed)
        outcome: dict[str, Any] = {}
        served = self._fork_server().run(
            strat.source or strat.name,
            params,
            seed,
            stream,
            MeterService(meter),
            self.arrays,
            outcome,
        )

        def chunks():  # each committed to the meter by the server, before the child resumes
            for q, handle, reward, extra in served:
                yield Decisions(q, handle, reward, extra)

        last = self._write_decisions(stored, chunks(), meter, stream, progress)
        for _ in served:  # the child's end: summary and evaluation figures
            raise UisbenchError("decisions came after the last one")
        if outcome.get("note"):
            print(f"note: {strat.label()}: {outcome['note']}", file=sys.stderr)
        figures = outcome.get("figures")
        if figures is not None:
            figures = figures_by_position(strat.label(), figures, stream)
        return meter, outcome.get("summary") or {}, figures or {}, last

    def _write_decisions(
        self,
        stored: RunRows,
        chunks: Iterator[Decisions],
        meter: Meter,
        stream: np.ndarray,
        progress: Callable[[int, int], None] | None,
    ) -> list[tuple]:
        """Turn each committed chunk into rows of the decisions not yet written, and commit
        them at most every :data:`FLUSH_S` seconds; returns the rows left for the close."""
        n_test = len(self.test_pos)
        position = {int(q): i for i, q in enumerate(stream.tolist())}
        seen: set[int] = set()
        written, rows = len(stored.decided), []
        if progress:
            progress(written, n_test)
        flushed = time.monotonic()
        for chunk in chunks:
            rows += self._decision_rows(chunk, meter, position, seen, stored.decided)
            if rows and time.monotonic() - flushed >= FLUSH_S:
                stored.write(rows)
                written, rows, flushed = written + len(rows), [], time.monotonic()
            if progress:
                progress(written + len(rows), n_test)
        if len(seen) < n_test:
            raise UisbenchError(
                f"decided {len(seen)} of {n_test} queries; {n_test - len(seen)} have no decision"
            )
        return rows

    # ---------------------------------------------------------------- the run's rows
    def open_run(
        self,
        strat: Strategy | Described,
        params: dict,
        seed: int,
        force: bool = False,
        command: str | None = None,
    ) -> RunRows:
        """The run of ``strat`` with ``seed``: as stored, with the query ids already decided,
        or new (with ``force``, anew; stored with its first decisions). Options of over
        :data:`MAX_PARAMS_BYTES` are refused (they are stored with every run)."""
        key = self._key(strat, params, seed)
        if key in self._complete and not force:
            return runs.complete_run(self.engine, key, self._complete[key])
        new_row = lambda: self._run_row(key, strat, params, seed, command)  # noqa: E731
        return runs.open_run(self.engine, key, new_row, force=force)

    def open_runs(self, wanted: Sequence[tuple[Strategy | Described, dict, int]]) -> list[RunRows]:
        """:meth:`open_run` of each (strategy, params, seed), all at once: the stored state
        read in one go, and the new runs' rows written together, in order (their ids follow
        it), before any decision (a worker replays them meanwhile)."""
        keys, todo = [], []
        for strat, params, seed in wanted:
            key = self._key(strat, params, seed)
            keys.append(key)
            if key not in self._complete:
                new_row = functools.partial(self._run_row, key, strat, params, seed, None)
                todo.append((key, new_row))
        opened = iter(runs.open_runs(self.engine, todo))
        return [
            runs.complete_run(self.engine, key, self._complete[key])
            if key in self._complete
            else next(opened)
            for key in keys
        ]

    def _key(self, strat: Strategy | Described, params: dict, seed: int) -> str:
        """The run's key; options of over :data:`MAX_PARAMS_BYTES` are refused (they are
        stored with every run)."""
        bounded_json(params, MAX_PARAMS_BYTES, f"strategy {strat.label()}: its options")
        return run_key(self.definition(strat, seed))

    def remember_complete_runs(self) -> None:
        """Read which runs of this working set are complete, with their accuracy, in one go:
        :meth:`open_run` then skips those without a query each (a job's resume checks)."""
        found = runs.complete_runs(self.engine, self.task_id, self.arrays.bank_id)
        self._complete = {key: run_id for key, (run_id, _) in found.items()}
        self._accuracy = dict(found.values())

    def complete_result(self, opened: RunRows, strat: Strategy | Described) -> RunResult:
        """The result of a run that was complete before this call."""
        accuracy = self._accuracy.get(opened.id)
        if accuracy is None:
            accuracy = runs.accuracy(self.engine, opened.id)
        return RunResult(opened.id, strat.label(), len(self.test_pos), accuracy, False, True)

    def _run_row(
        self, key: str, strat: Strategy | Described, params: dict, seed: int, command: str | None
    ) -> dict[str, Any]:
        """The ``runs`` row of a new run, with its provenance (version, commit, command, host)."""
        return {
            "run_key": key,
            "task_id": self.task_id,
            "bank_id": self.arrays.bank_id,
            "strategy": strat.name,
            "params": params,
            "config_label": strat.label(),
            "seed": seed,
            "models": self.models,
            "split_seed": self.split_seed,
            "n_queries": len(self.test_pos),
            "prefix_cache": str(self.prefix_cache),
            "bank_digest": self.arrays.digest,
            **self._provenance(),
            **({"command": command} if command else {}),
            "started_at": runs.now(),
            "status": "running",
        }

    def _provenance(self) -> dict[str, Any]:
        """Version, commit, command line and host: read once, the same for all its runs."""
        if self._made_by is None:
            self._made_by = {
                "uisbench_version": uisbench_version(),
                "git_commit": git_commit(),
                "command": command_line(),
                "host": host(),
            }
        return self._made_by

    def _decision_rows(
        self,
        chunk: Decisions,
        meter: Meter,
        position: dict[int, int],
        seen: set[int],
        done: frozenset[int],
    ) -> list[tuple]:
        """Rows (:data:`uisbench.store.runs.DECISION_COLUMNS`) of the chunk's queries not yet
        written (:class:`~uisbench.store.runs.RunRows` writes the run's id with them).

        Built column-wise (numpy, then one ``zip``) and JSON-encoded here: per-row dicts and
        SQLAlchemy's per-row parameter processing cost more than the insert itself.
        """
        q = np.asarray(chunk.q, dtype=np.int64)
        if len(q) != len(chunk.handle):
            raise UisbenchError("strategy returned decisions of mismatched lengths")
        answer, correct = meter.resolve(chunk.handle)
        q_list = q.tolist()
        _check_queries(q_list, position, seen)
        if not q_list:
            return []
        ledger = meter.ledger
        cols = zip(
            self.arrays.query_ids[q].tolist(),
            [position[p] for p in q_list],
            ledger.arms.json(q),
            ledger.samples[q].tolist(),
            meter.answer_text(answer),
            correct.astype(bool).tolist(),
            _ints(ledger.input_tokens[q]),
            _ints(ledger.output_tokens[q]),
            _floats(ledger.flops[q]),
            _floats(ledger.dollars[q]),
            _floats(ledger.latency_s[q]),
            _floats(ledger.param_calls[q]),
            [None] * len(q) if chunk.reward is None else _floats(chunk.reward),
            itertools.repeat("null") if chunk.extra is None else map(_extra_json, chunk.extra),
        )
        return [row for row in cols if row[0] not in done]

    def close_run(
        self,
        stored: RunRows,
        strat: Strategy | Described,
        used_oracle: bool,
        resumed: bool,
        learned: dict[str, Any],
        figures: dict[int, dict],
        last: list[tuple],
    ) -> RunResult:
        """Complete the run in one transaction: its ``last`` decision rows, its evaluation
        figures (by position) into its decisions, its summary (what the strategy ``learned``,
        where it came from) and status."""
        summary = {
            "upper_bound": bool(strat.upper_bound or used_oracle),
            "family": strat.family,
            "synthetic_bank": self.arrays.synthetic,
        }
        if learned:
            summary["strategy"] = learned
        summary["code"] = self._code_version(strat)  # the board keeps versions apart
        summary.update(self._reference(strat))  # where an unregistered strategy came from
        by_query = {int(self.arrays.query_ids[p]): f for p, f in figures.items()}
        acc = stored.close(last, summary, by_query)
        return RunResult(stored.id, strat.label(), len(self.test_pos), acc, resumed, False)
