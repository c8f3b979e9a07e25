"""Running a strategy over a task: one decision row per test query, resumable.

A run is identified by a hash of everything that defines it (task, bank, models, strategy and
its full configuration, seed, split seed, mode). Strategies are deterministic given the seed, so
resuming a killed run replays the strategy from the start and writes only the decisions not yet
committed; decision rows are unique per (run, query), so nothing is lost or written twice.
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
from sqlalchemy import Engine, select

from uisbench.errors import UisbenchError
from uisbench.meter import Meter
from uisbench.provenance import command_line, git_commit, host, uisbench_version
from uisbench.store import schema as s
from uisbench.store.arrays import BankArrays, load_arrays
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
    "run_id", "query_id", "position", "arms", "samples_used", "answer", "correct",
    "input_tokens", "output_tokens", "flops", "dollars", "latency_s", "reward", "extra",
)  # fmt: skip


def _now() -> datetime:
    return datetime.now(timezone.utc)


def run_key(definition: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(definition, sort_keys=True).encode()).hexdigest()


class Runner:
    """Runs strategies on one (task, bank, models) working set, loaded once."""

    def __init__(
        self,
        engine: Engine,
        task: str,
        bank: str,
        models: Sequence[str] | None = None,
        split_seed: int = 0,
    ) -> None:
        self.engine = engine
        self.task = task
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

    def max_k(self) -> dict[str, int]:
        return {m: int(a.n_avail[self.test_pos].min()) for m, a in self.arrays.models.items()}

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
        strat = make_strategy(strategy) if isinstance(strategy, str) else strategy
        params = dataclasses.asdict(strat.params)
        definition = {
            "task": self.task, "bank": self.arrays.bank, "models": self.models,
            "strategy": strat.name, "params": params, "seed": seed,
            "split_seed": self.split_seed, "mode": "replay",
        }  # fmt: skip
        key = run_key(definition)
        run_id, status, done = self._open_run(key, strat, params, seed, force, command)
        n_test = len(self.test_pos)
        if status == "complete":
            return RunResult(run_id, strat.label(), n_test, self._accuracy(run_id), False, True)
        resumed = bool(done)
        rng = np.random.default_rng([seed, 0x5EED])
        stream = self.test_pos[rng.permutation(n_test)]
        position = {int(q): i for i, q in enumerate(stream.tolist())}
        meter = Meter(self.arrays, seed=seed, stream=strat.label())
        ctx = RunContext(meter=meter, stream=stream, train=self.train, seed=seed)
        seen: set[int] = set()
        written = len(done)
        try:
            strat.fit(self.train, ctx)
            if progress:
                progress(written, n_test)
            for chunk in strat.run(ctx):
                rows = self._decision_rows(run_id, chunk, meter, position, seen, done)
                if rows:
                    with self.engine.begin() as conn:
                        bulk_insert_ignore(conn, s.decisions, DECISION_COLUMNS, rows)
                    written += len(rows)
                if progress:
                    progress(written, n_test)
            missing = n_test - len(seen)
            if missing:
                raise UisbenchError(
                    f"strategy {strat.label()} decided {len(seen)} of {n_test} queries; "
                    f"{missing} have no decision"
                )
        except UisbenchError:
            if written == 0:  # a configuration that cannot run leaves no trace
                with self.engine.begin() as conn:
                    conn.execute(s.decisions.delete().where(s.decisions.c.run_id == run_id))
                    conn.execute(s.runs.delete().where(s.runs.c.id == run_id))
            raise
        return self._close_run(run_id, strat, meter, resumed)

    # ---------------------------------------------------------------- helpers
    def _open_run(
        self, key: str, strat: Strategy, params: dict, seed: int, force: bool, command: str | None
    ) -> tuple[int, str, set[int]]:
        with self.engine.begin() as conn:
            row = conn.execute(select(s.runs).where(s.runs.c.run_key == key)).mappings().first()
            if row is not None and force:
                conn.execute(s.decisions.delete().where(s.decisions.c.run_id == row["id"]))
                conn.execute(s.runs.delete().where(s.runs.c.id == row["id"]))
                row = None
            if row is None:
                insert_ignore(
                    conn,
                    s.runs,
                    [{
                        "run_key": key, "task_id": self.task_id, "bank_id": self.arrays.bank_id,
                        "strategy": strat.name, "params": params, "config_label": strat.label(),
                        "seed": seed, "models": self.models, "mode": "replay",
                        "split_seed": self.split_seed, "n_queries": len(self.test_pos),
                        "uisbench_version": uisbench_version(), "git_commit": git_commit(),
                        "command": command or command_line(), "host": host(),
                        "started_at": _now(), "status": "running",
                    }],
                )  # fmt: skip
                row = conn.execute(select(s.runs).where(s.runs.c.run_key == key)).mappings().one()
            done = set(
                conn.execute(
                    select(s.decisions.c.query_id).where(s.decisions.c.run_id == row["id"])
                ).scalars()
            )
        return row["id"], row["status"], done

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
        texts = meter.answer_text(answer)
        L = meter.ledger
        q_list = q.tolist()
        for p in q_list:
            if p not in position:
                raise UisbenchError("strategy decided a query that is not in the test stream")
            if p in seen:
                raise UisbenchError("strategy decided the same query twice")
            seen.add(p)
        if len(q_list) == 0:
            return []
        qid = self.arrays.query_ids[q].tolist()

        def floats(x: np.ndarray) -> list[float | None]:
            x = np.asarray(x, dtype=float)
            return np.where(np.isnan(x), None, x).tolist()

        def ints(x: np.ndarray) -> list[int]:
            return np.nan_to_num(x).astype(np.int64).tolist()

        reward = [None] * len(q) if chunk.reward is None else floats(chunk.reward)
        extra = [None] * len(q) if chunk.extra is None else chunk.extra
        cols = zip(
            itertools.repeat(run_id), qid, [position[p] for p in q_list],
            [json.dumps(L.arms[p]) for p in q_list], L.samples[q].tolist(), texts,
            correct.astype(bool).tolist(), ints(L.input_tokens[q]), ints(L.output_tokens[q]),
            floats(L.flops[q]),
            floats(L.dollars[q]), floats(L.latency_s[q]), reward, map(json.dumps, extra),
        )  # fmt: skip
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
        with self.engine.begin() as conn:
            conn.execute(
                s.runs.update()
                .where(s.runs.c.id == run_id)
                .values(status="complete", ended_at=_now(), summary=summary)
            )
        return RunResult(run_id, strat.label(), len(self.test_pos), acc, resumed, False)
