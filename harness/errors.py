"""Errors meant for the person at the keyboard.

Anything raised as :class:`UisbenchError` is printed by the CLI as one line on stderr with exit
code 2 and no traceback; everything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class UisbenchError(Exception):
    """A user-facing error: bad input, missing resource, inconsistent database."""
