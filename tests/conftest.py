"""Shared fixtures. ``postgres_url`` starts a throw-away PostgreSQL server on loopback; the
registries hold uisbench's own plugins only (``installed_plugins`` for a test that wants the
environment's); ``fake_backend`` registers the fake live backend.

The PostgreSQL round trip must run against a real server, not a mock, so the suite starts one
itself from Debian's ``postgresql`` binaries (``/usr/lib/postgresql/*/bin``, or ``$PG_BIN``, or
``initdb`` on ``$PATH``). PostgreSQL refuses to run as root, so under root the server runs as
the ``postgres`` user (created when missing). Tests that need it are skipped, with the reason
printed, only when the binaries cannot be found; a server that is there but fails to start is
a failure, not a skip.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

PG_USER = "postgres"  # OS user the server runs as when the suite runs as root
PG_DB = "uisbench_test"


def find_pg_bin() -> Path | None:
    """Folder holding ``initdb`` and ``pg_ctl``: $PG_BIN, then Debian's newest, then $PATH."""
    candidates = []
    if os.environ.get("PG_BIN"):
        candidates.append(Path(os.environ["PG_BIN"]))
    debian = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"),
        key=lambda p: [int(x) if x.isdigit() else 0 for x in Path(p).parent.name.split(".")],
        reverse=True,
    )
    candidates += [Path(p) for p in debian]
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).parent)
    for c in candidates:
        if (c / "initdb").is_file() and (c / "pg_ctl").is_file():
            return c
    return None


def _server_user() -> str | None:
    """None when we are not root (run as ourselves); else a non-root user, created if needed."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(PG_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", PG_USER],
            check=True,
            capture_output=True,
        )
    return PG_USER


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """``postgresql+psycopg://`` URL of a fresh database on a server private to this session."""
    pytest.importorskip("psycopg", reason="psycopg (PostgreSQL driver) is not installed")
    bindir = find_pg_bin()
    if bindir is None:
        msg = (
            "PostgreSQL server binaries (initdb, pg_ctl) not found: install Debian's "
            "`postgresql` package or set PG_BIN"
        )
        print(f"\nSKIP postgres: {msg}")
        pytest.skip(msg)
    user = _server_user()
    root = Path(tempfile.mkdtemp(prefix="uisbench-pg-"))
    data, sock, log = root / "data", root / "sock", root / "server.log"
    sock.mkdir()
    if user:
        pw = pwd.getpwnam(user)
        for p in (root, sock):
            os.chown(p, pw.pw_uid, pw.pw_gid)
    kw = {"user": user} if user else {}

    def pg(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(bindir / args[0]), *args[1:]], capture_output=True, text=True, **kw
        )

    port = _free_port()
    started = False
    try:
        r = pg(
            "initdb",
            "-D",
            str(data),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
            "--no-instructions",
        )
        if r.returncode != 0:
            pytest.fail(f"initdb failed: {r.stderr.strip()[-500:]}")
        opts = f"-h 127.0.0.1 -p {port} -k {sock} -c fsync=off -c full_page_writes=off"
        r = pg("pg_ctl", "-D", str(data), "-o", opts, "-l", str(log), "-w", "-t", "60", "start")
        if r.returncode != 0:
            tail = log.read_text(errors="replace")[-1000:] if log.exists() else r.stderr
            pytest.fail(f"PostgreSQL server did not start: {tail.strip()}")
        started = True
        import psycopg

        with psycopg.connect(
            host="127.0.0.1", port=port, user="postgres", dbname="postgres", autocommit=True
        ) as conn:
            conn.execute(f"CREATE DATABASE {PG_DB}")
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/{PG_DB}"
    finally:
        if started:
            pg("pg_ctl", "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture()
def postgres_db(postgres_url: str) -> Iterator[str]:
    """A database of its own for one test on the session's server, dropped afterwards."""
    import psycopg
    from sqlalchemy.engine import make_url

    url = make_url(postgres_url)
    name = f"t_{uuid.uuid4().hex[:12]}"
    args = {"host": url.host, "port": url.port, "user": url.username, "autocommit": True}
    with psycopg.connect(dbname="postgres", **args) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    yield url.set(database=name).render_as_string(hide_password=False)
    with contextlib.suppress(Exception), psycopg.connect(dbname="postgres", **args) as conn:
        conn.execute(f"DROP DATABASE {name} WITH (FORCE)")


@pytest.fixture
def fake_backend() -> Iterator[type]:
    """``FakeBackend`` registered as backend ``fake`` for one test, through the real registry.

    The registry gets one more entry point (nothing is installed or written into
    ``pyproject.toml``), so lookups, the name check and loading all run as for a real plugin.
    """
    from tests.fakes import FakeBackend
    from uisbench.live.backends import BACKENDS

    with BACKENDS.added("fake", f"{FakeBackend.__module__}:FakeBackend"):
        yield FakeBackend


def _registries() -> list:
    from uisbench.live.backends import BACKENDS
    from uisbench.strategies.base import STRATEGIES
    from uisbench.tasks import TASKS

    return [STRATEGIES, TASKS, BACKENDS]


@pytest.fixture(scope="session", autouse=True)
def _own_plugins_only() -> Iterator[None]:
    """The suite sees uisbench's own plugins only: a plugin installed in this environment (the
    example plugin, after scripts/test.sh) changes none of its results. A test that wants
    another distribution's plugins opens a scope of its own
    (``STRATEGIES.scoped(distributions=[...])``) or asks for ``installed_plugins``."""
    with contextlib.ExitStack() as stack:
        for registry in _registries():
            stack.enter_context(registry.scoped(distributions=["uisbench"]))
        yield


@pytest.fixture
def installed_plugins() -> Iterator[None]:
    """Every plugin installed in this environment (or put on ``sys.path`` before its first
    lookup) registered for one test, as the ``uisbench`` command would see them."""
    with contextlib.ExitStack() as stack:
        for registry in _registries():
            stack.enter_context(registry.scoped())
        yield
