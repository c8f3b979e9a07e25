"""The sample bank in the database: import, export and summary.

Every sample is stored once, keyed by (bank, query, model, sample index). A *bank* is a named
generation configuration (an imported file, or a live backend's settings). Loading a bank for
replay is :mod:`uisbench.store.arrays`.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from sqlalchemy import Connection, Engine, func, select

from uisbench.errors import UisbenchError
from uisbench.store import schema as s
from uisbench.store.bankfile import (
    FlatRow,
    bank_meta_beside,
    bank_name_from_path,
    read_blocks,
    read_models_file,
)
from uisbench.store.dialect import bool_mean, bulk_insert_ignore, insert_ignore

SAMPLE_COLUMNS = (
    "bank_id", "query_id", "model_id", "sample_index", "text", "answer", "correct", "score",
    "input_tokens", "output_tokens", "cost_usd", "latency_s", "logprob",
)  # fmt: skip
MODEL_META = (
    "family", "backend", "identifier", "params_total", "params_active", "train_tokens",
    "price_in_per_mtok", "price_out_per_mtok", "price_cached_in_per_mtok", "context_length",
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
    describe: Callable[[str], str | None] | None = None,
) -> ImportStats:
    """Import a flat JSONL(.gz) bank in one transaction: all rows or none.

    Samples already present (same bank, query, model, index) are skipped, so importing the same
    file twice adds nothing. Provenance (source, licence) is read from ``NAME.bank.json`` beside
    the file when there is one (:func:`bank_meta_beside`). ``describe`` gives a new task's
    description (the task layer knows them; storage does not).
    """
    meta = read_models_file(models_path) if models_path else {}
    name = name or bank_name_from_path(path)
    source = "synthetic" if synthetic else "import"
    with engine.begin() as conn:
        config = {"file": path.name, **bank_meta_beside(path)}
        bank_id = ensure_bank(conn, name, source, config, synthetic)
        stats = _import_blocks(conn, bank_id, read_blocks(path), meta, describe)
    return ImportStats(name, *stats)


def _codes(table: Any, column: str) -> tuple[np.ndarray, list[Any]]:
    """Dictionary-encode a column in C++: (code per row, distinct values)."""
    enc = table.column(column).combine_chunks().dictionary_encode()
    return enc.indices.to_numpy(zero_copy_only=False), enc.dictionary.to_pylist()


def _import_blocks(
    conn: Connection,
    bank_id: int,
    blocks: Iterable[Any],
    meta: dict[str, dict[str, Any]],
    describe: Callable[[str], str | None] | None = None,
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
                    task_ids[task] = ensure_task(conn, task, describe(task) if describe else None)
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
