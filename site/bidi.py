"""Bidirectional control characters are removed from everything the site renders.

A model name, prompt or answer holding U+202E (RIGHT-TO-LEFT OVERRIDE) or an isolate such as
U+2066 reorders the text around it: ``gpt\u202eevil`` displays reversed, so a label can pose
as another one ("Trojan Source", CVE-2021-42574). HTML escaping does not touch these
characters, so they are stripped in the two doors text takes into a page: every ``{{ }}``
output (jinja2's ``finalize``) and every ``tojson`` (chart specs, settings).
"""

from __future__ import annotations

import json
import re
from typing import Any

from markupsafe import Markup

from uisbench.terminal import BIDI

#: Embeddings and overrides, isolates and the implicit marks, which move neutral characters
#: such as digits (:data:`uisbench.terminal.BIDI`).
BIDI_CONTROLS = re.compile(f"[{BIDI}]")
#: What a spreadsheet reads as the start of a formula (OWASP "CSV injection"): = + - @, and a
#: tab or carriage return, which some import as whitespace before one.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def strip_bidi(value: Any) -> Any:
    """The value without bidi controls; Markup stays Markup (it is already escaped)."""
    if isinstance(value, Markup):
        return Markup(BIDI_CONTROLS.sub("", str(value)))
    if isinstance(value, str):
        return BIDI_CONTROLS.sub("", value)
    return value


def _clean(obj: Any) -> Any:
    if isinstance(obj, str):
        return BIDI_CONTROLS.sub("", obj)
    if isinstance(obj, dict):
        return {_clean(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return obj


def dumps_without_bidi(obj: Any, **kwargs: Any) -> str:
    """``json.dumps`` for jinja2's ``tojson`` policy: strings cleaned before encoding (the
    encoder would write them as ``\\u202e`` escapes, which the browser decodes again)."""
    return json.dumps(_clean(obj), **kwargs)


def download_cell(value: Any) -> Any:
    """A text cell of a CSV download: bidi controls stripped, and a cell a spreadsheet would
    run as a formula prefixed with ``'`` (shown as text). Numbers are left as they are."""
    if not isinstance(value, str):
        return value
    value = BIDI_CONTROLS.sub("", value)
    return "'" + value if value.startswith(FORMULA_START) else value


def download_json(text: str) -> str:
    """JSON text of a download: bidi controls (raw or ``\\u`` escaped) removed, and ``<``, ``>``
    and ``&`` escaped, so no markup payload survives if the file is ever shown as a page."""
    text = BIDI_CONTROLS.sub("", text)
    text = re.sub(r"\\u(200[efEF]|061[cC]|202[a-eA-E]|206[6-9])", "", text)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
