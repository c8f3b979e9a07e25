"""One sha256 per fixed-width row, in this process or in a helper process of its own.

A bank's digest needs one sha256 per stored sample (:mod:`uisbench.store.digest`). In Python
that is a loop holding the interpreter lock for about a microsecond a row, and during an
import it ran on a thread beside the one inserting rows, which then waited for the lock: a
1M-row import took 8.2–8.4 s with the hashes and 7.0 s without. :class:`ShaProcess` runs the
same loop in a child interpreter (``python -I -c``: the standard library only, no pickling, no
fork of a threaded process); the importing thread only writes each chunk's packed rows to its
pipe and reads the digests back, with the lock released while it waits. The digests are the
same bytes either way (a test compares them).
"""

from __future__ import annotations

import hashlib
import struct
import subprocess
import sys
from typing import IO

#: The child: reads (rows, width) and rows × width bytes, writes rows × 32 bytes of sha256.
CHILD = """
import hashlib, struct, sys
inp, out, sha = sys.stdin.buffer, sys.stdout.buffer, hashlib.sha256
while True:
    head = inp.read(16)
    if len(head) < 16:
        break
    n, w = struct.unpack("<QQ", head)
    buf = inp.read(n * w)
    if len(buf) < n * w:
        break
    out.write(b"".join([sha(buf[i : i + w]).digest() for i in range(0, n * w, w)]))
    out.flush()
"""


def sha_rows(buf: bytes, width: int) -> bytes:
    """sha256 of each ``width``-byte row of ``buf``, concatenated (32 bytes a row)."""
    sha = hashlib.sha256  # one call per row: no helper in the loop
    return b"".join([sha(buf[i : i + width]).digest() for i in range(0, len(buf), width)])


class ShaProcess:
    """:func:`sha_rows` in a child interpreter; falls back to this process if the child is
    gone. Called from one thread at a time; :meth:`close` ends the child."""

    def __init__(self) -> None:
        self._proc: subprocess.Popen | None = subprocess.Popen(
            [sys.executable, "-I", "-c", CHILD],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )

    def __call__(self, buf: bytes, width: int) -> bytes:
        proc = self._proc
        if proc is None or not buf:
            return sha_rows(buf, width)
        n = len(buf) // width
        try:
            assert proc.stdin is not None and proc.stdout is not None
            proc.stdin.write(struct.pack("<QQ", n, width))
            proc.stdin.write(buf)
            proc.stdin.flush()
            out = _read_exact(proc.stdout, 32 * n)
        except (OSError, ValueError, EOFError):
            self.close()
            return sha_rows(buf, width)
        return out

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        for pipe in (proc.stdin, proc.stdout):
            try:
                if pipe is not None:
                    pipe.close()
            except OSError:
                pass
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def __enter__(self) -> ShaProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _read_exact(stream: IO[bytes], n: int) -> bytes:
    parts, left = [], n
    while left:
        part = stream.read(left)
        if not part:
            raise EOFError("the hashing process ended")
        parts.append(part)
        left -= len(part)
    return b"".join(parts)
