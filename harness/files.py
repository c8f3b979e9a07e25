"""Files this process did not write, read within bounds.

A path named on the command line or found beside a bank (a result file, a models file, a
strategy's source) may be a FIFO or a device, whose reading blocks or never ends, or far larger
than anything real, whose reading fills the memory: :func:`read_bounded` refuses both in one line.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from uisbench.errors import UisbenchError

#: Bytes of a strategy's source read in this process (a file named by reference, a plugin's
#: module hashed for its code version): far above any real one.
MAX_SOURCE_BYTES = 16 << 20


def read_bounded(path: Path, limit: int) -> bytes:
    """The bytes of the regular file ``path``, or one line: a FIFO or a device (reading would
    block, or never end) or a file of more than ``limit`` bytes (it would fill the memory)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # a FIFO with no writer: no wait
    except OSError as exc:
        raise UisbenchError(f"{path.name}: {exc.strerror or exc}") from None
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise UisbenchError(f"{path.name}: not a regular file")
        data = fh.read(limit + 1)  # the size it had when opened may have grown since
    if len(data) > limit:
        raise UisbenchError(f"{path.name}: larger than {limit / 1e6:,.0f} MB")
    return data
