"""Where a run came from: package version, git commit of the source, command, host."""

from __future__ import annotations

import shlex
import socket
import subprocess
import sys
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path


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
        sha = subprocess.run(
            ["git", "-C", str(src), "rev-parse", "HEAD"],
            capture_output=True, text=True, timeout=5, check=True,
        ).stdout.strip()  # fmt: skip
        dirty = subprocess.run(
            ["git", "-C", str(src), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=5, check=True,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return sha + ("+dirty" if dirty else "")


def command_line() -> str:
    return shlex.join(["uisbench", *sys.argv[1:]]) if sys.argv else "uisbench"


def host() -> str:
    return socket.gethostname()
