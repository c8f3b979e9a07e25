"""Where a run came from: package version, git commit of the source, command, host."""

from __future__ import annotations

import shlex
import socket
import subprocess
import sys
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from uisbench.redact import redact_argv


def uisbench_version() -> str:
    try:
        return version("uisbench")
    except PackageNotFoundError:  # pragma: no cover - running from an uninstalled tree
        return "0+unknown"


@cache
def git_commit() -> str | None:
    """Commit of the uisbench source tree (with ``+dirty`` when it has local changes)."""
    src = Path(__file__).resolve().parent
    try:
        sha = _git(src, "rev-parse", "HEAD")
        dirty = _git(src, "status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return None
    return sha + ("+dirty" if dirty else "")


def _git(src: Path, *args: str) -> str:
    """Output of ``git -C src ARGS`` (raises when git is missing, slow or fails)."""
    out = subprocess.run(
        ["git", "-C", str(src), *args], capture_output=True, text=True, timeout=5, check=True
    )
    return out.stdout.strip()


def command_line() -> str:
    """The command as typed, credentials masked (URL passwords, ``--token``-like values): it is
    stored in ``runs.command`` and shown on run pages."""
    return shlex.join(["uisbench", *redact_argv(sys.argv[1:])]) if sys.argv else "uisbench"


def host() -> str:
    return socket.gethostname()
