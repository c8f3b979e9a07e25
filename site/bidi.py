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

#: Embeddings and overrides (U+202A–U+202E) and isolates (U+2066–U+2069).
BIDI_CONTROLS = re.compile("[\u202a-\u202e\u2066-\u2069]")


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
