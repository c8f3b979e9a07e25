"""Running a strategy over a task: one decision row per test query, resumable.

A run is identified by a hash of everything that defines it (task, bank, models, strategy and
its full configuration, seed, split seed, mode, prefix-cache assumption). Strategies are
deterministic given the seed, so resuming a killed run replays the strategy from the start and
writes only the decisions not yet committed; decision rows are unique per (run, query), so
nothing is lost or written twice.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import numpy as np
from sqlalchemy import Connection, Engine, bindparam, func, select

from uisbench.costs import PrefixCache
from uisbench.errors import UisbenchError
from uisbench.meter import Meter
from uisbench.provenance import command_line, git_commit, host, uisbench_version
from uisbench.replay import decide, evaluation, start
from uisbench.store import schema as s
from uisbench.store.arrays import BankArrays, load_arrays
from uisbench.store.bankfile import check_text
from uisbench.store.dialect import bool_mean, bulk_insert_ignore, insert_ignore
from uisbench.store.splits import assign_splits
from uisbench.strategies.base import Decisions, RunContext, Strategy, make_strategy


@dataclass
class RunResult:
    run_id: int
    label: str
    n_queries: int
    accuracy: float
    resumed: bool
    skipped: bool  # already complete before this call


#: Column order of the tuples :meth:`Runner._decision_rows` builds for the bulk insert.
DECISION_COLUMNS = (
    "run_id",
    "query_id",
    "position",
    "arms",
    "samples_used",
    "answer",
    "correct",
    "input_tokens",
    "output_tokens",
    "flops",
    "dollars",
    "latency_s",
    "param_calls",
    "reward",
    "extra",
)


def _now() -> datetime:
    return datetime.now(timezone.utc)


def run_key(definition: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(definition, sort_keys=True).encode()).hexdigest()


def _check_queries(q: list[int], position: dict[int, int], seen: set[int]) -> None:
    """Each decided query is a test query decided once; marks them ``seen``."""
    for p in q:
        if p not in position:
            raise UisbenchError("strategy decided a query that is not in the test stream")
        if p in seen:
            raise UisbenchError("strategy decided the same query twice")
        seen.add(p)


def _floats(x: np.ndarray) -> list[float | None]:
    x = np.asarray(x, dtype=float)
    return np.where(np.isnan(x), None, x).tolist()


def _ints(x: np.ndarray) -> list[int | None]:
    """Integers, None where unknown (a bank that recorded no token counts)."""
    x = np.asarray(x, dtype=float)
    known = np.isfinite(x).tolist()
    return [int(v) if k else None for v, k in zip(np.nan_to_num(x).tolist(), known)]


def _delete_run(conn: Connection, run_id: int) -> None:
    conn.execute(s.decisions.delete().where(s.decisions.c.run_id == run_id))
    conn.execute(s.runs.delete().where(s.runs.c.id == run_id))


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
    ) -> None:
        self.engine = engine
        self.task = task
        self.prefix_cache = PrefixCache.parse(prefix_cache)
        with engine.begin() as conn:
            self.arrays: BankArrays = load_arrays(conn, bank, task, models)
            self.task_id = conn.execute(
                select(s.tasks.c.id).where(s.tasks.c.name == task)
            ).scalar_one()
            self.split_seed = split_seed
            self.split = assign_splits(conn, self.task_id, self.arrays, split_seed)
        self.models = list(self.arrays.models)
        self.train_pos = np.flatnonzero(self.split == "train")
        self.test_pos = np.flatnonzero(self.split == "test")
        if len(self.test_pos) == 0:
            raise UisbenchError(f"task {task!r} has no test queries in bank {bank!r}")
        self.train = self.arrays.subset(self.train_pos)
        self.answers_known = any((m.answer >= 0).any() for m in self.arrays.models.values())

    def cannot_run(self, strat: type[Strategy] | Strategy) -> str | None:
        """Why this working set cannot run ``strat`` (one line), or None."""
        if strat.needs_answers and not self.answers_known:
            return (
                f"{strat.name} needs the samples' answers (votes) and bank {self.arrays.bank!r} "
                "recorded outcomes only"
            )
        return None

    def max_k(self) -> dict[str, int]:
        return {m: int(a.n_avail[self.test_pos].min()) for m, a in self.arrays.models.items()}

    def definition(self, strat: Strategy, seed: int) -> dict[str, Any]:
        """Everything that defines a run; its hash is the run's key."""
        return {
            "task": self.task,
            "bank": self.arrays.bank,
            "models": self.models,
            "strategy": strat.name,
            "params": dataclasses.asdict(strat.params),
            "seed": seed,
            "split_seed": self.split_seed,
            "mode": "replay",
            "prefix_cache": str(self.prefix_cache),
            "bank_digest": self.arrays.digest,  # a bank grown under the same name: new runs
        }

    def run(
        self,
        strategy: Strategy | str,
        seed: int = 0,
        *,
        force: bool = False,
        progress: Callable[[int, int], None] | None = None,
        command: str | None = None,
    ) -> RunResult:
        """Run (or resume, or skip if complete) one strategy configuration with one seed."""
        strat = make_strategy(strategy)
        why = self.cannot_run(strat)
        if why:
            raise UisbenchError(f"cannot run {strat.label()}: {why}")
        check_text("config label", strat.label(), "cannot run it: its ")  # PostgreSQL's rule
        key = run_key(self.definition(strat, seed))
        params = dataclasses.asdict(strat.params)
        run_id, status, done = self._open_run(key, strat, params, seed, force, command)
        n_test = len(self.test_pos)
        if status == "complete":
            return RunResult(run_id, strat.label(), n_test, self._accuracy(run_id), False, True)
        try:
            ctx = start(strat, self.arrays, self.train, self.test_pos, seed, self.prefix_cache)
            self._write_decisions(run_id, strat, ctx, done, progress)
            self._write_evaluation(run_id, evaluation(strat, ctx, self.arrays))
        except BaseException:
            # A configuration that cannot run (or a crash, or Ctrl-C before the first decision)
            # leaves no `running` row; one with decisions stays, to be resumed.
            self._drop_if_empty(run_id)
            raise
        return self._close_run(run_id, strat, ctx.meter, bool(done))

    def _write_decisions(
        self,
        run_id: int,
        strat: Strategy,
        ctx: RunContext,
        done: set[int],
        progress: Callable[[int, int], None] | None,
    ) -> None:
        """Replay the strategy, committing each chunk's new decisions as it comes."""
        n_test = len(self.test_pos)
        position = {int(q): i for i, q in enumerate(ctx.stream.tolist())}
        seen: set[int] = set()
        written = len(done)
        if progress:
            progress(written, n_test)
        for chunk in decide(strat, ctx):
            rows = self._decision_rows(run_id, chunk, ctx.meter, position, seen, done)
            if rows:
                with self.engine.begin() as conn:
                    bulk_insert_ignore(conn, s.decisions, DECISION_COLUMNS, rows)
                written += len(rows)
            if progress:
                progress(written, n_test)
        if len(seen) < n_test:
            raise UisbenchError(
                f"strategy {strat.label()} decided {len(seen)} of {n_test} queries; "
                f"{n_test - len(seen)} have no decision"
            )

    def _write_evaluation(self, run_id: int, figures: dict[int, dict]) -> None:
        """Merge evaluation-only figures (computed after every decision was committed) into
        the decisions' ``extra``."""
        if not figures:
            return
        d = s.decisions
        qid = {int(self.arrays.query_ids[p]): f for p, f in figures.items()}
        with self.engine.begin() as conn:
            rows = conn.execute(
                select(d.c.id, d.c.query_id, d.c.extra).where(d.c.run_id == run_id)
            ).all()
            params = [
                {"row": i, "extra": {**(extra or {}), **qid.get(int(q), {})}}
                for i, q, extra in rows
            ]
            stmt = d.update().where(d.c.id == bindparam("row")).values(extra=bindparam("extra"))
            conn.execute(stmt, params)

    # ---------------------------------------------------------------- helpers
    def _open_run(
        self, key: str, strat: Strategy, params: dict, seed: int, force: bool, command: str | None
    ) -> tuple[int, str, set[int]]:
        """(run id, status, query ids already decided) of the run ``key``, created if new."""
        with self.engine.begin() as conn:
            row = conn.execute(select(s.runs).where(s.runs.c.run_key == key)).mappings().first()
            if row is not None and force:
                _delete_run(conn, row["id"])
                row = None
            if row is None:
                insert_ignore(conn, s.runs, [self._run_row(key, strat, params, seed, command)])
                row = conn.execute(select(s.runs).where(s.runs.c.run_key == key)).mappings().one()
            done = set(
                conn.execute(
                    select(s.decisions.c.query_id).where(s.decisions.c.run_id == row["id"])
                ).scalars()
            )
        return row["id"], row["status"], done

    def _run_row(
        self, key: str, strat: Strategy, params: dict, seed: int, command: str | None
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
            "mode": "replay",
            "split_seed": self.split_seed,
            "n_queries": len(self.test_pos),
            "prefix_cache": str(self.prefix_cache),
            "bank_digest": self.arrays.digest,
            "uisbench_version": uisbench_version(),
            "git_commit": git_commit(),
            "command": command or command_line(),
            "host": host(),
            "started_at": _now(),
            "status": "running",
        }

    def _drop_if_empty(self, run_id: int) -> None:
        """Delete a run that has no decision row (it failed before deciding anything)."""
        with self.engine.begin() as conn:
            n = conn.execute(
                select(func.count()).select_from(s.decisions).where(s.decisions.c.run_id == run_id)
            ).scalar_one()
            if n == 0:
                _delete_run(conn, run_id)

    def _decision_rows(
        self,
        run_id: int,
        chunk: Decisions,
        meter: Meter,
        position: dict[int, int],
        seen: set[int],
        done: set[int],
    ) -> list[tuple]:
        """Rows in :data:`DECISION_COLUMNS` order for the chunk's queries not yet written.

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
        L = meter.ledger
        cols = zip(
            itertools.repeat(run_id),
            self.arrays.query_ids[q].tolist(),
            [position[p] for p in q_list],
            [json.dumps(L.arms[p]) for p in q_list],
            L.samples[q].tolist(),
            meter.answer_text(answer),
            correct.astype(bool).tolist(),
            _ints(L.input_tokens[q]),
            _ints(L.output_tokens[q]),
            _floats(L.flops[q]),
            _floats(L.dollars[q]),
            _floats(L.latency_s[q]),
            _floats(L.param_calls[q]),
            [None] * len(q) if chunk.reward is None else _floats(chunk.reward),
            map(json.dumps, [None] * len(q) if chunk.extra is None else chunk.extra),
        )
        return [row for row in cols if row[1] not in done]

    def _accuracy(self, run_id: int) -> float:
        with self.engine.connect() as conn:
            return float(
                conn.execute(
                    select(bool_mean(s.decisions.c.correct)).where(s.decisions.c.run_id == run_id)
                ).scalar()
                or 0.0
            )

    def _close_run(self, run_id: int, strat: Strategy, meter: Meter, resumed: bool) -> RunResult:
        acc = self._accuracy(run_id)
        summary = {
            "accuracy": acc,
            "upper_bound": bool(strat.upper_bound or meter.used_oracle),
            "family": strat.family,
            "synthetic_bank": self.arrays.synthetic,
        }
        if strat.run_summary():
            summary["strategy"] = strat.run_summary()
        with self.engine.begin() as conn:
            conn.execute(
                s.runs.update()
                .where(s.runs.c.id == run_id)
                .values(status="complete", ended_at=_now(), summary=summary)
            )
        return RunResult(run_id, strat.label(), len(self.test_pos), acc, resumed, False)
