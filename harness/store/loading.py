"""Loading a bank's task from the database into :class:`~uisbench.store.arrays.BankArrays`.

The only place that turns sample rows into dense matrices: read through the DBAPI cursor
(plain tuples, no SQLAlchemy row objects), or from a columnar copy kept beside a SQLite file
and keyed by the bank's stored digest; answers coded once across models.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Connection, select

from uisbench.errors import UisbenchError
from uisbench.store import schema
from uisbench.store.arrays import BankArrays, ModelArrays, content_digest
from uisbench.store.bank import EMBEDDER_PREFIX, bank_models_meta, get_bank_id

#: Columns of the samples table read per model, in the order :func:`_densify` receives them.
SAMPLE_COLUMNS = """query_id sample_index id answer correct
input_tokens output_tokens cost_usd latency_s logprob score""".split()


def load_arrays(
    conn: Connection, bank: str, task: str, models: Sequence[str] | None = None
) -> BankArrays:
    """Load a bank's samples for one task into dense arrays (the replay working set)."""
    bank_row = (
        conn.execute(select(schema.banks).where(schema.banks.c.name == bank)).mappings().first()
    )
    if bank_row is None:
        get_bank_id(conn, bank)  # raises the standard message
    bank_id = bank_row["id"]
    task_id = conn.execute(select(schema.tasks.c.id).where(schema.tasks.c.name == task)).scalar()
    if task_id is None:
        raise UisbenchError(f"unknown task {task!r} in the database")
    meta = _chosen_models(bank_models_meta(conn, bank), models, bank)
    qrows = _task_queries(conn, bank_id, task_id)
    if not qrows:
        raise UisbenchError(f"bank {bank!r} holds no samples for task {task!r}")
    qids = np.fromiter((r[0] for r in qrows), dtype=np.int64, count=len(qrows))
    frames = {name: _model_samples(conn, bank_id, m["id"]) for name, m in meta.items()}
    # A model's samples of the bank's other tasks are not part of this working set.
    frames = {n: f[np.isin(f["query_id"].to_numpy(), qids)] for n, f in frames.items()}
    arrays, labels = _densify_models(frames, qids)
    arrays_ = BankArrays(
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
        embedders=embedder_meta(conn),
    )
    return replace(arrays_, digest=content_digest(arrays_))


def embedder_meta(conn: Connection) -> dict[str, dict[str, Any]]:
    """Rows of ``models`` named ``embed:KIND`` (their prices), by name."""
    m = schema.models
    rows = conn.execute(select(m).where(m.c.name.startswith(EMBEDDER_PREFIX))).mappings()
    return {r["name"]: dict(r) for r in rows}


def _chosen_models(
    meta: dict[str, dict[str, Any]], models: Sequence[str] | None, bank: str
) -> dict[str, dict[str, Any]]:
    """The bank's model metadata restricted to ``models`` (all when none are named)."""
    if not models:
        return meta
    unknown = [m for m in models if m not in meta]
    if unknown:
        raise UisbenchError(
            f"unknown model(s) {', '.join(unknown)} in bank {bank!r} (it holds: {', '.join(meta)})"
        )
    return {m: meta[m] for m in models}


def _task_queries(conn: Connection, bank_id: int, task_id: int) -> list:
    """(id, query_key, split, prompt) of the task's queries the bank has samples for, by id."""
    q = schema.queries
    return conn.execute(
        select(q.c.id, q.c.query_key, q.c.split, q.c.prompt)
        .where(
            q.c.task_id == task_id,
            q.c.id.in_(
                select(schema.samples.c.query_id)
                .where(schema.samples.c.bank_id == bank_id)
                .distinct()
            ),
        )
        .order_by(q.c.id)
    ).all()


def _model_samples(conn: Connection, bank_id: int, model_id: int) -> pd.DataFrame:
    """One model's sample rows in :data:`SAMPLE_COLUMNS`, as columns (answers as objects).

    Read through the DBAPI cursor (plain tuples, not SQLAlchemy rows), each column turned
    into numpy in one call; from the columnar cache when the bank is unchanged since it was
    written (:func:`_cache_path`).
    """
    cache = _cache_path(conn, bank_id, model_id)
    if cache is not None and cache.is_file():
        try:
            return pyarrow_feather().read_table(cache, memory_map=True).to_pandas()
        except (OSError, ValueError):  # unreadable cache: read the database instead
            pass
    cur = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cur.execute(
            f"SELECT {', '.join(SAMPLE_COLUMNS)} FROM samples WHERE bank_id = {int(bank_id)} "
            f"AND model_id = {int(model_id)}"
        )
        rows = cur.fetchall()
    finally:
        cur.close()
    data = list(zip(*rows)) or [()] * len(SAMPLE_COLUMNS)
    types = {"query_id": np.int64, "sample_index": np.int64, "id": np.int64}
    types.update(answer=object, correct=bool)  # the rest: float, NULL as NaN
    df = pd.DataFrame(
        {c: np.array(v, dtype=types.get(c, float)) for c, v in zip(SAMPLE_COLUMNS, data)}
    )
    if cache is not None:
        _write_cache(cache, df)
    return df


def pyarrow_feather() -> Any:
    import pyarrow.feather

    return pyarrow.feather


#: Columnar copies of loaded samples live beside a SQLite database, in ``DB.arrays/``.
CACHE_SUFFIX = ".arrays"


def _cache_path(conn: Connection, bank_id: int, model_id: int) -> Path | None:
    """``DB.arrays/INSTANCE-BANK-DIGEST-MODEL.arrow`` for a SQLite file, else None.

    Keyed by the bank's stored content digest (kept by every sample write, so any change makes
    a new key) and the database's instance id (ids are per database file).
    """
    if conn.dialect.name != "sqlite" or not conn.engine.url.database:
        return None
    db = conn.engine.url.database
    if db == ":memory:":
        return None
    instance = conn.execute(
        select(schema.meta.c.value).where(schema.meta.c.key == "instance")
    ).scalar()
    b = schema.banks.c
    state = conn.execute(select(b.content_sum).where(b.id == bank_id)).scalar()
    if not instance or not state:
        return None
    name = f"{instance}-{int(bank_id)}-{state[:32]}-{int(model_id)}.arrow"
    return Path(db).with_name(Path(db).name + CACHE_SUFFIX) / name


def _write_cache(path: Path, df: pd.DataFrame) -> None:
    """Write atomically, dropping this bank and model's stale copies; a read-only place or a
    full disk only means no cache."""
    import pyarrow as pa

    instance, bank, _state, model = path.stem.split("-")
    try:
        path.parent.mkdir(exist_ok=True)
        for old in path.parent.glob(f"{instance}-{bank}-*-{model}.arrow"):
            old.unlink(missing_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        pyarrow_feather().write_feather(
            pa.Table.from_pandas(df, preserve_index=False), tmp, compression="uncompressed"
        )
        os.replace(tmp, path)
    except OSError:
        pass


def _densify_models(
    frames: dict[str, pd.DataFrame], qids: np.ndarray
) -> tuple[dict[str, ModelArrays], pd.Index]:
    """Every model's matrices, with answer codes shared across models (so equal answers of two
    models compare equal), and the answer labels the codes index."""
    all_answers = pd.concat([f["answer"] for f in frames.values()], ignore_index=True)
    codes_all, labels = pd.factorize(all_answers, use_na_sentinel=True)
    arrays: dict[str, ModelArrays] = {}
    offset = 0
    for name, df in frames.items():
        codes = codes_all[offset : offset + len(df)]
        offset += len(df)
        arrays[name] = _densify(df, codes, qids)
    return arrays, labels


#: Padded cells of one (queries × samples) array beyond which replay refuses a bank whose
#: cells are mostly padding (80 MB per float array; ten arrays per model).
MAX_PADDED_CELLS = 10_000_000


def _refuse_lopsided(n_queries: int, n_samples: int, held: int) -> None:
    """Dense arrays pad every query to the largest sample count: one query of 10,000 samples
    among thousands of one sample would make gigabytes of padding. A bank of mostly padding
    (cells over 4 × the samples held) larger than MAX_PADDED_CELLS is refused."""
    cells = n_queries * n_samples
    if cells > MAX_PADDED_CELLS and cells > 4 * held:
        raise UisbenchError(
            f"bank too lopsided to replay: one query holds {n_samples} samples of a model that "
            f"has {held} over {n_queries} queries, so dense arrays would pad to {cells} cells "
            f"(limit {MAX_PADDED_CELLS} when most are padding); drop the extra samples"
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
    _refuse_lopsided(Q, S, len(df))
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
