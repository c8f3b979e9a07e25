"""Text from an untrusted process made safe to show on a terminal.

A strategy plugin's output (what it prints, its error lines) reaches the user's terminal. Left
as they are, control characters there are commands to the terminal, not text: OSC 52
(``ESC ] 52 ;``) sets the clipboard in many terminals, CSI sequences clear the screen or move
the cursor over earlier lines, and a C1 byte (U+0080–U+009F) is the same as ESC plus a letter
to some terminals; bidi controls reorder the text around them. Everything of these but newline
and tab is replaced by U+FFFD, so what was written is still seen, as text.
"""

from __future__ import annotations

import codecs
import contextlib
import os
import re
import threading

#: Embeddings and overrides (U+202A–U+202E), isolates (U+2066–U+2069) and the implicit marks
#: LRM, RLM and ALM (U+200E, U+200F, U+061C): they reorder the text around them ("Trojan
#: Source", CVE-2021-42574). A character class' body, shared with :mod:`uisbench.site.bidi`.
BIDI = "\u200e\u200f\u061c\u202a-\u202e\u2066-\u2069"
#: What a terminal obeys rather than shows: C0 controls but tab and newline, DEL, C1 controls.
_OBEYED = "\x00-\x08\x0b-\x1f\x7f-\x9f"
#: A name holding one is refused where it comes in (bank files, a strategy's description).
COMMANDS = re.compile(f"[{_OBEYED}]")
#: What :func:`printable` replaces: those and the bidi controls (a name may hold these; the
#: CLI's output and the site strip them).
CONTROLS = re.compile(f"[{_OBEYED}{BIDI}]")
SHOWN_INSTEAD = "\ufffd"


def printable(text: str) -> str:
    """``text`` with every control character but newline and tab replaced."""
    return CONTROLS.sub(SHOWN_INSTEAD, text)


def forward(fd: int, name: str = "uisbench-output") -> threading.Thread:
    """Copy what is written on the pipe ``fd`` to this process's stderr (file descriptor 2),
    made :func:`printable` (decoded as UTF-8, bad bytes replaced), until its last writer
    closes it; the thread closes ``fd`` then. It writes to the descriptor, not ``sys.stderr``:
    it holds no lock of this process's, so a ``fork()`` elsewhere (``--jobs`` workers, the
    site's writers) cannot inherit one held."""

    def copy() -> None:
        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        shown = True  # until our stderr fails; the pipe is still read (a writer never blocks)
        try:
            while chunk := os.read(fd, 1 << 16):
                data = printable(decoder.decode(chunk)).encode()
                while data and shown:
                    try:
                        data = data[os.write(2, data) :]
                    except OSError:
                        shown = False
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                os.close(fd)

    thread = threading.Thread(target=copy, name=name, daemon=True)
    thread.start()
    return thread
