"""Train/test splits: the bank's own split where it has one, else a seeded split from content.

A seeded split is a function of (task name, the query's key in the bank, split seed) only: each
query's side is decided by a hash of those three, so the same bank gets the same split in any
database, whatever was imported before it (no database id enters). Nothing is stored: the split
is recomputed wherever a bank is loaded.
"""

from __future__ import annotations

import hashlib

import numpy as np

from uisbench.store.arrays import BankArrays

TRAIN_FRACTION = 0.3


def seeded_uniform(task: str, query_key: str, seed: int) -> float:
    """A number in [0, 1) fixed by (task, query key, seed): the first 8 bytes of their SHA-256."""
    text = f"{task}\0{query_key}\0{int(seed)}".encode("utf-8", "surrogatepass")
    return int.from_bytes(hashlib.sha256(text).digest()[:8], "big") / 2.0**64


def seeded_split(task: str, query_keys: list[str], seed: int) -> np.ndarray:
    """Split labels: "train" for about :data:`TRAIN_FRACTION` of the queries, else "test"."""
    u = np.fromiter((seeded_uniform(task, k, seed) for k in query_keys), float, len(query_keys))
    return np.where(u < TRAIN_FRACTION, "train", "test").astype(object)


def assign_splits(task: str, bank: BankArrays, seed: int) -> np.ndarray:
    """Split label per query position of ``bank``: the source's where it has one, else the
    seeded one of :func:`seeded_split`."""
    source = bank.splits
    has = np.array([x in ("train", "test") for x in source], dtype=bool)
    if has.all():
        return source.astype(str)
    out = seeded_split(task, bank.query_keys, seed)
    out[has] = source[has]
    return out.astype(str)
