"""The sample bank in the database: import, export and summary.

Every sample is stored once, keyed by (bank, query, model, sample index). A *bank* is a named
generation configuration (an imported file, or a live backend's settings). Loading a bank for
replay is :mod:`uisbench.store.arrays`.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from sqlalchemy import Connection, Engine, func, select

from uisbench.errors import UisbenchError
from uisbench.store import schema, staging
from uisbench.store.bankfile import (
    FlatRow,
    bank_meta_beside,
    bank_name_from_path,
    check_text,
    column_codes,
    count_lines,
    query_keys,
    read_ahead,
    read_blocks,
    read_models_file,
    same_queries,
)
from uisbench.store.dialect import (
    bool_mean,
    copy_insert_ignore,
    copy_insert_new,
    in_parts,
    insert_ignore,
)
from uisbench.store.digest import (
    STORED_COLUMNS,
    VALUE_FIELDS,
    DigestDelta,
    Names,
    same_content,
    stored_columns,
)
from uisbench.store.rowsha import ShaProcess, sha_rows

SAMPLE_COLUMNS = tuple(
    """bank_id query_id model_id sample_index text answer correct score
    input_tokens output_tokens cost_usd latency_s logprob""".split()
)
MODEL_META = tuple(
    """family backend identifier params_total params_active train_tokens
    price_in_per_mtok price_out_per_mtok price_cached_in_per_mtok context_length""".split()
)
CHUNK = 50_000


# ---------------------------------------------------------------- ids, created on first use
def ensure_bank(
    conn: Connection, name: str, source: str, config: dict[str, Any], synthetic: bool = False
) -> int:
    insert_ignore(
        conn,
        schema.banks,
        [{"name": name, "source": source, "config": config, "synthetic": synthetic}],
    )
    return conn.execute(select(schema.banks.c.id).where(schema.banks.c.name == name)).scalar_one()


def ensure_task(conn: Connection, name: str, description: str | None = None) -> int:
    insert_ignore(conn, schema.tasks, [{"name": name, "description": description}])
    return conn.execute(select(schema.tasks.c.id).where(schema.tasks.c.name == name)).scalar_one()


def ensure_models(conn: Connection, meta: dict[str, dict[str, Any]]) -> dict[str, int]:
    """Create models by name; fill metadata columns that are still empty (never overwrite)."""
    insert_ignore(conn, schema.models, [{"name": n} for n in meta])
    rows = conn.execute(
        select(schema.models).where(schema.models.c.name.in_(list(meta)))
    ).mappings()
    ids = {}
    for r in rows:
        ids[r["name"]] = r["id"]
        fill = {k: v for k, v in meta[r["name"]].items() if k in MODEL_META and v is not None}
        fill = {k: v for k, v in fill.items() if r[k] is None}
        if fill:
            conn.execute(schema.models.update().where(schema.models.c.id == r["id"]).values(**fill))
    return ids


def ensure_queries(
    conn: Connection, task_id: int, rows: Sequence[dict[str, Any]]
) -> dict[str, int]:
    """Insert queries (by key) that are new; return key → id for the given rows."""
    insert_ignore(conn, schema.queries, [{"task_id": task_id, **r} for r in rows])
    keys = [r["query_key"] for r in rows]
    out: dict[str, int] = {}
    for part in in_parts(keys):
        q = select(schema.queries.c.query_key, schema.queries.c.id).where(
            schema.queries.c.task_id == task_id, schema.queries.c.query_key.in_(part)
        )
        out.update(dict(conn.execute(q).all()))
    return out


# ---------------------------------------------------------------- import / export
ON_CONFLICT = ("refuse", "replace")


@dataclass
class ImportStats:
    bank: str
    rows: int
    inserted: int
    tasks: list[str]
    models: list[str]
    replaced: int = 0  # queries and samples overwritten under on_conflict="replace"
    unknown_models: list[str] = field(default_factory=list)  # in models.json, not in the bank


def import_file(
    engine: Engine,
    path: Path,
    models_path: Path | None = None,
    name: str | None = None,
    synthetic: bool = False,
    describe: Callable[[str], str | None] | None = None,
    on_conflict: str = "refuse",
) -> ImportStats:
    """Import a flat JSONL(.gz) bank in one transaction: all rows or none.

    Samples already present (same bank, query, model, index) with the same values are
    skipped, so importing the same file twice adds nothing. A sample that differs in any value
    (answer, correctness, text, score, tokens, cost, latency, log-prob), or a query id that
    comes back with another prompt or split, is a conflict: refused (nothing imported), or
    with ``on_conflict="replace"`` overwritten and counted. Provenance (source, licence) is
    read from ``NAME.bank.json`` beside the file when there is one (:func:`bank_meta_beside`).
    ``describe`` gives a new task's description (the task layer knows them; storage does not).
    """
    if on_conflict not in ON_CONFLICT:
        raise UisbenchError(f"on_conflict must be one of {', '.join(ON_CONFLICT)}")
    meta = read_models_file(models_path) if models_path else {}
    name = name or bank_name_from_path(path)
    check_text("bank name", name)
    source = "synthetic" if synthetic else "import"
    config = {"file": path.name, **bank_meta_beside(path)}
    bank = (name, source, config, synthetic)
    held = _held_rows(engine, name)
    # A held bank's file is read first for its digest sum (any database: is it the bank's
    # content?) when it has a line per held sample (else it cannot be: a top-up, a subset, go
    # row by row at once); a new bank's is staged for the columnar import (SQLite).
    if (held and count_lines(path) == held) or (not held and staging.usable(engine)):
        blocks = read_ahead(read_blocks(path))
        with _row_sha(path) as sha, staging.stage(blocks, sha, write=not held) as staged:
            if staged is not None:
                if staged.rows == 0:
                    raise UisbenchError("bank file holds no samples")
                try:
                    if held:
                        return _import_held(engine, staged, name, meta)
                    return _import_staged(engine, staged, bank, meta, describe, sha)
                except staging.Unstageable:
                    pass  # rolled back: the row-by-row import below has the rules
    with engine.begin() as conn:
        bank_id = ensure_bank(conn, *bank)
        with ThreadPoolExecutor(max_workers=1) as hasher, _row_sha(path) as sha:
            replace = on_conflict == "replace"
            importer = _Importer(conn, bank_id, meta, describe, replace, hasher, sha)
            for table in read_ahead(read_blocks(path)):
                importer.add(table)
            stats = importer.finish(name)
    return stats


def _held_rows(engine: Engine, name: str) -> int:
    """Samples the bank ``name`` holds (its digest's row count, one row read; 0 for a new
    bank): an import into a held bank compares its rows with them."""
    b = schema.banks.c
    with engine.connect() as conn:
        return conn.execute(select(b.content_rows).where(b.name == name)).scalar() or 0


def _import_staged(
    engine: Engine,
    staged: staging.Staged,
    bank: tuple[str, str, dict[str, Any], bool],
    meta: dict[str, dict[str, Any]],
    describe: Callable[[str], str | None] | None,
    sha: Callable[[bytes, int], bytes],
) -> ImportStats:
    """Phase 2 of a columnar import (:mod:`uisbench.store.staging`): the bank, its tasks,
    queries and models created as :class:`_Importer` creates them, the samples copied in SQL.
    Raises :class:`staging.Unstageable` (all rolled back) for what only the row-by-row import
    handles: samples held by now, a query held with other content, a repeated sample key."""
    with (
        engine.connect() as conn,
        staged.attached(conn),
        staged.hashing(sha) as lanes,  # the rows' digest sum, on a thread meanwhile
        conn.begin(),
    ):
        bank_id = ensure_bank(conn, *bank)
        held = select(schema.samples.c.id).where(schema.samples.c.bank_id == bank_id).limit(1)
        if conn.execute(held).first() is not None:  # another import came first
            raise staging.Unstageable("the bank holds samples")
        task_ids: dict[str, int] = {}
        query_ids: list[int] = []
        for task, queries in itertools.groupby(staged.queries, key=lambda q: q[0]):
            if task not in task_ids:
                task_ids[task] = ensure_task(conn, task, describe(task) if describe else None)
            rows = [dict(zip(QUERY_FIELDS, q[1:])) for q in queries]
            ensure_queries(conn, task_ids[task], rows)
            stored = _stored_queries(conn, task_ids[task], rows)
            for r in rows:
                qid, *content = stored[r["query_key"]]
                if tuple(content) != tuple(r[f] for f in QUERY_FIELDS[1:]):
                    raise staging.Unstageable("a query is held with other content")
                query_ids.append(qid)
        model_ids = _ensure_file_models(conn, meta, staged.models)
        staged.move(conn, bank_id, query_ids, [model_ids[m] for m in staged.models])
        delta = DigestDelta()
        delta.add_sum(bank_id, lanes(), staged.rows)
        delta.apply(conn)
    unknown = _unknown_models(meta, staged.models)
    return ImportStats(
        bank[0], staged.rows, staged.rows, sorted(task_ids), sorted(staged.models), 0, unknown
    )


def _import_held(
    engine: Engine, staged: staging.Staged, name: str, meta: dict[str, dict[str, Any]]
) -> ImportStats:
    """A held bank's file that holds exactly its samples (same digest sum and row count):
    nothing to add; only model metadata still empty is filled from the models file, as the
    row-by-row import fills it. Raises :class:`staging.Unstageable` otherwise."""
    b = schema.banks.c
    with engine.begin() as conn:
        state = conn.execute(select(b.content_sum, b.content_rows).where(b.name == name)).first()
        if state is None or not same_content(*state, staged.lanes, staged.rows):
            raise staging.Unstageable("the file's content is not the bank's")
        _ensure_file_models(conn, meta, staged.models)
    tasks = sorted({q[0] for q in staged.queries})
    unknown = _unknown_models(meta, staged.models)
    return ImportStats(name, staged.rows, 0, tasks, sorted(staged.models), 0, unknown)


def _ensure_file_models(
    conn: Connection, meta: dict[str, dict[str, Any]], models: Iterable[str]
) -> dict[str, int]:
    """Name → id of the file's models (their models-file metadata fills what is still empty)
    and of the models file's ``embed:KIND`` entries (a router's embedding price: no samples)."""
    priced = {m: meta[m] for m in embedders(meta)}
    return ensure_models(conn, {**priced, **{m: meta.get(m, {}) for m in models}})


def _unknown_models(meta: dict[str, dict[str, Any]], models: Iterable[str]) -> list[str]:
    """The models file's entries the bank file never names (reported, not stored), besides
    its ``embed:KIND`` entries, which are stored and have no samples."""
    return sorted(set(meta) - set(models) - set(embedders(meta)))


#: A query's stored fields, as :func:`ensure_queries` takes them.
QUERY_FIELDS = ("query_key", "split", "prompt", "reference")


#: Bank files at least this big (bytes, as stored) hash their rows in a helper process.
SHA_PROCESS_BYTES = 1 << 20


@contextlib.contextmanager
def _row_sha(path: Path) -> Iterator[Callable[[bytes, int], bytes]]:
    """What hashes an import's new rows: a helper process for a big file (the hashes no longer
    wait on the inserting thread's interpreter lock, :mod:`uisbench.store.rowsha`), this
    process for a small one (starting the helper costs more than its rows)."""
    try:
        big = path.stat().st_size >= SHA_PROCESS_BYTES
    except OSError:
        big = False
    try:
        helper = ShaProcess() if big else None
    except OSError:  # no interpreter to start (an embedded Python): hash here
        helper = None
    if helper is None:
        yield sha_rows
        return
    with helper:
        yield helper


class _Importer:
    """Insert blocks (pyarrow Tables of the flat fields) of one bank, checking conflicts.

    Tasks, queries and models are resolved per distinct value (numpy over dictionary codes),
    not per row; only the sample columns become Python values, for the driver's executemany.
    """

    def __init__(
        self,
        conn: Connection,
        bank_id: int,
        meta: dict[str, dict[str, Any]],
        describe: Callable[[str], str | None] | None,
        replace: bool,
        hasher: ThreadPoolExecutor,
        sha: Callable[[bytes, int], bytes] = sha_rows,
    ) -> None:
        self.conn, self.bank_id, self.meta, self.hasher = conn, bank_id, meta, hasher
        self.sha = sha  # what hashes a chunk's new rows on the hasher thread
        self.describe, self.replace = describe, replace
        self.task_ids: dict[str, int] = {}
        # (task, query key) -> (query id, split, prompt) as stored
        self.queries: dict[tuple[str, str], tuple[int, str | None, str]] = {}
        # Models are created when the bank names them: a models file's others are reported,
        # not stored (80,000 of them were 80,000 inserts).
        # embed:KIND entries (a router's embedding price) are stored: they have no samples.
        priced = {m: meta[m] for m in embedders(meta)}
        self.model_ids: dict[str, int] = dict(ensure_models(conn, priced)) if priced else {}
        self.seen_models: set[str] = set()
        self.rows = self.inserted = self.replaced = 0
        self.names, self.digest = Names(conn), DigestDelta()
        # A bank without samples yet: chunks are inserted whole, and looked up only when the
        # file repeats a key. Otherwise every chunk is looked up by its keys first.
        held = select(schema.samples.c.id).where(schema.samples.c.bank_id == bank_id).limit(1)
        self.fresh = conn.execute(held).first() is None

    def add(self, table: Any) -> None:
        qid, query_conflicts = self._query_ids(table)
        m_code, models = column_codes(table, "model")
        self.seen_models.update(models)
        for m in set(models) - self.model_ids.keys():
            self.model_ids.update(ensure_models(self.conn, {m: self.meta.get(m, {})}))
        mid = np.array([self.model_ids[m] for m in models], dtype=np.int64)[m_code]
        sample_conflicts = self._insert_samples(table, qid, mid)
        if not self.replace:
            _refuse_first(table, query_conflicts, sample_conflicts)
        self.rows += table.num_rows

    def finish(self, name: str) -> ImportStats:
        if self.rows == 0:
            raise UisbenchError("bank file holds no samples")
        self.digest.apply(self.conn)
        self.conn.exec_driver_sql("DROP TABLE IF EXISTS uisbench_ranges")
        unknown = _unknown_models(self.meta, self.seen_models)
        models = sorted(self.seen_models)  # the models file's others: unknown, not stored
        return ImportStats(
            name, self.rows, self.inserted, sorted(self.task_ids), models, self.replaced, unknown
        )

    # -- queries
    def _query_ids(self, table: Any) -> tuple[np.ndarray, np.ndarray]:
        """Query id per row (new queries inserted), and the rows whose prompt or split differ."""
        keys, first, inverse = query_keys(table)
        new = [i for i, k in enumerate(keys) if k not in self.queries]
        if new:
            self._ensure_queries(table, [keys[i] for i in new], first[new])
        conflicts = self._check_queries(table, keys, inverse)
        return np.array([self.queries[k][0] for k in keys], dtype=np.int64)[inverse], conflicts

    def _ensure_queries(self, table: Any, keys: list[tuple[str, str]], rows: np.ndarray) -> None:
        at = pa.array(rows)
        cols = {f: table.column(f).take(at).to_pylist() for f in ("split", "prompt", "reference")}
        by_task: dict[str, list[dict[str, Any]]] = {}
        for j, (task, qkey) in enumerate(keys):
            if task not in self.task_ids:
                desc = self.describe(task) if self.describe else None
                self.task_ids[task] = ensure_task(self.conn, task, desc)
            by_task.setdefault(task, []).append(
                {"query_key": qkey, **{f: c[j] for f, c in cols.items()}}
            )
        for task, qs in by_task.items():
            ensure_queries(self.conn, self.task_ids[task], qs)
            for key, row in _stored_queries(self.conn, self.task_ids[task], qs).items():
                self.queries[(task, key)] = row[:3]

    def _check_queries(self, table: Any, keys: list, inverse: np.ndarray) -> np.ndarray:
        """Rows whose prompt or split differ from those stored for their (task, query id)."""
        stored = [self.queries[k] for k in keys]
        same = same_queries(table, [q[1] for q in stored], [q[2] for q in stored], inverse)
        bad = np.flatnonzero(~same)
        if len(bad) and self.replace:
            self._replace_queries(table, keys, inverse, bad)
        return bad

    def _replace_queries(
        self, table: Any, keys: list, inverse: np.ndarray, bad: np.ndarray
    ) -> None:
        last: dict[int, int] = {int(inverse[r]): int(r) for r in bad}  # the last row wins
        # Every held sample of these queries (any bank) changes its row hash.
        qids = [self.queries[keys[u]][0] for u in last]
        held = _query_samples(self.conn, qids)
        held_cols = stored_columns(held, ("bank_id", *STORED_COLUMNS))
        bank_ids = np.asarray(held_cols["bank_id"], dtype=np.int64)
        before = self.names.rows(held_cols, len(held))
        for u, r in last.items():
            split, prompt, ref = (
                table.column(f)[r].as_py() for f in ("split", "prompt", "reference")
            )
            qid = self.queries[keys[u]][0]
            self.conn.execute(
                schema.queries.update()
                .where(schema.queries.c.id == qid)
                .values(split=split, prompt=prompt, reference=ref)
            )
            self.queries[keys[u]] = (qid, split, prompt)
            self.replaced += 1
        self.names.forget_queries(qids)
        after = self.names.rows(held_cols, len(held))
        for b in np.unique(bank_ids).tolist():
            self.digest.add(b, before[bank_ids == b], sign=-1)
            self.digest.add(b, after[bank_ids == b])

    # -- samples
    def _insert_samples(self, table: Any, qid: np.ndarray, mid: np.ndarray) -> list[int]:
        """Insert; return the rows that conflict with a held sample (replaced if allowed)."""
        n = table.num_rows
        # Columns null in the whole block (often text, score) are left to their default NULL:
        # fewer parameters to bind per row.
        fields = [f for f in ("sample", *SAMPLE_COLUMNS[4:]) if table.column(f).null_count < n]
        columns = [*SAMPLE_COLUMNS[:3], *("sample_index" if f == "sample" else f for f in fields)]
        rest = [table.column(f).to_pylist() for f in fields]
        tuples = list(zip(itertools.repeat(self.bank_id, n), qid.tolist(), mid.tolist(), *rest))
        cols = _hash_columns(table, fields, rest, qid, mid)
        conflicts: list[int] = []
        for lo in range(0, n, CHUNK):
            chunk = tuples[lo : lo + CHUNK]
            part = {c: v[lo : lo + CHUNK] for c, v in cols.items()}
            if self.fresh and self._insert_new(columns, chunk, part):
                continue
            conflicts += self._merge(columns, chunk, part, lo)
        return conflicts

    def _insert_new(self, columns: list[str], chunk: list[tuple], part: dict) -> bool:
        """All rows new (the bank's first import): insert them; False, and nothing written,
        when some key is held already (a duplicate in the file)."""
        # The rows are hashed on the second core while the database takes them.
        lanes = self.hasher.submit(self.names.later(part, len(chunk), self.sha))
        if not copy_insert_new(self.conn, schema.samples, columns, chunk):
            lanes.cancel()
            return False
        self.digest.add(self.bank_id, lanes.result())
        self.inserted += len(chunk)
        return True

    def _merge(self, columns: list[str], chunk: list[tuple], part: dict, offset: int) -> list[int]:
        """Rows against the held samples of the same keys (found by index lookups): new keys
        are inserted, identical rows skipped, any other row is a conflict (any value field:
        answer, correctness, text, score, tokens, cost, latency, log-prob)."""
        key = ["model_id", "query_id", "sample_index"]
        new = pd.DataFrame({k: np.asarray(part[k], dtype=np.int64) for k in key})
        n = len(new)
        held_rows = _held_samples(self.conn, self.bank_id, new.drop_duplicates())
        held_cols = stored_columns(held_rows, (*key, *VALUE_FIELDS))
        held = pd.DataFrame({k: np.asarray(held_cols[k], dtype=np.int64) for k in key})
        held["held"] = np.arange(len(held))
        at = new.merge(held, on=key, how="left")["held"].to_numpy(float)
        is_held = ~np.isnan(at)
        at = np.where(is_held, at, 0).astype(np.int64)
        group = new.groupby(key, sort=False).ngroup().to_numpy()
        first_of = np.zeros(group.max() + 1 if n else 0, dtype=np.int64)
        groups, at_first = np.unique(group, return_index=True)
        first_of[groups] = at_first
        first = first_of[group]  # the first row of each row's key in the chunk
        # What each row is compared with: the held sample, else the key's first row here.
        mine = {f: _column(part, f, n) for f in VALUE_FIELDS}
        ref = {}
        for f in VALUE_FIELDS:
            stored = _column(held_cols, f, len(held_rows))
            ref[f] = np.where(is_held, stored[at] if len(held_rows) else mine[f], mine[f][first])
        differs = np.zeros(n, dtype=bool)
        for f in VALUE_FIELDS:
            differs |= ~_same(mine[f], ref[f])
        fresh = ~is_held & (first == np.arange(n))
        ids = {k: new[k].to_numpy() for k in key}
        if fresh.any():
            rows = [chunk[i] for i in np.flatnonzero(fresh).tolist()]
            self.inserted += copy_insert_ignore(self.conn, schema.samples, columns, rows)
            self.digest.add(self.bank_id, self.names.rows(_take(ids, mine, fresh), len(rows)))
        bad = np.flatnonzero(differs)
        if not len(bad) or not self.replace:
            return (bad + offset).tolist()
        # Replace: per key, the last differing row wins over what is stored.
        last: dict[int, int] = {int(group[r]): int(r) for r in bad.tolist()}
        winners = np.array(sorted(last.values()), dtype=np.int64)
        self.digest.add(self.bank_id, self.names.rows(_take(ids, ref, winners), len(winners)), -1)
        self.digest.add(self.bank_id, self.names.rows(_take(ids, mine, winners), len(winners)))
        sql = f"UPDATE samples SET {', '.join(f'{c} = ?' for c in VALUE_FIELDS)} WHERE " + (
            "bank_id = ? AND model_id = ? AND query_id = ? AND sample_index = ?"
        )
        params = []
        for r in winners.tolist():
            values = tuple(_db_value(mine[f][r]) for f in VALUE_FIELDS)
            params.append((*values, self.bank_id, *(int(ids[k][r]) for k in key)))
        self.conn.exec_driver_sql(_paramstyle(self.conn, sql), params)
        self.replaced += len(params)
        return []


def _column(cols: dict, field: str, n: int) -> np.ndarray:
    """A value field as numpy: float (NaN for null) for numbers, else objects; absent: null."""
    values = cols.get(field)
    if field in ("answer", "text"):
        return np.full(n, None, dtype=object) if values is None else np.asarray(values, object)
    if field == "correct":
        return np.asarray(values, dtype=bool)
    if values is None:
        return np.full(n, np.nan)
    if isinstance(values, np.ndarray) and values.dtype.kind in "fiu":
        return values.astype(np.float64)
    return np.array([np.nan if v is None else v for v in values], dtype=np.float64)


def _same(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if a.dtype.kind == "f":
        return (a == b) | (np.isnan(a) & np.isnan(b))
    return np.asarray(a == b, dtype=bool)


def _take(ids: dict, values: dict, rows: np.ndarray) -> dict:
    return {**{k: v[rows] for k, v in ids.items()}, **{f: v[rows] for f, v in values.items()}}


def _db_value(v: Any) -> Any:
    """A numpy value back to what the driver stores (NaN: NULL)."""
    if v is None or (isinstance(v, float) and v != v):
        return None
    return v.item() if hasattr(v, "item") else v


def _hash_columns(
    table: Any, fields: list[str], rest: list[list], qid: np.ndarray, mid: np.ndarray
) -> dict[str, Any]:
    """The block's columns as the digest's row hash takes them (numbers straight from arrow)."""
    cols: dict[str, Any] = {"query_id": qid, "model_id": mid}
    for f, values in zip(fields, rest):
        name = "sample_index" if f == "sample" else f
        if name in ("answer", "text"):
            cols[name] = values
        else:
            cols[name] = table.column(f).to_numpy(zero_copy_only=False)
    return cols


def _query_samples(conn: Connection, query_ids: list[int]) -> list[tuple]:
    """(bank, STORED_COLUMNS...) of every stored sample of the queries, whatever the bank:
    probes of the unique key's (bank, model) prefix, not a scan of the table."""
    banks = conn.execute(select(schema.banks.c.id)).scalars().all()
    models = conn.execute(select(schema.models.c.id)).scalars().all()
    sc = schema.samples.c
    pairs = [(b, m) for b in banks for m in models]
    if len(pairs) > 10_000:  # a long model list: the pairs that hold samples (one index scan)
        pairs = [tuple(p) for p in conn.execute(select(sc.bank_id, sc.model_id).distinct())]
    cols = [sc.bank_id, *(sc[c] for c in STORED_COLUMNS)]
    out: list[tuple] = []
    for part in in_parts(query_ids):
        for b, m in pairs:
            sel = select(*cols).where(sc.bank_id == b, sc.model_id == m, sc.query_id.in_(part))
            out += [tuple(r) for r in conn.execute(sel)]
    return out


def _held_samples(conn: Connection, bank_id: int, keys: pd.DataFrame) -> list[tuple]:
    """Stored (model, query, sample index, value fields...) of a bank's samples that cover the
    given keys: for each (model, query) of ``keys``, the held samples whose index lies between
    the least and the greatest index asked for it (a caller matches them on the full key; with
    a file's contiguous indices that is exactly the keys). One range scan of the unique key per
    (model, query), not one probe per sample: a temporary table of the ranges joined on them."""
    ranges = keys.groupby(["model_id", "query_id"], sort=True)["sample_index"].agg(["min", "max"])
    conn.exec_driver_sql(
        "CREATE TEMP TABLE IF NOT EXISTS uisbench_ranges "
        "(model_id INTEGER, query_id INTEGER, lo INTEGER, hi INTEGER)"
    )
    conn.exec_driver_sql("DELETE FROM uisbench_ranges")
    rows = list(
        zip(
            ranges.index.get_level_values(0).tolist(),
            ranges.index.get_level_values(1).tolist(),
            ranges["min"].tolist(),
            ranges["max"].tolist(),
        )
    )
    conn.exec_driver_sql(_paramstyle(conn, "INSERT INTO uisbench_ranges VALUES (?, ?, ?, ?)"), rows)
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("ANALYZE uisbench_ranges")  # a plan for the rows it holds now
    values = ", ".join(f"s.{c}" for c in VALUE_FIELDS)
    sql = (
        f"SELECT s.model_id, s.query_id, s.sample_index, {values} FROM uisbench_ranges k "
        # SQLite: CROSS JOIN makes the ranges drive the loop (one range of uq_sample each).
        f"CROSS JOIN samples s WHERE s.bank_id = {int(bank_id)} AND s.model_id = k.model_id "
        "AND s.query_id = k.query_id AND s.sample_index BETWEEN k.lo AND k.hi"
    )
    cur = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cur.execute(sql)
        return cur.fetchall()  # plain tuples: no SQLAlchemy row per sample
    finally:
        cur.close()


def write_samples(conn: Connection, columns: Sequence[str], rows: Sequence[tuple]) -> int:
    """Insert sample rows (``columns`` from :data:`SAMPLE_COLUMNS`, bank first) that are not
    held yet, keeping the bank's digest; rows whose key is held are left as stored.
    Returns the number inserted (recording's writer; imports check conflicts instead)."""
    if not rows:
        return 0
    delta, names = DigestDelta(), Names(conn)
    cols = stored_columns(rows, columns)
    conn.exec_driver_sql("SAVEPOINT uisbench_write")
    added = copy_insert_ignore(conn, schema.samples, columns, rows)
    if added < len(rows):  # some were held: insert only the new ones
        conn.exec_driver_sql("ROLLBACK TO SAVEPOINT uisbench_write")
        key = ["model_id", "query_id", "sample_index"]
        new = pd.DataFrame({k: np.asarray(cols[k], dtype=np.int64) for k in key})
        new["bank_id"] = np.asarray(cols["bank_id"], dtype=np.int64)
        keep = ~new.duplicated(["bank_id", *key])
        for bank_id, group in new[keep].groupby("bank_id"):
            held = pd.DataFrame(
                [r[:3] for r in _held_samples(conn, int(bank_id), group[key])], columns=key
            )
            held["held"] = True
            is_held = group.merge(held, on=key, how="left")["held"].eq(True).to_numpy()
            keep[group.index[is_held]] = False
        rows = [rows[i] for i in np.flatnonzero(keep.to_numpy()).tolist()]
        cols = stored_columns(rows, columns)
        added = copy_insert_ignore(conn, schema.samples, columns, rows)
    conn.exec_driver_sql("RELEASE SAVEPOINT uisbench_write")
    bank_ids = np.asarray(cols["bank_id"], dtype=np.int64) if rows else np.zeros(0, np.int64)
    lanes = names.rows(cols, len(rows))
    for bank_id in np.unique(bank_ids).tolist():
        delta.add(bank_id, lanes[bank_ids == bank_id])
    delta.apply(conn)
    return added


def _refuse_first(table: Any, query_rows: np.ndarray, sample_rows: list[int]) -> None:
    """One line naming the first conflicting row, whichever kind (same for any block cut)."""
    first_q = int(query_rows[0]) if len(query_rows) else None
    first_s = min(sample_rows) if sample_rows else None
    if first_q is None and first_s is None:
        return
    r = min(x for x in (first_q, first_s) if x is not None)
    task, qkey, model, k = (
        table.column(f)[r].as_py() for f in ("task", "query_id", "model", "sample")
    )
    hint = "(import with --on-conflict replace to overwrite it)"
    if r == first_q:
        raise UisbenchError(
            f"query {qkey!r} of task {task!r} is already held with another prompt or split {hint}"
        )
    raise UisbenchError(
        f"sample {k} of model {model!r} on query {qkey!r} of task {task!r} is already held "
        "with other values (another answer or correctness, or another text, score, token "
        f"count, cost, latency or log-prob) {hint}"
    )


def _paramstyle(conn: Connection, sql: str) -> str:
    return sql.replace("?", "%s") if conn.dialect.name == "postgresql" else sql


def _stored_queries(
    conn: Connection, task_id: int, rows: Sequence[dict[str, Any]]
) -> dict[str, tuple[int, str | None, str, str | None]]:
    """Key → (id, split, prompt, reference) as stored, for the given rows' keys."""
    keys = [r["query_key"] for r in rows]
    q = schema.queries.c
    out = {}
    for part in in_parts(keys):
        sel = select(q.query_key, q.id, q.split, q.prompt, q.reference).where(
            q.task_id == task_id, q.query_key.in_(part)
        )
        out.update({k: tuple(rest) for k, *rest in conn.execute(sel).all()})
    return out


def get_bank_id(conn: Connection, name: str) -> int:
    bid = conn.execute(select(schema.banks.c.id).where(schema.banks.c.name == name)).scalar()
    if bid is None:
        known = conn.execute(select(schema.banks.c.name)).scalars().all()
        raise UisbenchError(f"unknown bank {name!r} (known: {', '.join(known) or 'none'})")
    return bid


def export_rows(conn: Connection, bank: str, task: str | None = None) -> Iterable[FlatRow]:
    """Samples of a bank as flat rows, ordered by task, model, query and sample index."""
    bank_id = get_bank_id(conn, bank)
    q = (
        select(
            schema.tasks.c.name,
            schema.queries.c.query_key,
            schema.queries.c.split,
            schema.queries.c.prompt,
            schema.queries.c.reference,
            schema.models.c.name,
            schema.samples.c.sample_index,
            schema.samples.c.answer,
            schema.samples.c.correct,
            schema.samples.c.input_tokens,
            schema.samples.c.output_tokens,
            schema.samples.c.cost_usd,
            schema.samples.c.latency_s,
            schema.samples.c.logprob,
            schema.samples.c.text,
            schema.samples.c.score,
        )
        .join(schema.queries, schema.samples.c.query_id == schema.queries.c.id)
        .join(schema.tasks, schema.queries.c.task_id == schema.tasks.c.id)
        .join(schema.models, schema.samples.c.model_id == schema.models.c.id)
        .where(schema.samples.c.bank_id == bank_id)
        .order_by(
            schema.tasks.c.name,
            schema.models.c.name,
            schema.queries.c.id,
            schema.samples.c.sample_index,
        )
    )
    if task:
        q = q.where(schema.tasks.c.name == task)
    for r in conn.execute(q).yield_per(10_000):
        yield FlatRow(*r[:8], bool(r[8]), *r[9:])


def bank_config(conn: Connection, bank: str) -> dict[str, Any]:
    """The bank's stored configuration (file name, provenance, a live backend's settings)."""
    bank_id = get_bank_id(conn, bank)
    config = conn.execute(
        select(schema.banks.c.config).where(schema.banks.c.id == bank_id)
    ).scalar()
    return dict(config or {})


#: Prefix of the ``models`` rows that price a router's embedding model, not a pool model.
EMBEDDER_PREFIX = "embed:"


def embedders(meta: dict[str, Any]) -> list[str]:
    """Names of a models file's ``embed:KIND`` entries (a router's embedding model)."""
    return [n for n in meta if n.startswith(EMBEDDER_PREFIX)]


def bank_models_meta(conn: Connection, bank: str) -> dict[str, dict[str, Any]]:
    bank_id = get_bank_id(conn, bank)
    ids = select(schema.samples.c.model_id).where(schema.samples.c.bank_id == bank_id).distinct()
    rows = conn.execute(
        select(schema.models).where(schema.models.c.id.in_(ids)).order_by(schema.models.c.name)
    )
    return {r["name"]: dict(r) for r in rows.mappings()}


def info(conn: Connection, bank: str | None = None) -> pd.DataFrame:
    """Per bank, task and model: queries, samples per query, accuracy, mean cost and tokens."""
    q = (
        select(
            schema.banks.c.name.label("bank"),
            schema.banks.c.synthetic,
            schema.tasks.c.name.label("task"),
            schema.models.c.name.label("model"),
            func.count(schema.samples.c.query_id.distinct()).label("queries"),
            func.count().label("samples"),
            bool_mean(schema.samples.c.correct).label("accuracy"),
            func.avg(schema.samples.c.input_tokens).label("input_tokens"),
            func.avg(schema.samples.c.output_tokens).label("output_tokens"),
            func.avg(schema.samples.c.cost_usd).label("cost_usd"),
        )
        .join(schema.banks, schema.samples.c.bank_id == schema.banks.c.id)
        .join(schema.queries, schema.samples.c.query_id == schema.queries.c.id)
        .join(schema.tasks, schema.queries.c.task_id == schema.tasks.c.id)
        .join(schema.models, schema.samples.c.model_id == schema.models.c.id)
        .group_by(
            schema.banks.c.name, schema.banks.c.synthetic, schema.tasks.c.name, schema.models.c.name
        )
        .order_by(schema.banks.c.name, schema.tasks.c.name, schema.models.c.name)
    )
    if bank:
        q = q.where(schema.banks.c.name == bank)
    df = pd.DataFrame(conn.execute(q).mappings().all())
    if df.empty:
        return df
    df["samples_per_query"] = df["samples"] / df["queries"]
    return df
