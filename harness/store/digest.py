"""A bank's content digest: the sha256 that says two databases hold the same samples.

Bank names are chosen by whoever imports a file, so a name alone cannot tell a regression gate
that a baseline and a candidate replayed the same data. The digest is a function of the stored
content only, so it is the same for a bank imported from ``.jsonl`` or ``.jsonl.gz``, into
SQLite or PostgreSQL, in any insertion order, in one import or many, or recorded live.

It is kept up to date as samples are written, never recomputed per read: each stored sample
has a row hash (sha256 of its query's content, its model's name and its own fields, in a fixed
binary layout), and a bank holds the sum of its rows' hashes (four 64-bit lanes, each modulo
2^64: a multiset hash, so order does not matter and a replaced sample is subtracted and added
back) and its row count, in ``banks.content_sum`` / ``banks.content_rows``. The published
digest is the sha256 of that state (:func:`bank_digest`). Writers call :class:`DigestDelta`;
:func:`recompute_state` computes the same state from the rows (schema upgrade, tests).

Strength: any accidental or ordinary change of the content changes the digest, but a sum of
hashes in a 256-bit group is weaker than one sha256 over sorted rows against someone who sets
out to build a *second* sample set with the same sum (a generalized-birthday search over many
candidate rows, on the order of 2^31 hashes). It says "same content" to a gate comparing
honest imports; a wider group (more lanes per row) would be the remedy if banks from hostile
authors must be told apart by digest alone.

This is the *whole bank's* digest (provenance on the site, the gate's same-bank check). A run's
identity uses :func:`uisbench.store.arrays.content_digest` instead: the digest of the working
set a replay loads (one task, the chosen models), computed from the arrays already in memory,
so that adding another task or model to a bank does not invalidate runs that never saw it.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Connection, select

from uisbench.store import schema
from uisbench.store.dialect import in_parts, insert_ignore
from uisbench.store.rowsha import sha_rows

VERSION = b"uisbench bank content v2\0"
#: The sample fields hashed besides the query and the model, in layout order.
TEXT_FIELDS = ("answer", "text")
NUMBER_FIELDS = ("input_tokens", "output_tokens", "cost_usd", "latency_s", "logprob", "score")
#: Every value field of a sample (what a conflict compares; what the row hash covers).
VALUE_FIELDS = ("answer", "correct", "text", "score", *NUMBER_FIELDS[:5])
ZERO = "0" * 64

_ROW = np.dtype(
    [
        ("query", "V32"),
        ("model", "V32"),
        ("answer", "V32"),
        ("text", "V32"),
        ("sample_index", "<i8"),
        ("correct", "u1"),
        *((f, "<f8") for f in NUMBER_FIELDS),
    ]
)


def _sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _text_hash(value: str | None) -> bytes:
    if value is None:
        return _sha(b"\0")
    return _sha(b"\1" + value.encode("utf-8", "surrogatepass"))


def query_hash(task: str, key: str, split: str | None, prompt: str, ref: str | None) -> bytes:
    """What a sample's row hash takes from its query (the query's stored content)."""
    text = json.dumps([task, key, split, prompt, ref], ensure_ascii=False)
    return _sha(text.encode("utf-8", "surrogatepass"))


def model_hash(name: str) -> bytes:
    return _sha(json.dumps(name, ensure_ascii=False).encode("utf-8", "surrogatepass"))


def _texts(values: Any) -> np.ndarray:
    """Hash per value, computed once per distinct value (answers repeat a lot). ``values``:
    a sequence, or an Arrow (chunked) array, encoded in C++ without a Python object a row."""
    if hasattr(values, "dictionary_encode"):  # Arrow, chunked or not
        if hasattr(values, "combine_chunks"):
            values = values.combine_chunks()
        enc = values.dictionary_encode()
        uniques = enc.dictionary.to_pylist()
        codes = enc.indices.fill_null(len(uniques)).to_numpy(zero_copy_only=False)
    else:
        codes, uniques = pd.factorize(np.asarray(values, dtype=object), use_na_sentinel=True)
    table = [_text_hash(u) for u in uniques] + [_text_hash(None)]
    return np.frombuffer(b"".join(table), dtype="V32")[codes]


def _numbers(values: Any) -> np.ndarray:
    """float64 with one NaN for null, and no negative zero (SQLite does not keep it)."""
    if isinstance(values, np.ndarray) and values.dtype.kind in "fiu":
        out = values.astype(np.float64) + 0.0
    else:
        out = pd.to_numeric(pd.Series(values, dtype=object), errors="coerce").to_numpy(float)
        out = out + 0.0
    out[np.isnan(out)] = np.nan
    return out


def row_hashes(
    qhash: np.ndarray,
    mhash: np.ndarray,
    cols: Mapping[str, Any],
    n: int,
    sha: Callable[[bytes, int], bytes] = sha_rows,
) -> np.ndarray:
    """(n, 4) uint64 lanes of each row's sha256. ``qhash``/``mhash``: (n,) V32 per row;
    ``cols``: sample_index, correct and the value fields (a missing field is all null);
    ``sha``: what hashes the packed rows (:mod:`uisbench.store.rowsha`)."""
    return hash_packed(pack_rows(qhash, mhash, cols, n), sha)


def pack_rows(qhash: np.ndarray, mhash: np.ndarray, cols: Mapping[str, Any], n: int) -> bytes:
    """The rows in the fixed binary layout their sha256 is taken of (:data:`ROW_BYTES` each);
    arguments as :func:`row_hashes`."""
    rows = np.zeros(n, dtype=_ROW)
    rows["query"], rows["model"] = qhash, mhash
    for f in TEXT_FIELDS:
        rows[f] = _texts(cols[f]) if f in cols else _text_hash(None)
    rows["sample_index"] = np.asarray(cols["sample_index"], dtype=np.int64)
    rows["correct"] = np.asarray(cols["correct"], dtype=bool)
    for f in NUMBER_FIELDS:
        rows[f] = _numbers(cols[f]) if f in cols else np.nan
    return rows.tobytes()


#: Bytes of a packed row (:func:`pack_rows`).
ROW_BYTES = _ROW.itemsize


def hash_packed(packed: bytes, sha: Callable[[bytes, int], bytes] = sha_rows) -> np.ndarray:
    """(n, 4) uint64 lanes of each packed row's sha256."""
    return np.frombuffer(sha(packed, ROW_BYTES), dtype="<u8").reshape(-1, 4)


def fold(lanes: np.ndarray) -> np.ndarray:
    """Sum of row hashes, lane by lane, modulo 2^64."""
    return lanes.sum(axis=0, dtype=np.uint64) if len(lanes) else np.zeros(4, np.uint64)


def _lanes(state: str) -> np.ndarray:
    return np.frombuffer(bytes.fromhex(state), dtype="<u8").copy()


def _hex(lanes: np.ndarray) -> str:
    return lanes.astype("<u8").tobytes().hex()


def same_content(state: str, rows: int, lanes: np.ndarray, count: int) -> bool:
    """Whether a stored state and row count are those of rows with the given folded sum."""
    return rows == count and bool(np.array_equal(_lanes(state), lanes.astype(np.uint64)))


def digest_of(state: str, rows: int) -> str:
    """The published digest of a stored state: ``sha256:<hex>``."""
    data = VERSION + bytes.fromhex(state) + rows.to_bytes(8, "little")
    return "sha256:" + hashlib.sha256(data).hexdigest()


def bank_digest(conn: Connection, bank: str) -> str:
    """``sha256:<hex>`` of the bank's samples (see the module docstring): one row read."""
    from uisbench.store.bank import get_bank_id

    bank_id = get_bank_id(conn, bank)
    b = schema.banks.c
    state, rows = conn.execute(select(b.content_sum, b.content_rows).where(b.id == bank_id)).one()
    return digest_of(state, rows)


class Names:
    """Query and model hashes by database id, read from the stored rows once."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.queries: dict[int, bytes] = {}
        self.models: dict[int, bytes] = {}

    def forget_queries(self, ids: Iterable[int]) -> None:
        for i in ids:
            self.queries.pop(int(i), None)

    def _per_row(self, ids: Any, cache: dict[int, bytes], fetch: Any) -> np.ndarray:
        ids = np.asarray(ids, dtype=np.int64)
        uniq, inverse = np.unique(ids, return_inverse=True)
        missing = [int(i) for i in uniq.tolist() if int(i) not in cache]
        for part in in_parts(missing):
            cache.update(fetch(part))
        table = b"".join(cache[int(i)] for i in uniq.tolist())
        return np.frombuffer(table, dtype="V32")[inverse.ravel()] if len(ids) else table

    def rows(self, cols: Mapping[str, Any], n: int) -> np.ndarray:
        """Row hash lanes of samples given as columns (query_id, model_id, fields)."""
        return self.later(cols, n)()

    def later(
        self, cols: Mapping[str, Any], n: int, sha: Callable[[bytes, int], bytes] = sha_rows
    ) -> Callable[[], np.ndarray]:
        """:meth:`rows` in two steps: the query and model hashes are read now (the database,
        on this thread), the rows hashed when the returned function is called (no database:
        another thread may run it while this one writes), by ``sha``."""
        if n == 0:
            return lambda: np.zeros((0, 4), np.uint64)
        q = self._per_row(cols["query_id"], self.queries, self._fetch_queries)
        m = self._per_row(cols["model_id"], self.models, self._fetch_models)
        return lambda: row_hashes(q, m, cols, n, sha)

    def _fetch_queries(self, ids: list[int]) -> dict[int, bytes]:
        q, t = schema.queries.c, schema.tasks.c
        sel = select(q.id, t.name, q.query_key, q.split, q.prompt, q.reference).join(
            schema.tasks, q.task_id == t.id
        )
        rows = self.conn.execute(sel.where(q.id.in_(ids))).all()
        return {r[0]: query_hash(*r[1:]) for r in rows}

    def _fetch_models(self, ids: list[int]) -> dict[int, bytes]:
        m = schema.models.c
        rows = self.conn.execute(select(m.id, m.name).where(m.id.in_(ids))).all()
        return {i: model_hash(name) for i, name in rows}


class DigestDelta:
    """Rows added to and removed from banks in one transaction; :meth:`apply` stores them."""

    def __init__(self) -> None:
        self.sums: dict[int, np.ndarray] = {}
        self.counts: dict[int, int] = {}

    def add(self, bank_id: int, lanes: np.ndarray, sign: int = 1) -> None:
        total = fold(lanes)
        if sign < 0:
            total = np.zeros(4, np.uint64) - total
        self.sums[bank_id] = self.sums.get(bank_id, np.zeros(4, np.uint64)) + total
        self.counts[bank_id] = self.counts.get(bank_id, 0) + sign * len(lanes)

    def add_sum(self, bank_id: int, lanes: np.ndarray, rows: int) -> None:
        """Rows added, given as their folded sum (:func:`fold`) and count."""
        self.sums[bank_id] = self.sums.get(bank_id, np.zeros(4, np.uint64)) + lanes
        self.counts[bank_id] = self.counts.get(bank_id, 0) + rows

    def apply(self, conn: Connection) -> None:
        b = schema.banks.c
        for bank_id, delta in self.sums.items():
            state, rows = conn.execute(
                select(b.content_sum, b.content_rows).where(b.id == bank_id).with_for_update()
            ).one()
            conn.execute(
                schema.banks.update()
                .where(b.id == bank_id)
                .values(
                    content_sum=_hex(_lanes(state) + delta),
                    content_rows=rows + self.counts[bank_id],
                )
            )
        self.sums.clear()
        self.counts.clear()


#: Columns read back from ``samples`` to hash stored rows.
STORED_COLUMNS = ("query_id", "model_id", "sample_index", *VALUE_FIELDS)


def stored_columns(rows: Sequence[tuple], columns: Sequence[str] = STORED_COLUMNS) -> dict:
    data = list(zip(*rows)) if rows else [()] * len(columns)
    return {c: np.asarray(v, dtype=object) for c, v in zip(columns, data)}


def recompute_state(conn: Connection, bank_id: int, chunk: int = 200_000) -> tuple[str, int]:
    """The stored state computed from every row of the bank (schema upgrade, checks)."""
    names = Names(conn)
    total, count = np.zeros(4, np.uint64), 0
    cur = conn.exec_driver_sql(
        f"SELECT {', '.join(STORED_COLUMNS)} FROM samples WHERE bank_id = {int(bank_id)}"
    )
    while rows := cur.fetchmany(chunk):
        total = total + fold(names.rows(stored_columns(rows), len(rows)))
        count += len(rows)
    return _hex(total), count


def upgrade_from_3(engine: Any) -> None:
    """Schema 3 → 4: add the digest state to ``banks`` and compute it once per bank.

    Runs made under schema 3 are dropped with their decisions: their test split was drawn by
    the database's task id (it depended on what was imported first) and their key holds no
    strategy code version, so they cannot be told apart from, or averaged with, new runs.
    The samples, the bank's content, are kept."""
    with engine.begin() as conn:
        found = conn.execute(
            select(schema.meta.c.value).where(schema.meta.c.key == "schema_version")
        ).scalar()
        if found != "3":  # another process upgraded it while this one waited for the lock
            return
        conn.exec_driver_sql(
            f"ALTER TABLE banks ADD COLUMN content_sum VARCHAR(64) NOT NULL DEFAULT '{ZERO}'"
        )
        conn.exec_driver_sql("ALTER TABLE banks ADD COLUMN content_rows INTEGER NOT NULL DEFAULT 0")
        conn.execute(schema.decisions.delete())
        conn.execute(schema.runs.delete())
        for bank_id in conn.execute(select(schema.banks.c.id)).scalars().all():
            state, rows = recompute_state(conn, bank_id)
            conn.execute(
                schema.banks.update()
                .where(schema.banks.c.id == bank_id)
                .values(content_sum=state, content_rows=rows)
            )
        conn.execute(
            schema.meta.update().where(schema.meta.c.key == "schema_version").values(value="4")
        )  # then 4 -> 5 (store/runs.py)
        insert_ignore(conn, schema.meta, [{"key": "instance", "value": uuid.uuid4().hex}])
