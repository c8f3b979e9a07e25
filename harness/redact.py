"""Credentials out of everything uisbench stores or prints (``runs.command``, error lines).

One function, :func:`redact`, for any text, and :func:`redact_argv` for a command line. What
they replace with ``***``:

- the password of a URL's user information (``postgresql://postgres:***@host/db``), or the
  whole user information when it has no password (``http://***@host``: a lone token);
- values of options, ``key=value`` pairs and JSON members whose name contains ``key``,
  ``token``, ``secret``, ``passw``, ``pwd`` or ``credential`` (``--api-key ***``,
  ``?password=***``, ``"api_key": "***"``);
- ``Bearer`` and ``Basic`` credentials (an ``Authorization`` header a server echoes back);
- the secrets passed in, and the values (8 characters or more) of environment variables whose
  names say they hold one (``UISBENCH_API_KEY``, ``OPENAI_API_KEY``, ``PGPASSWORD``, ...).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable

MASK = "***"
#: A name says its value is a credential when one of its words (split at anything but letters
#: and digits) ends with one of these: ``api-key``, ``apiKey``, ``access_token``, ``db-password``
#: (not ``max-tokens``: a plural is a count).
_SECRET_ENDINGS = (
    "key",
    "token",
    "secret",
    "password",
    "passwd",
    "pwd",
    "credential",
    "credentials",
)
_SECRET_WORDS = frozenset({"pass"})
_MIN_ENV_SECRET = 8
#: scheme://USERINFO@ — up to the authority's last "@" (a raw "@" inside a password).
_URL_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)([^/?#\s@]*(?:@[^/?#\s@]*)*)@")
#: name= (options, query strings, key=value arguments) and the value after it.
_ASSIGNED_NAME = re.compile(r"([\w.-]+)=")
_VALUE_END = re.compile(r"[\s&;,'\"]|$")
#: "name": "value" (JSON bodies).
_JSON_MEMBER = re.compile(r'"([\w.-]+)("\s*:\s*")((?:[^"\\]|\\.)*)"')
#: Authorization schemes that carry a credential.
_AUTH_SCHEME = re.compile(r"(?i)\b(bearer|basic)(\s+)[A-Za-z0-9._~+/=:-]+")


def is_secret_name(name: str) -> bool:
    """True for ``api_key``, ``--api-key``, ``PGPASSWORD``, ``accessToken``, ``token``."""
    words = re.split(r"[^a-z0-9]+", name.lower())
    return any(w.endswith(_SECRET_ENDINGS) or w in _SECRET_WORDS for w in words if w)


def _userinfo(match: re.Match[str]) -> str:
    scheme, info = match.group(1), match.group(2)
    user, colon, _password = info.partition(":")
    return f"{scheme}{user}:{MASK}@" if colon else f"{scheme}{MASK}@"


def env_secrets() -> list[str]:
    """Values of environment variables named like credentials (long enough to be one)."""
    return [
        v
        for k, v in os.environ.items()
        if is_secret_name(k) and len(v) >= _MIN_ENV_SECRET and k not in ("PWD", "OLDPWD")
    ]


def _mask_assigned(text: str) -> str:
    """Values of ``name=value`` whose name is a credential's, wherever they stand (also inside
    another option's value: ``--endpoint=http://h/v1?token=...``)."""
    out, pos = [], 0
    for m in _ASSIGNED_NAME.finditer(text):
        if m.start() < pos or not is_secret_name(m.group(1)):
            continue
        end = _VALUE_END.search(text, m.end())
        stop = end.start() if end else len(text)
        if stop > m.end():
            out += [text[pos : m.end()], MASK]
            pos = stop
    return "".join([*out, text[pos:]])


def _json_member(match: re.Match[str]) -> str:
    name, sep, _value = match.groups()
    return f'"{name}{sep}{MASK}"' if is_secret_name(name) else match.group(0)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every credential it shows replaced by ``***`` (see the module's list)."""
    for secret in sorted({*secrets, *env_secrets()}, key=len, reverse=True):
        if secret:
            text = text.replace(secret, MASK)
    text = _URL_USERINFO.sub(_userinfo, text)
    text = _AUTH_SCHEME.sub(rf"\1\2{MASK}", text)
    text = _JSON_MEMBER.sub(_json_member, text)
    return _mask_assigned(text)


def is_secret_option(arg: str) -> bool:
    """``--api-key``, ``--db-password``, ``--token``: an option whose value is a credential."""
    return arg.startswith("-") and is_secret_name(arg.lstrip("-"))


def redact_argv(argv: Iterable[str]) -> list[str]:
    """A command line with credentials masked: values of secret-named options (``--token X``,
    ``--token=X``), and whatever :func:`redact` finds in every argument (URLs, ``k=v``)."""
    out: list[str] = []
    hide_next = False
    for arg in argv:
        if hide_next:
            out.append(MASK)
            hide_next = False
            continue
        name, eq, _value = arg.partition("=")
        if is_secret_option(name):
            if eq:
                out.append(f"{name}={MASK}")
                continue
            hide_next = True
        out.append(redact(arg))
    return out
