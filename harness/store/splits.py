"""Train/test splits: the bank's own split where it has one, else a seeded split stored in SQL."""

from __future__ import annotations

import numpy as np
from sqlalchemy import Connection, select

from uisbench.store import schema as s
from uisbench.store.arrays import BankArrays
from uisbench.store.dialect import insert_ignore

TRAIN_FRACTION = 0.3


def assign_splits(conn: Connection, task_id: int, bank: BankArrays, seed: int) -> np.ndarray:
    """Split label per query position of ``bank``: the source's, else the stored seeded one.

    A seeded split is drawn once per (task, seed) over the queries seen so far and stored, so
    later runs with the same seed get the same split even after more queries were added.
    """
    source = bank.splits
    if all(x in ("train", "test") for x in source):
        return source.astype(str)
    stored = _stored_splits(conn, task_id, seed)
    missing = [i for i, qid in enumerate(bank.query_ids.tolist()) if qid not in stored]
    if missing:
        rng = np.random.default_rng([seed, task_id])
        is_train = rng.random(len(missing)) < TRAIN_FRACTION
        rows = [
            {
                "task_id": task_id,
                "seed": seed,
                "query_id": int(bank.query_ids[i]),
                "split": "train" if t else "test",
            }
            for i, t in zip(missing, is_train)
        ]
        insert_ignore(conn, s.splits, rows)
        stored = _stored_splits(conn, task_id, seed)
    out = np.array([stored[q] for q in bank.query_ids.tolist()], dtype=object)
    # A source split where present wins over the seeded one.
    has = np.array([x in ("train", "test") for x in source])
    out[has] = source[has]
    return out.astype(str)


def _stored_splits(conn: Connection, task_id: int, seed: int) -> dict[int, str]:
    """Query id → "train"/"test" of the seeded split stored for (task, seed)."""
    sp = s.splits
    q = select(sp.c.query_id, sp.c.split).where(sp.c.task_id == task_id, sp.c.seed == seed)
    return dict(conn.execute(q).all())
