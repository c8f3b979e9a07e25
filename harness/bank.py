"""The sample bank in the database: import, export, summary, and loading into dense arrays.

Every sample is stored once, keyed by (bank, query, model, sample index). A *bank* is a named
generation configuration (an imported file, or a live backend's settings). Replay loads one bank
into :class:`BankArrays` — dense ``(queries × samples)`` matrices per model — so strategies work
with numpy over the whole task instead of looping per sample.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from sqlalchemy import Connection, Engine, func, select

from uisbench.bankfile import (
    FlatRow,
    bank_name_from_path,
    read_blocks,
    read_models_file,
)
from uisbench.costs import request_costs
from uisbench.errors import UisbenchError
from uisbench.results import schema as s
from uisbench.sql import bool_mean, bulk_insert_ignore, insert_ignore
from uisbench.tasks import task_note

SAMPLE_COLUMNS = (
    "bank_id", "query_id", "model_id", "sample_index", "text", "answer", "correct", "score",
    "input_tokens", "output_tokens", "cost_usd", "latency_s", "logprob",
)  # fmt: skip
MODEL_META = (
    "family", "backend", "identifier", "params_total", "params_active", "train_tokens",
    "price_in_per_mtok", "price_out_per_mtok", "context_length",
)  # fmt: skip
CHUNK = 50_000


# ---------------------------------------------------------------- ids, created on first use
def ensure_bank(
    conn: Connection, name: str, source: str, config: dict[str, Any], synthetic: bool = False
) -> int:
    insert_ignore(
        conn,
        s.banks,
        [{"name": name, "source": source, "config": config, "synthetic": synthetic}],
    )
    return conn.execute(select(s.banks.c.id).where(s.banks.c.name == name)).scalar_one()


def ensure_task(conn: Connection, name: str, description: str | None = None) -> int:
    insert_ignore(conn, s.tasks, [{"name": name, "description": description}])
    return conn.execute(select(s.tasks.c.id).where(s.tasks.c.name == name)).scalar_one()


def ensure_models(conn: Connection, meta: dict[str, dict[str, Any]]) -> dict[str, int]:
    """Create models by name; fill metadata columns that are still empty (never overwrite)."""
    insert_ignore(conn, s.models, [{"name": n} for n in meta])
    rows = conn.execute(select(s.models).where(s.models.c.name.in_(list(meta)))).mappings()
    ids = {}
    for r in rows:
        ids[r["name"]] = r["id"]
        fill = {k: v for k, v in meta[r["name"]].items() if k in MODEL_META and v is not None}
        fill = {k: v for k, v in fill.items() if r[k] is None}
        if fill:
            conn.execute(s.models.update().where(s.models.c.id == r["id"]).values(**fill))
    return ids


def ensure_queries(
    conn: Connection, task_id: int, rows: Sequence[dict[str, Any]]
) -> dict[str, int]:
    """Insert queries (by key) that are new; return key → id for the given rows."""
    insert_ignore(conn, s.queries, [{"task_id": task_id, **r} for r in rows])
    keys = [r["query_key"] for r in rows]
    out: dict[str, int] = {}
    for i in range(0, len(keys), 900):
        part = keys[i : i + 900]
        q = select(s.queries.c.query_key, s.queries.c.id).where(
            s.queries.c.task_id == task_id, s.queries.c.query_key.in_(part)
        )
        out.update(dict(conn.execute(q).all()))
    return out


# ---------------------------------------------------------------- import / export
@dataclass
class ImportStats:
    bank: str
    rows: int
    inserted: int
    tasks: list[str]
    models: list[str]


def import_file(
    engine: Engine,
    path: Path,
    models_path: Path | None = None,
    name: str | None = None,
    synthetic: bool = False,
) -> ImportStats:
    """Import a flat JSONL(.gz) bank in one transaction: all rows or none.

    Samples already present (same bank, query, model, index) are skipped, so importing the same
    file twice adds nothing.
    """
    meta = read_models_file(models_path) if models_path else {}
    name = name or bank_name_from_path(path)
    source = "synthetic" if synthetic else "import"
    with engine.begin() as conn:
        bank_id = ensure_bank(conn, name, source, {"file": path.name}, synthetic)
        stats = _import_blocks(conn, bank_id, read_blocks(path), meta)
    return ImportStats(name, *stats)


def _codes(table: Any, column: str) -> tuple[np.ndarray, list[Any]]:
    """Dictionary-encode a column in C++: (code per row, distinct values)."""
    enc = table.column(column).combine_chunks().dictionary_encode()
    return enc.indices.to_numpy(zero_copy_only=False), enc.dictionary.to_pylist()


def _import_blocks(
    conn: Connection, bank_id: int, blocks: Iterable[Any], meta: dict[str, dict[str, Any]]
) -> tuple[int, int, list[str], list[str]]:
    """Insert blocks (pyarrow Tables of the flat fields).

    Tasks, queries and models are resolved per distinct value (numpy over dictionary codes),
    not per row; only the sample columns become Python values, for the driver's executemany.
    """
    task_ids: dict[str, int] = {}
    query_ids: dict[tuple[str, str], int] = {}
    model_ids: dict[str, int] = dict(ensure_models(conn, meta)) if meta else {}
    n_rows = inserted = 0
    for table in _prefetch(blocks):
        n = table.num_rows
        t_code, tasks = _codes(table, "task")
        q_code, qkeys = _codes(table, "query_id")
        pair = t_code.astype(np.int64) * len(qkeys) + q_code
        uniq, first, inverse = np.unique(pair, return_index=True, return_inverse=True)
        keys = [(tasks[p // len(qkeys)], qkeys[p % len(qkeys)]) for p in uniq.tolist()]
        new = [i for i, k in enumerate(keys) if k not in query_ids]
        if new:
            at = pa.array(first[new])
            fields = {f: table.column(f).take(at).to_pylist() for f in ("split", "prompt",
                      "reference")}  # fmt: skip
            new_q: dict[str, list[dict[str, Any]]] = {}
            for j, i in enumerate(new):
                task, qkey = keys[i]
                if task not in task_ids:
                    task_ids[task] = ensure_task(conn, task, task_note(task).description)
                new_q.setdefault(task, []).append({
                    "query_key": qkey, "split": fields["split"][j],
                    "prompt": fields["prompt"][j], "reference": fields["reference"][j],
                })  # fmt: skip
            for task, qs in new_q.items():
                ids = ensure_queries(conn, task_ids[task], qs)
                query_ids.update({(task, k): v for k, v in ids.items()})
        qid = np.array([query_ids[k] for k in keys], dtype=np.int64)[inverse.ravel()]
        m_code, models = _codes(table, "model")
        for m in set(models) - model_ids.keys():
            model_ids.update(ensure_models(conn, {m: meta.get(m, {})}))
        mid = np.array([model_ids[m] for m in models], dtype=np.int64)[m_code]
        # Columns null in the whole block (often text, score) are left to their default NULL:
        # fewer parameters to bind per row.
        fields = [f for f in ("sample", *SAMPLE_COLUMNS[4:]) if table.column(f).null_count < n]
        columns = [*SAMPLE_COLUMNS[:3], *("sample_index" if f == "sample" else f for f in fields)]
        rest = [table.column(f).to_pylist() for f in fields]
        tuples = list(zip(itertools.repeat(bank_id, n), qid.tolist(), mid.tolist(), *rest))
        for lo in range(0, n, CHUNK):
            inserted += bulk_insert_ignore(conn, s.samples, columns, tuples[lo : lo + CHUNK])
        n_rows += n
    if n_rows == 0:
        raise UisbenchError("bank file holds no samples")
    return n_rows, inserted, sorted(task_ids), sorted(model_ids)


def _prefetch(blocks: Iterable[Any]) -> Iterator[Any]:
    """Parse the next block in a thread while the caller inserts this one.

    pyarrow's parser and SQLite's step both release the GIL, so on two cores they overlap.
    Errors from the reader surface in the caller, in order.
    """
    it = iter(blocks)
    with ThreadPoolExecutor(max_workers=1) as pool:
        fut = pool.submit(next, it, None)
        while (block := fut.result()) is not None:
            fut = pool.submit(next, it, None)
            yield block


def get_bank_id(conn: Connection, name: str) -> int:
    bid = conn.execute(select(s.banks.c.id).where(s.banks.c.name == name)).scalar()
    if bid is None:
        known = conn.execute(select(s.banks.c.name)).scalars().all()
        raise UisbenchError(f"unknown bank {name!r} (known: {', '.join(known) or 'none'})")
    return bid


def export_rows(conn: Connection, bank: str, task: str | None = None) -> Iterable[FlatRow]:
    """Samples of a bank as flat rows, ordered by task, model, query and sample index."""
    bank_id = get_bank_id(conn, bank)
    q = (
        select(
            s.tasks.c.name,
            s.queries.c.query_key,
            s.queries.c.split,
            s.queries.c.prompt,
            s.queries.c.reference,
            s.models.c.name,
            s.samples.c.sample_index,
            s.samples.c.answer,
            s.samples.c.correct,
            s.samples.c.input_tokens,
            s.samples.c.output_tokens,
            s.samples.c.cost_usd,
            s.samples.c.latency_s,
            s.samples.c.logprob,
            s.samples.c.text,
            s.samples.c.score,
        )  # fmt: skip
        .join(s.queries, s.samples.c.query_id == s.queries.c.id)
        .join(s.tasks, s.queries.c.task_id == s.tasks.c.id)
        .join(s.models, s.samples.c.model_id == s.models.c.id)
        .where(s.samples.c.bank_id == bank_id)
        .order_by(s.tasks.c.name, s.models.c.name, s.queries.c.id, s.samples.c.sample_index)
    )
    if task:
        q = q.where(s.tasks.c.name == task)
    for r in conn.execute(q).yield_per(10_000):
        yield FlatRow(*r[:8], bool(r[8]), *r[9:])


def bank_models_meta(conn: Connection, bank: str) -> dict[str, dict[str, Any]]:
    bank_id = get_bank_id(conn, bank)
    ids = select(s.samples.c.model_id).where(s.samples.c.bank_id == bank_id).distinct()
    rows = conn.execute(select(s.models).where(s.models.c.id.in_(ids)).order_by(s.models.c.name))
    return {r["name"]: dict(r) for r in rows.mappings()}


def info(conn: Connection, bank: str | None = None) -> pd.DataFrame:
    """Per bank, task and model: queries, samples per query, accuracy, mean cost and tokens."""
    q = (
        select(
            s.banks.c.name.label("bank"),
            s.banks.c.synthetic,
            s.tasks.c.name.label("task"),
            s.models.c.name.label("model"),
            func.count(s.samples.c.query_id.distinct()).label("queries"),
            func.count().label("samples"),
            bool_mean(s.samples.c.correct).label("accuracy"),
            func.avg(s.samples.c.input_tokens).label("input_tokens"),
            func.avg(s.samples.c.output_tokens).label("output_tokens"),
            func.avg(s.samples.c.cost_usd).label("cost_usd"),
        )  # fmt: skip
        .join(s.banks, s.samples.c.bank_id == s.banks.c.id)
        .join(s.queries, s.samples.c.query_id == s.queries.c.id)
        .join(s.tasks, s.queries.c.task_id == s.tasks.c.id)
        .join(s.models, s.samples.c.model_id == s.models.c.id)
        .group_by(s.banks.c.name, s.banks.c.synthetic, s.tasks.c.name, s.models.c.name)
        .order_by(s.banks.c.name, s.tasks.c.name, s.models.c.name)
    )
    if bank:
        q = q.where(s.banks.c.name == bank)
    df = pd.DataFrame(conn.execute(q).mappings().all())
    if df.empty:
        return df
    df["samples_per_query"] = df["samples"] / df["queries"]
    return df


# ---------------------------------------------------------------- dense arrays for replay
@dataclass
class ModelArrays:
    """One model's samples for the task's queries; padded to the largest sample count."""

    n_avail: np.ndarray  # (Q,) samples held per query
    answer: np.ndarray  # (Q, S) int32 answer code per query, -1 = no answer
    correct: np.ndarray  # (Q, S) bool
    input_tokens: np.ndarray  # (Q, S) float (nan unknown)
    output_tokens: np.ndarray  # (Q, S) float
    cost_usd: np.ndarray  # (Q, S) float
    latency_s: np.ndarray  # (Q, S) float
    logprob: np.ndarray  # (Q, S) float
    score: np.ndarray  # (Q, S) float
    sample_id: np.ndarray  # (Q, S) int64 database id, -1 padding

    def request_costs(
        self, meta: dict[str, Any], rows: np.ndarray, slot: np.ndarray
    ) -> dict[str, np.ndarray]:
        """Charges of requesting the samples at ``[rows, slot]`` (see :mod:`uisbench.costs`)."""
        return request_costs(
            meta,
            self.input_tokens[rows, slot],
            self.output_tokens[rows, slot],
            self.cost_usd[rows, slot],
            self.latency_s[rows, slot],
        )


@dataclass
class BankArrays:
    """A bank restricted to one task: queries in a fixed order, one :class:`ModelArrays` each."""

    bank: str
    bank_id: int
    synthetic: bool
    query_ids: np.ndarray  # (Q,) database ids, ascending
    query_keys: list[str]
    splits: np.ndarray  # (Q,) object: "train"/"test"/None (source split)
    models: dict[str, ModelArrays]
    model_meta: dict[str, dict[str, Any]]
    answer_labels: np.ndarray  # answer code → text (codes shared across models)
    prompts: list[str] | None = None

    @property
    def n_queries(self) -> int:
        return len(self.query_ids)

    def subset(self, positions: np.ndarray) -> BankArrays:
        """The same bank restricted to some query positions (a copy)."""
        pos = np.asarray(positions, dtype=np.int64)
        models = {
            name: ModelArrays(
                **{f: getattr(m, f)[pos] for f in m.__dataclass_fields__}  # type: ignore[attr-defined]
            )
            for name, m in self.models.items()
        }
        return replace(
            self,
            query_ids=self.query_ids[pos],
            query_keys=[self.query_keys[i] for i in pos.tolist()],
            splits=self.splits[pos],
            models=models,
            prompts=[self.prompts[i] for i in pos.tolist()] if self.prompts else None,
        )


def load_arrays(
    conn: Connection, bank: str, task: str, models: Sequence[str] | None = None
) -> BankArrays:
    """Load a bank's samples for one task into dense arrays (the replay working set)."""
    bank_row = conn.execute(select(s.banks).where(s.banks.c.name == bank)).mappings().first()
    if bank_row is None:
        get_bank_id(conn, bank)  # raises the standard message
    bank_id = bank_row["id"]
    task_id = conn.execute(select(s.tasks.c.id).where(s.tasks.c.name == task)).scalar()
    if task_id is None:
        raise UisbenchError(f"unknown task {task!r} in the database")
    meta = bank_models_meta(conn, bank)
    if models:
        unknown = [m for m in models if m not in meta]
        if unknown:
            raise UisbenchError(
                f"unknown model(s) {', '.join(unknown)} in bank {bank!r} "
                f"(it holds: {', '.join(meta)})"
            )
        meta = {m: meta[m] for m in models}
    qrows = conn.execute(
        select(s.queries.c.id, s.queries.c.query_key, s.queries.c.split, s.queries.c.prompt)
        .where(
            s.queries.c.task_id == task_id,
            s.queries.c.id.in_(
                select(s.samples.c.query_id).where(s.samples.c.bank_id == bank_id).distinct()
            ),
        )
        .order_by(s.queries.c.id)
    ).all()
    if not qrows:
        raise UisbenchError(f"bank {bank!r} holds no samples for task {task!r}")
    qids = np.fromiter((r[0] for r in qrows), dtype=np.int64, count=len(qrows))
    cols = "query_id, sample_index, id, answer, correct, input_tokens, output_tokens, " \
           "cost_usd, latency_s, logprob, score"  # fmt: skip
    frames: dict[str, pd.DataFrame] = {}
    for name, m in meta.items():
        cur = conn.exec_driver_sql(
            f"SELECT {cols} FROM samples WHERE bank_id = {int(bank_id)} "
            f"AND model_id = {int(m['id'])}"
        )
        # Columns via zip: pandas probing millions of SQLAlchemy Row objects costs seconds.
        names = [c.strip() for c in cols.split(",")]
        data = list(zip(*cur.fetchall())) or [()] * len(names)
        frames[name] = pd.DataFrame(
            {c: pd.Series(v, dtype=object if c == "answer" else None) for c, v in zip(names, data)}
        )
    all_answers = pd.concat([f["answer"] for f in frames.values()], ignore_index=True)
    codes_all, labels = pd.factorize(all_answers, use_na_sentinel=True)
    arrays: dict[str, ModelArrays] = {}
    offset = 0
    for name, df in frames.items():
        codes = codes_all[offset : offset + len(df)]
        offset += len(df)
        arrays[name] = _densify(df, codes, qids)
    return BankArrays(
        bank=bank,
        bank_id=bank_id,
        synthetic=bool(bank_row["synthetic"]),
        query_ids=qids,
        query_keys=[r[1] for r in qrows],
        splits=np.array([r[2] for r in qrows], dtype=object),
        models=arrays,
        model_meta=meta,
        answer_labels=np.asarray(labels, dtype=object),
        prompts=[r[3] for r in qrows],
    )


def _densify(df: pd.DataFrame, codes: np.ndarray, qids: np.ndarray) -> ModelArrays:
    Q = len(qids)
    if df.empty:
        S = 0
        rows = cols = np.zeros(0, dtype=np.int64)
    else:
        rows = np.searchsorted(qids, df["query_id"].to_numpy())
        # Compact sample indices per query to 0..n-1 in index order (indices may have gaps).
        order = np.lexsort((df["sample_index"].to_numpy(), rows))
        rows_sorted = rows[order]
        starts = np.r_[0, np.flatnonzero(np.diff(rows_sorted)) + 1]
        run_id = np.repeat(np.arange(len(starts)), np.diff(np.r_[starts, len(rows_sorted)]))
        cols = np.empty(len(df), dtype=np.int64)
        cols[order] = np.arange(len(rows_sorted)) - starts[run_id]
        S = int(cols.max()) + 1
    n_avail = np.bincount(rows, minlength=Q).astype(np.int32)

    def mat(values: np.ndarray, fill: Any, dtype: Any) -> np.ndarray:
        out = np.full((Q, S), fill, dtype=dtype)
        out[rows, cols] = values
        return out

    def num(col: str) -> np.ndarray:
        return mat(pd.to_numeric(df[col], errors="coerce").to_numpy(float), np.nan, float)

    return ModelArrays(
        n_avail=n_avail,
        answer=mat(codes.astype(np.int32), -1, np.int32),
        correct=mat(df["correct"].to_numpy(bool), False, bool),
        input_tokens=num("input_tokens"),
        output_tokens=num("output_tokens"),
        cost_usd=num("cost_usd"),
        latency_s=num("latency_s"),
        logprob=num("logprob"),
        score=num("score"),
        sample_id=mat(df["id"].to_numpy(np.int64), -1, np.int64),
    )
