"""Columnar bank loading: the cache beside the database gives the same arrays as the rows,
and any write to the bank (new digest) makes it miss."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import numpy as np

from tests.fakes import FakeBank, FakeModel, write_jsonl
from uisbench.store.arrays import BankArrays
from uisbench.store.bank import import_file
from uisbench.store.engine import open_engine
from uisbench.store.loading import CACHE_SUFFIX, load_arrays

BANK = FakeBank(
    models=(FakeModel("small", 0.3, samples=3, cost_usd=1e-6), FakeModel("big", 0.8, 2)),
    queries=5,
)


def same(a: BankArrays, b: BankArrays) -> bool:
    if (
        a.digest != b.digest
        or list(a.query_ids) != list(b.query_ids)
        or a.models.keys() != b.models.keys()
    ):
        return False
    for name, m in a.models.items():
        for f in fields(m):
            x, y = getattr(m, f.name), getattr(b.models[name], f.name)
            if not np.array_equal(x, y, equal_nan=x.dtype.kind == "f"):
                return False
    return list(a.answer_labels) == list(b.answer_labels)


def test_cache_gives_the_rows_and_misses_after_a_write(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    engine = open_engine(str(db))
    rows = BANK.rows()
    import_file(engine, write_jsonl(tmp_path / "toy.jsonl", rows))
    with engine.connect() as conn:
        first = load_arrays(conn, "toy", "toy")
    cache = Path(f"{db}{CACHE_SUFFIX}")
    files = sorted(cache.glob("*.arrow"))
    assert len(files) == 2  # one per model
    with engine.connect() as conn:
        again = load_arrays(conn, "toy", "toy")
    assert same(first, again)
    # A changed cost replaces the row: the digest changes, the cache misses and is rewritten.
    changed = [dict(rows[0], cost_usd=1.0), *rows[1:]]
    import_file(engine, write_jsonl(tmp_path / "toy.jsonl", changed), on_conflict="replace")
    with engine.connect() as conn:
        after = load_arrays(conn, "toy", "toy")
    assert after.digest != first.digest
    model = rows[0]["model"]
    assert np.nanmax(after.models[model].cost_usd) == 1.0
    assert len(sorted(cache.glob("*.arrow"))) == 2  # stale copies removed
    # And it is what the rows give without any cache.
    for f in cache.glob("*.arrow"):
        f.unlink()
    cache.rmdir()
    cache.write_text("not a folder")  # an unwritable cache place only means no cache
    with engine.connect() as conn:
        assert same(load_arrays(conn, "toy", "toy"), after)


def test_a_task_loads_only_its_own_samples(tmp_path: Path) -> None:
    engine = open_engine(str(tmp_path / "t.db"))
    rows = BANK.rows()
    other = [dict(r, task="other", query_id="o-" + r["query_id"]) for r in rows[:7]]
    import_file(engine, write_jsonl(tmp_path / "toy.jsonl", rows + other))
    with engine.connect() as conn:
        arrays = load_arrays(conn, "toy", "toy")
        alone = load_arrays(conn, "toy", "other")
    assert sum(int(m.n_avail.sum()) for m in arrays.models.values()) == len(rows)
    assert sum(int(m.n_avail.sum()) for m in alone.models.values()) == len(other)
