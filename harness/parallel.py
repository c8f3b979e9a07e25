"""Runs on many cores (``uisbench run --jobs N``) or a Ray cluster (``--executor ray``).

The parent keeps what it does in a single-process run: it opens each run (its key, resume
state, provenance), and it alone writes rows, each run's decisions in one transaction once its
worker has replayed it, then closes the run. A worker holds the working sets (bank arrays with
their truth, splits, prefix-cache rule; never the database) and replays one (configuration,
seed) at a time with the same code as :meth:`Runner.run`: a shipped strategy in the worker
itself, any other in a child forked from the worker's own template (:mod:`uisbench.isolation`).
It returns the decision rows, evaluation figures and summary, which are therefore the same
bytes a single-process run writes.

Work goes out in *batches*: consecutive runs of one strategy on one working set (its settings
× seeds, :func:`batches`), replayed by one worker in turn. A sweep's settings share their fits
(``ctx.cache``, one per worker); sent run by run, every worker fitted every strategy again
(the default job's workers spent 8.6 s of CPU where one process spends 6.4 s).

Local workers are forked from the parent after the banks are loaded, so they share its arrays
copy-on-write; Ray actors get every working set once through the object store (``ray.put``).
A killed job resumes as before: a run whose rows were written is complete or is closed on the
next call; any other is replayed again.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import multiprocessing
import multiprocessing.util
import os
import signal
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

from threadpoolctl import threadpool_limits

from uisbench.errors import UisbenchError
from uisbench.fitcache import FitCache
from uisbench.isolation import Described
from uisbench.run_loop import decide, evaluation, start
from uisbench.runner import Runner, RunResult, StrategyRef, check_stored
from uisbench.store.bankfile import check_text
from uisbench.store.runs import RunRows
from uisbench.strategies.base import Strategy, parse_spec

EXECUTORS = ("local", "ray")


def default_jobs() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


@dataclass
class Outcome:
    """What a worker sends back for one run: its decision rows, or the error's one line."""

    rows: list[tuple] | None = None
    figures: dict[int, dict] | None = None
    summary: dict[str, Any] | None = None
    used_oracle: bool = False
    error: str | None = None


class Replayer(Runner):
    """A :class:`Runner`'s working set without its database: replays a run into rows."""

    def __init__(self, runner: Runner) -> None:  # noqa: D107 -- a copy, no bank loaded
        state = {k: v for k, v in vars(runner).items() if k not in ("engine", "_server")}
        self.__dict__.update(state)
        self._server = None
        self.engine = None

    def __getstate__(self) -> dict[str, Any]:  # for Ray: no template, no fits (weak refs)
        return {k: v for k, v in self.__dict__.items() if k not in ("_server", "cache")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._server = None
        self.cache = FitCache()

    def replay(self, ref: StrategyRef, seed: int) -> Outcome:
        """One configuration with one seed, as :meth:`Runner.run` replays it, into rows."""
        try:
            strat = self.describe(ref)
            rows: list[tuple] = []
            self._rows = rows
            if isinstance(strat, Described):
                params = dataclasses.asdict(strat.params)
                meter, summary, figures, _ = self._run_isolated(None, strat, params, seed, None)
            else:
                ctx, meter = start(
                    strat, self.arrays, self.train, self.test_pos, seed, self.prefix_cache
                )
                ctx.cache = self.cache  # fits shared by this worker's runs
                chunks = decide(strat, ctx, meter)
                self._write_decisions(None, chunks, meter, ctx.stream, None)
                figures = evaluation(strat, ctx, self.arrays)
                summary = strat.run_summary()
            check_stored(summary, figures)
            return Outcome(rows, figures, summary, bool(meter.used_oracle))
        except UisbenchError as exc:
            return Outcome(error=str(exc))

    def close(self) -> None:
        """Stop this worker's strategy template and remove its folder."""
        server, self._server = self._server, None
        if server is not None:
            server.__del__()

    def _write_decisions(self, stored, chunks, meter, stream, progress) -> list[tuple]:
        """Collect the rows instead of inserting them (same checks as the runner's)."""
        position = {int(q): i for i, q in enumerate(stream.tolist())}
        seen: set[int] = set()
        for chunk in chunks:
            self._rows += self._decision_rows(chunk, meter, position, seen, frozenset())
        if len(seen) < len(self.test_pos):
            n_test = len(self.test_pos)
            raise UisbenchError(
                f"decided {len(seen)} of {n_test} queries; {n_test - len(seen)} have no decision"
            )
        return []


# ---------------------------------------------------------------------------- workers
_REPLAYERS: list[Replayer] = []


def _init_local(replayers: list[Replayer], parent: int) -> None:
    _REPLAYERS[:] = replayers  # inherited through fork, not pickled
    # a killed parent takes its workers along (they would wait on the task queue for ever)
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:
        os._exit(1)
    multiprocessing.util.Finalize(None, _close_local, exitpriority=10)  # run as a worker exits
    # one BLAS thread per worker: the workers already fill the cores (idle OpenBLAS threads
    # spin on them otherwise)
    threadpool_limits(1)


def _close_local() -> None:
    for replayer in _REPLAYERS:
        replayer.close()


def _replay_local(index: int, batch: Sequence[tuple[StrategyRef, int]]) -> list[Outcome]:
    return [_REPLAYERS[index].replay(ref, seed) for ref, seed in batch]


def _local_pool(replayers: list[Replayer], jobs: int) -> tuple[Callable, Callable]:
    """(submit, close) for a pool of ``jobs`` processes forked from this one."""
    if "fork" not in multiprocessing.get_all_start_methods():
        raise UisbenchError("--jobs above 1 needs fork() (Linux or macOS)")
    pool = ProcessPoolExecutor(
        jobs, multiprocessing.get_context("fork"), _init_local, (replayers, os.getpid())
    )

    def submit(index: int, batch: Sequence[tuple[StrategyRef, int]]):
        return pool.submit(_replay_local, index, batch)

    def close() -> None:
        pool.shutdown(wait=True, cancel_futures=True)

    return submit, close


def _ray_pool(replayers: list[Replayer], jobs: int, address: str | None) -> tuple:
    """(submit, close) for ``jobs`` Ray actors that get the working sets once (``ray.put``)."""
    try:
        import ray
    except ImportError:
        raise UisbenchError("--executor ray needs Ray (pip install 'uisbench[ray]')") from None
    from concurrent.futures import Future

    started = not ray.is_initialized()
    if started:  # a cluster of its own when no address is given, on loopback only
        local = {} if address else {"_node_ip_address": "127.0.0.1", "num_cpus": jobs}
        ray.init(address=address, include_dashboard=False, log_to_driver=False, **local)
    sets = ray.put(replayers)

    @ray.remote(num_cpus=1)
    class Worker:
        def __init__(self, sets: list[Replayer]) -> None:
            self.sets = sets

        def replay(self, index: int, batch: Sequence[tuple[StrategyRef, int]]) -> list[Outcome]:
            return [self.sets[index].replay(ref, seed) for ref, seed in batch]

        def close(self) -> None:
            for replayer in self.sets:
                replayer.close()

    actors = [Worker.remote(sets) for _ in range(jobs)]
    turn = [0]

    def submit(index: int, batch: Sequence[tuple[StrategyRef, int]]) -> Future:
        actor = actors[turn[0] % len(actors)]
        turn[0] += 1
        return actor.replay.remote(index, batch).future()

    def close() -> None:
        with contextlib.suppress(Exception):  # an actor already gone
            ray.get([actor.close.remote() for actor in actors])
        for actor in actors:
            ray.kill(actor)
        if started:
            ray.shutdown()

    return submit, close


# ---------------------------------------------------------------------------- the parent
#: Batches per worker the work list is cut into at least (a bound on the imbalance at the end).
BATCHES_PER_JOB = 4
#: Decision rows a batch may carry back at most (a bound on the parent's memory).
BATCH_ROWS = 200_000


def batches(work: Sequence[tuple[Runner, str, int]], jobs: int) -> list[list[int]]:
    """The work list's positions cut into batches, in order: runs next to each other with the
    same working set and strategy name, at most ``len(work) / (jobs * BATCHES_PER_JOB)`` runs
    (so that every worker gets several and the last ones finish together) and
    :data:`BATCH_ROWS` decision rows each; a longer group is cut into near-equal parts."""
    keys = [(id(runner), parse_spec(spec)[0]) for runner, spec, _ in work]
    groups: list[list[int]] = []
    for i, key in enumerate(keys):
        if groups and keys[groups[-1][0]] == key:
            groups[-1].append(i)
        else:
            groups.append([i])
    most = max(1, len(work) // (jobs * BATCHES_PER_JOB))
    out = []
    for group in groups:
        size = min(most, max(1, BATCH_ROWS // max(1, len(work[group[0]][0].test_pos))))
        parts = -(-len(group) // size)
        cuts = [round(j * len(group) / parts) for j in range(parts + 1)]
        out += [group[a:b] for a, b in zip(cuts, cuts[1:])]
    return out


def run_parallel(
    work: Sequence[tuple[Runner, str, int]],
    force: bool,
    jobs: int,
    executor: str = "local",
    address: str | None = None,
    tolerate: Callable[[str, UisbenchError], bool] | None = None,
) -> Iterator[RunResult | None]:
    """Run the work list on ``jobs`` workers, a batch (:func:`batches`) at a time; yields each
    run's result as it is written (in the order batches complete). A run's error stops the job
    with that one line, as in one process, unless ``tolerate(strategy name, error)`` says to
    skip that strategy: then it yields None for the failed run and for each of that strategy's
    runs not yet written."""
    if executor not in EXECUTORS:
        raise UisbenchError(f"unknown executor {executor!r} (choose one of: local, ray)")
    if jobs < 1:
        raise UisbenchError(f"--jobs must be at least 1, not {jobs}")
    jobs = max(1, min(jobs, len(work)))  # no idle workers
    runners: list[Runner] = []
    for runner, _, _ in work:
        if all(r is not runner for r in runners):
            runners.append(runner)
    for runner in runners:
        runner.remember_complete_runs()  # one query per working set, not one per run
    replayers = [Replayer(r) for r in runners]
    if executor == "ray":
        submit, close = _ray_pool(replayers, jobs, address)
    else:
        submit, close = _local_pool(replayers, jobs)
    pending: dict[Any, list[tuple]] = {}
    opened: list[RunRows] = []
    failed: set[str] = set()

    def guarded(name: str, step: Callable, *args: Any) -> Any:
        """``step(*args)``, or None when it failed with an error tolerated for ``name``."""
        try:
            return step(*args)
        except UisbenchError as exc:
            if tolerate is None or not tolerate(name, exc):
                raise
            failed.add(name)
            return None

    queue = iter(batches(work, jobs))
    try:
        while True:
            while len(pending) < 2 * jobs:  # a window: runs are opened as they are sent
                batch = next(queue, None)
                if batch is None:
                    break
                sent: list[tuple] = []  # (name, runner, strategy, rows, spec, seed) per run sent
                for i, result in _open(work, batch, force, guarded, failed):
                    if result is None or isinstance(result, RunResult):  # failed, or complete
                        yield result
                        continue
                    runner, spec, seed = work[i]
                    opened.append(result[1])
                    sent.append((parse_spec(spec)[0], runner, *result, spec, seed))
                if sent:
                    index = runners.index(sent[0][1])
                    future = submit(index, [(spec, seed) for *_, spec, seed in sent])
                    pending[future] = sent
            if not pending:
                break
            finished, _ = wait(list(pending), return_when=FIRST_COMPLETED)
            for future in finished:
                sent = pending.pop(future)
                for (name, runner, strat, stored, *_), out in zip(sent, future.result()):
                    opened.remove(stored)
                    if name in failed:  # an earlier run of this batch failed
                        stored.drop_if_empty()
                        yield None
                        continue
                    yield guarded(name, _write, runner, strat, stored, out)
    finally:
        close()
        for stored in opened:  # sent, never written: no trace (as a failed run)
            stored.drop_if_empty()


def _open(work, batch: list[int], force: bool, guarded: Callable, failed: set[str]):
    """Open a batch's runs to send them to a worker: (index, (strategy, the run's rows)) for
    each, or (index, the RunResult of a run complete already), or (index, None) for a run of a
    strategy that failed with a tolerated error. A batch is one working set's runs of one
    strategy: each is described, then all are opened at once (:meth:`Runner.open_runs`; with
    ``force`` one by one, each stored run deleted first), their ``runs`` rows written before
    the worker replays them (run ids follow the work list, as in one process)."""
    described: list[tuple[int, Strategy | Described]] = []
    for i in batch:
        runner, spec, seed = work[i]
        name = parse_spec(spec)[0]
        strat = None if name in failed else guarded(name, _describe, runner, spec)
        if strat is None:
            yield i, None
        else:
            described.append((i, strat))
    if not described:
        return
    runner, spec = work[described[0][0]][:2]
    name = parse_spec(spec)[0]  # as ``failed`` and ``tolerate`` know it
    wanted = [(s, dataclasses.asdict(s.params), work[i][2]) for i, s in described]
    if force:
        opened = [guarded(name, runner.open_run, *w, True) for w in wanted]
    else:
        opened = guarded(name, runner.open_runs, wanted) or [None] * len(wanted)
    for (i, strat), stored in zip(described, opened):
        if stored is None:
            yield i, None
        elif stored.complete:
            yield i, runner.complete_result(stored, strat)
        else:
            stored.create()  # a new run's row is written already (no-op); a forced one now
            yield i, (strat, stored)


def _describe(runner: Runner, spec: str) -> Strategy | Described:
    """The configured strategy of ``spec``, checked to run on this working set."""
    strat = runner.describe(spec)
    why = runner.cannot_run(strat)
    if why:
        raise UisbenchError(f"cannot run {strat.label()}: {why}")
    check_text("config label", strat.label(), "cannot run it: its ")
    return strat


def _write(runner: Runner, strat, stored: RunRows, out: Outcome) -> RunResult:
    """Write a worker's rows (those not already there) and close the run, in one
    transaction."""
    if out.error is not None:  # as in one process
        raise runner.failed(stored, strat, out.error)
    have = stored.decided
    rows = [row for row in out.rows or [] if row[0] not in have]
    summary, figures = out.summary or {}, out.figures or {}
    return runner.close_run(stored, strat, out.used_oracle, bool(have), summary, figures, rows)
