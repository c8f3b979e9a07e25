"""Row hashes in a helper process (:mod:`uisbench.store.rowsha`): the same bytes as in this
process, a helper that dies is replaced by this process, and an import that hashes in the
helper stores the digest of one that does not."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np

from uisbench.store import bank
from uisbench.store.digest import bank_digest
from uisbench.store.engine import open_engine
from uisbench.store.rowsha import ShaProcess, sha_rows

SHIPPED = Path(__file__).resolve().parents[2] / "harness" / "data" / "banks"


def test_the_helper_hashes_each_row_as_this_process_does():
    rows = np.random.default_rng(0).integers(0, 256, size=(5000, 185), dtype=np.uint8).tobytes()
    here = sha_rows(rows, 185)
    assert here[:32] == hashlib.sha256(rows[:185]).digest() and len(here) == 5000 * 32
    with ShaProcess() as sha:
        assert sha(rows, 185) == here
        assert sha(rows[: 185 * 3], 185) == here[: 32 * 3]  # the next chunk, same helper
        assert sha(b"", 185) == b""


def test_a_helper_that_died_is_replaced_by_this_process():
    rows = bytes(range(200)) * 10
    with ShaProcess() as sha:
        assert sha._proc is not None
        sha._proc.kill()
        sha._proc.wait()
        assert sha(rows, 50) == sha_rows(rows, 50)
        assert sha._proc is None  # closed: the rest of the import hashes here


def test_an_import_hashing_in_the_helper_stores_the_same_digest(tmp_path, monkeypatch):
    src = SHIPPED / "arith-smoke-cpu-tiny.jsonl.gz"
    digests, helpers = [], []
    real = bank.ShaProcess

    def counted():
        helpers.append(1)
        return real()

    monkeypatch.setattr(bank, "ShaProcess", counted)
    for threshold in (1 << 40, 0):  # never, then always in the helper
        monkeypatch.setattr(bank, "SHA_PROCESS_BYTES", threshold)
        folder = tmp_path / str(threshold)
        folder.mkdir()
        shutil.copy(src, folder / src.name)
        engine = open_engine(str(folder / "db.sqlite"))
        bank.import_file(engine, folder / src.name)
        with engine.connect() as conn:
            digests.append(bank_digest(conn, "arith-smoke-cpu-tiny"))
    assert helpers == [1]
    assert digests[0] == digests[1] and digests[0].startswith("sha256:")


def test_an_import_hashes_here_when_no_helper_can_start(tmp_path, monkeypatch):
    def no_interpreter():
        raise FileNotFoundError("no python here")

    monkeypatch.setattr(bank, "ShaProcess", no_interpreter)
    monkeypatch.setattr(bank, "SHA_PROCESS_BYTES", 0)
    src = SHIPPED / "arith-smoke-cpu-tiny.jsonl.gz"
    engine = open_engine(str(tmp_path / "db.sqlite"))
    stats = bank.import_file(engine, src)
    assert stats.inserted == stats.rows > 0
