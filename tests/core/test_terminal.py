"""Text from an untrusted process shown on a terminal: controls replaced, text kept."""

from __future__ import annotations

import os

from uisbench.terminal import SHOWN_INSTEAD, forward, printable


def test_printable_keeps_text_newlines_and_tabs_and_replaces_every_control():
    assert printable("a\tb\nc") == "a\tb\nc"
    assert printable("é ü 漢") == "é ü 漢"
    for control in ["\x00", "\x07", "\x1b", "\r", "\x7f", "\x9b", "\u202e", "\u2066"]:
        assert printable(f"x{control}y") == f"x{SHOWN_INSTEAD}y"


def test_forward_copies_a_pipe_to_stderr_decoded_and_printable(capfd):
    read, write = os.pipe()
    thread = forward(read)
    os.write(write, b"ok \x1b]52;c;eA==\x07 " + "漢".encode()[:2])  # a split character
    os.write(write, "漢".encode()[2:] + b" \xff end\n")
    os.close(write)
    thread.join(5)
    assert not thread.is_alive()
    err = capfd.readouterr().err
    assert err == f"ok {SHOWN_INSTEAD}]52;c;eA=={SHOWN_INSTEAD} 漢 \ufffd end\n"
