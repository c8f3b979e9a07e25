"""A bank's first import into SQLite, columnar: its samples staged by ADBC, then one
``INSERT … SELECT``.

The sqlite3 driver binds Python values only, so a row-by-row import turns every value of every
sample into a Python object and a tuple: beyond parsing, most of an import's time. ADBC's
SQLite driver (``adbc-driver-sqlite``, Apache Arrow) ingests Arrow columns in C. It brings its
own SQLite library, which must never have open a file that uisbench's connection has open (POSIX
locks belong to the process: two SQLite libraries in one process do not see each other's),
cannot write into uisbench's transaction, and SQLite refuses ``ATTACH`` inside a transaction.
So the import is two phases:

1. :func:`stage` (no transaction, the database untouched): parse the file, give each query and
   model a code in the order the file names them, write the sample columns with those codes
   into a scratch file through ADBC, and pack the rows as the bank's digest hashes them (with
   the queries' content as the file states it) into another. ADBC closes its file before
   phase 2.
2. :meth:`Staged.move` (in the import's one transaction, the scratch file attached before it
   began): with the queries and models created by the caller as a row-by-row import creates
   them, copy every sample by one ``INSERT … SELECT`` joined on code → id tables, their
   foreign keys checked once per id; meanwhile :meth:`Staged.hashing` hashes the packed rows
   on the core the copy leaves free.

A bank that holds samples already (in any database, PostgreSQL too) is given a file with a
line per held sample: the file is read the same way without the scratch file, and when its
digest sum and row count are the bank's stored ones (:mod:`uisbench.store.digest`), it holds
exactly the bank's samples and the import adds nothing without comparing them row by row (the
sum is a check for honest files, not against one crafted to collide: such a file is then
reported as adding nothing, and nothing is written). Otherwise the row-by-row import compares
it.

Only the common case goes this way: SQLite, a bank that holds no samples yet, and a file whose
rows agree on each query's split and prompt. The caller checks in phase 2 that the queries it
stores are those the file states (another bank may hold one with another prompt) and that no
sample key repeats (the unique key refuses the copy); if not, it rolls back and imports row by
row, which has the conflict rules, their error lines and ``--on-conflict replace``.
"""

from __future__ import annotations

import contextlib
import importlib.util
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import IO, Any

import numpy as np
import pyarrow as pa
from sqlalchemy import Connection, Engine

from uisbench.errors import UisbenchError
from uisbench.store.bankfile import column_codes, query_keys, same_queries
from uisbench.store.digest import (
    NUMBER_FIELDS,
    ROW_BYTES,
    TEXT_FIELDS,
    fold,
    hash_packed,
    model_hash,
    pack_rows,
    query_hash,
)

#: The sample fields staged, as the bank file names them (``sample`` is ``sample_index``).
STAGED = ("sample", "answer", "correct", "text", "score", *NUMBER_FIELDS[:5])
#: A query as the file states it: (task, key, split, prompt, reference).
Query = tuple[str, str, str | None, str, str | None]


class Unstageable(Exception):
    """Phase 2 found what only the row-by-row import handles; its transaction rolls back."""


def usable(engine: Engine) -> bool:
    """SQLite, with the ADBC driver installed (else every import goes row by row)."""
    found = importlib.util.find_spec("adbc_driver_sqlite") is not None
    return engine.dialect.name == "sqlite" and found


class Staged:
    """What phase 1 learnt of the file: its queries and models by code, its rows' count and
    their digest sum, and the scratch file holding the samples."""

    def __init__(self, file: Path) -> None:
        self.file = file
        self.queries: list[Query] = []  # by code: the order a row-by-row import creates them
        self.models: list[str] = []  # by code: first named first
        self.rows = 0
        self.lanes = np.zeros(4, np.uint64)  # sum of the rows' hashes (store/digest.py)
        self._qcode: dict[tuple[str, str], int] = {}
        self._mcode: dict[str, int] = {}
        self._qhash: list[bytes] = []
        self._mhash: list[bytes] = []
        # Rows packed for their hashes, kept in the scratch folder to be hashed in phase 2
        # (while SQLite copies on one core; phase 1 keeps both busy): None to hash them now.
        self.packed: Path | None = None

    # -- phase 1
    def fill(
        self,
        conn: Any | None,
        blocks: Iterable[Any],
        sha: Callable[[bytes, int], bytes],
        packing: IO[bytes] | None = None,
    ) -> bool:
        """Stage every block (into ``conn``, ADBC's; None: codes and hashes only; the rows
        packed into ``packing`` to be hashed in phase 2, else hashed now); False as soon as two
        rows of a query disagree on its split or prompt (the row-by-row import's conflict, left
        to it)."""
        pending: Future | None = None
        with ThreadPoolExecutor(max_workers=1) as hasher:
            for n, table in enumerate(blocks):
                qcode = self._query_codes(table)
                if qcode is None:
                    return False
                mcode = self._model_codes(table)
                columns = {"qcode": qcode, "mcode": mcode}
                columns.update({f: table.column(f) for f in STAGED})
                if conn is not None:
                    with conn.cursor() as cur:  # ADBC: the Arrow columns, in C
                        mode = "append" if n else "create"
                        cur.adbc_ingest("staged", pa.table(columns), mode=mode)
                # the rows are hashed on another thread (and process) while the next is staged
                if pending is not None:
                    self.lanes = self.lanes + pending.result()
                pending = hasher.submit(self._hash, table, qcode, mcode, sha, packing)
                self.rows += table.num_rows
            if pending is not None:
                self.lanes = self.lanes + pending.result()
        return True

    def _query_codes(self, table: Any) -> np.ndarray | None:
        """Code per row (new queries coded in the row-by-row import's order of creation:
        per block, grouped by task), or None when a row's split or prompt differs from the
        first row of its query."""
        pairs, first, inverse = query_keys(table)
        new = [j for j, k in enumerate(pairs) if k not in self._qcode]
        if new:
            at = pa.array(first[new])
            cols = [table.column(f).take(at).to_pylist() for f in ("split", "prompt", "reference")]
            by_task: dict[str, list[int]] = {}
            for i, j in enumerate(new):
                by_task.setdefault(pairs[j][0], []).append(i)
            for rows in by_task.values():
                for i in rows:
                    task, key = pairs[new[i]]
                    query = (task, key, cols[0][i], cols[1][i], cols[2][i])
                    self._qcode[(task, key)] = len(self.queries)
                    self.queries.append(query)
                    self._qhash.append(query_hash(*query))
        code = np.array([self._qcode[k] for k in pairs], dtype=np.int64)
        known = [self.queries[c] for c in code.tolist()]  # as the query's first row states it
        if not same_queries(table, [q[2] for q in known], [q[3] for q in known], inverse).all():
            return None
        return code[inverse]

    def _model_codes(self, table: Any) -> np.ndarray:
        codes, names = column_codes(table, "model")
        for name in names:
            if name not in self._mcode:
                self._mcode[name] = len(self.models)
                self.models.append(name)
                self._mhash.append(model_hash(name))
        return np.array([self._mcode[m] for m in names], dtype=np.int64)[codes]

    def _hash(
        self,
        table: Any,
        qcode: np.ndarray,
        mcode: np.ndarray,
        sha: Callable[[bytes, int], bytes],
        packing: IO[bytes] | None,
    ) -> np.ndarray:
        """Sum of the block's row hashes (the digest's layout, the file's query content); zero
        when the packed rows are kept (``packing``) for :meth:`hashing`."""
        qh = np.frombuffer(b"".join(self._qhash[: int(qcode.max()) + 1]), dtype="V32")[qcode]
        mh = np.frombuffer(b"".join(self._mhash[: int(mcode.max()) + 1]), dtype="V32")[mcode]
        cols: dict[str, Any] = {
            "sample_index": table.column("sample").to_numpy(),
            "correct": table.column("correct").to_numpy(zero_copy_only=False),
        }
        for f in TEXT_FIELDS:
            cols[f] = table.column(f)  # Arrow: hashed per distinct value (store/digest.py)
        for f in NUMBER_FIELDS:
            cols[f] = table.column(f).to_numpy(zero_copy_only=False)
        packed = pack_rows(qh, mh, cols, table.num_rows)
        if packing is not None:
            packing.write(packed)
            return np.zeros(4, np.uint64)
        return fold(hash_packed(packed, sha))

    @contextlib.contextmanager
    def hashing(self, sha: Callable[[bytes, int], bytes]) -> Iterator[Callable[[], np.ndarray]]:
        """The rows' digest sum, hashed from the kept packed rows on a thread while the caller
        copies them; yields the function that waits for it. Leaving early stops the thread."""
        if self.packed is None:
            yield lambda: self.lanes
            return
        stop = threading.Event()

        def hash_all() -> np.ndarray:
            total = self.lanes.copy()
            with open(self.packed, "rb") as fh:  # type: ignore[arg-type]
                while not stop.is_set() and (buf := fh.read(ROW_BYTES * 50_000)):
                    total = total + fold(hash_packed(buf, sha))
            return total

        with ThreadPoolExecutor(max_workers=1) as pool:
            done = pool.submit(hash_all)
            try:
                yield done.result
            finally:
                stop.set()

    # -- phase 2
    @contextlib.contextmanager
    def attached(self, conn: Connection) -> Iterator[None]:
        """The scratch file attached to ``conn``'s database connection, which must not be in
        a transaction yet (SQLite refuses ``ATTACH`` in one); detached afterwards."""
        raw: Any = conn.connection.dbapi_connection
        raw.execute("ATTACH DATABASE ? AS uisbench_stage", (str(self.file),))
        # Foreign keys checked set-wise by move() (as on PostgreSQL, store/dialect.py), not per
        # copied row; the pragma is a no-op inside a transaction, so it is set here.
        raw.execute("PRAGMA foreign_keys = OFF")
        try:
            yield
        finally:
            try:
                raw.execute("PRAGMA foreign_keys = ON")
                raw.execute("DETACH DATABASE uisbench_stage")
            except Exception:  # never hand the pool a connection without its foreign keys
                conn.invalidate()
                raise

    def move(
        self, conn: Connection, bank_id: int, query_ids: list[int], model_ids: list[int]
    ) -> None:
        """Copy every staged sample into ``samples`` (file order, so ids as a row-by-row
        import gives them); ``query_ids``/``model_ids``: database id by code. Raises
        :class:`Unstageable` (and writes nothing) when a sample key repeats."""
        from sqlalchemy.exc import IntegrityError

        for name, ids in (("qmap", query_ids), ("mmap", model_ids)):
            conn.exec_driver_sql(
                f"CREATE TEMP TABLE uisbench_{name} (code INTEGER PRIMARY KEY, id INTEGER NOT NULL)"
            )
            conn.exec_driver_sql(f"INSERT INTO uisbench_{name} VALUES (?, ?)", list(enumerate(ids)))
        # What the per-row foreign-key checks would check, once per id: every query and model
        # id exists, and the bank (ids read in this write transaction: never missing unless a
        # caller passed others).
        missing = conn.exec_driver_sql(
            "SELECT (SELECT count(*) FROM uisbench_qmap m LEFT JOIN queries t ON t.id = m.id "
            "WHERE t.id IS NULL) + (SELECT count(*) FROM uisbench_mmap m LEFT JOIN models t "
            f"ON t.id = m.id WHERE t.id IS NULL) + (SELECT count(*) = 0 FROM banks WHERE id = "
            f"{int(bank_id)})"
        ).scalar()
        if missing:
            raise UisbenchError(f"columnar import: {missing} referenced ids are not stored")
        values = ", ".join(f"s.{f}" for f in STAGED[1:])
        columns = ", ".join(STAGED[1:])
        conn.exec_driver_sql("SAVEPOINT uisbench_move")
        try:
            conn.exec_driver_sql(
                f"INSERT INTO samples (bank_id, query_id, model_id, sample_index, {columns}) "
                f"SELECT {int(bank_id)}, q.id, m.id, s.sample, {values} "
                "FROM uisbench_stage.staged s "
                "JOIN uisbench_qmap q ON q.code = s.qcode JOIN uisbench_mmap m ON m.code = s.mcode "
                "ORDER BY s.rowid"
            )
        except IntegrityError:  # a key the file repeats: the row-by-row import compares them
            conn.exec_driver_sql("ROLLBACK TO SAVEPOINT uisbench_move")
            raise Unstageable("a sample key repeats") from None
        finally:
            conn.exec_driver_sql("RELEASE SAVEPOINT uisbench_move")
            conn.exec_driver_sql("DROP TABLE uisbench_qmap")
            conn.exec_driver_sql("DROP TABLE uisbench_mmap")


@contextlib.contextmanager
def stage(
    blocks: Iterable[Any], sha: Callable[[bytes, int], bytes], write: bool = True
) -> Iterator[Staged | None]:
    """Phase 1 into a scratch folder (removed afterwards): the staged file, or None when the
    file's rows disagree on a query or the scratch file cannot be written (a full disk: the
    row-by-row import needs no scratch space). The file's own errors are raised as read.
    ``write=False``: the queries, models and digest sum only (is the file a held bank's
    content?), no scratch file."""
    if not write:
        staged = Staged(Path())
        yield staged if staged.fill(None, blocks, sha) else None
        return
    import adbc_driver_sqlite.dbapi as adbc
    from adbc_driver_manager import Error as AdbcError

    with tempfile.TemporaryDirectory(prefix="uisbench-stage-") as folder:
        staged = Staged(Path(folder) / "samples.db")
        try:
            conn = adbc.connect(str(staged.file), autocommit=True)
        except AdbcError:
            yield None
            return
        try:
            with conn.cursor() as cur:  # a scratch file: nothing to keep if this process dies
                cur.execute("PRAGMA journal_mode = OFF")
                cur.execute("PRAGMA synchronous = OFF")
            staged.packed = Path(folder) / "rows.bin"
            with open(staged.packed, "wb") as packing:
                ok = staged.fill(conn, blocks, sha, packing)
        except (AdbcError, OSError):  # a full disk: the row-by-row import needs no scratch
            ok = False
        finally:
            conn.close()  # before phase 2 opens the file (see the module docstring)
        yield staged if ok else None
