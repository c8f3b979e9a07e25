"""Credentials are never stored or shown (issue 20 item 9): a database password in ``--db``, a
user:password in ``--endpoint`` and the API key are planted, the real commands run as child
processes (so ``runs.command`` is their own command line), and the database, the built site,
an exported result file and every line printed are searched for each secret.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("httpx")
pytest.importorskip("lm_eval")

from sqlalchemy import MetaData, select
from sqlalchemy.engine import make_url

from tests.fakes import served_pool
from uisbench.redact import redact, redact_argv
from uisbench.store.engine import open_engine

KEY = "sk-planted-0123456789abcdef"
DB_SECRET = "PgPlanted-Pw-4711"
URL_SECRET = "UrlPlanted-Secret-0815"


def uisbench(folder: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "UISBENCH_API_KEY": KEY}
    return subprocess.run(
        [sys.executable, "-m", "uisbench.cli", *args],
        capture_output=True,
        text=True,
        cwd=folder,
        env=env,
        timeout=300,
    )


def database_text(db: str) -> bytes:
    """Every value of every table, as text (a dump of the database)."""
    engine = open_engine(db, create=False)
    meta = MetaData()
    meta.reflect(engine)
    with engine.connect() as conn:
        rows = [repr(r) for t in meta.sorted_tables for r in conn.execute(select(t))]
    return "\n".join(rows).encode()


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_planted_credentials_are_stored_and_shown_nowhere(fake_openai, tmp_path, kind, request):
    server = fake_openai()
    endpoint = server.url.replace("http://", f"http://user:{URL_SECRET}@")
    if kind == "postgresql":
        url = make_url(request.getfixturevalue("postgres_db")).set(password=DB_SECRET)
        db = url.render_as_string(hide_password=False)
    else:
        db = str(tmp_path / "secrets.db")
    assert DB_SECRET in db or kind == "sqlite"
    site, export = tmp_path / "_site", tmp_path / "runs.json"
    pool = str(served_pool(tmp_path, server.url))
    live = ["run", "--live", "--backend", "openai", "--endpoint", endpoint, "--pool", pool]
    live += ["--k", "2", "--limit", "3", "--strategy", "single:model=served-model", "--db", db]
    done = [
        uisbench(tmp_path, *live),
        uisbench(tmp_path, "report", "--db", db),
        uisbench(tmp_path, "site", "build", "--db", db, "--out", str(site)),
        uisbench(tmp_path, "results", "export", "--out", str(export), "--db", db),
        uisbench(tmp_path, "list", "banks", "--db", db),
    ]
    assert [r.returncode for r in done] == [0] * len(done), [r.stderr for r in done]
    assert server.requests  # the URL's user:password goes as Basic auth (httpx), replacing the key
    dead = endpoint.replace(server.url[len("http://") :], "127.0.0.1:1/v1")
    more = [dead if a == endpoint else "3" if a == "2" else a for a in live]  # needs samples
    failing = [  # error lines that would quote the URL or the key
        uisbench(tmp_path, "list", "banks", "--db", f"postgresql://u:{DB_SECRET}@h:x5432/d"),
        uisbench(tmp_path, *more),
    ]

    stored = database_text(db)
    if kind == "sqlite":
        stored += Path(db).read_bytes()
    blobs = {"database": stored, "export": export.read_bytes()}
    blobs |= {str(p): p.read_bytes() for p in site.rglob("*") if p.is_file()}
    blobs |= {f"output {i}": (r.stdout + r.stderr).encode() for i, r in enumerate(done + failing)}
    assert len(blobs) > 5
    for secret in (KEY, DB_SECRET, URL_SECRET):
        leaks = [where for where, blob in blobs.items() if secret.encode() in blob]
        assert not leaks, f"{secret} found in {leaks}"
    assert b"user:***@127.0.0.1" in stored  # the command is stored, masked
    assert kind == "sqlite" or b"postgres:***@127.0.0.1" in stored
    assert [r.returncode for r in failing] == [2, 2], [r.stderr for r in failing]
    assert all(len(r.stderr.strip().splitlines()) == 1 for r in failing)


def test_redaction_rules():
    assert redact_argv(
        ["run", "--api-key", "K1", "--token=T2", "--max-tokens", "64", "--k", "3", "x=1"]
    ) == ["run", "--api-key", "***", "--token=***", "--max-tokens", "64", "--k", "3", "x=1"]
    assert redact_argv(["--db", "postgresql+psycopg://postgres:pw@h:5432/d"]) == [
        "--db",
        "postgresql+psycopg://postgres:***@h:5432/d",
    ]
    cases = {
        "http://user:S@h/v1": "http://user:***@h/v1",
        "http://tok@h/v1": "http://***@h/v1",
        "postgresql://u:p@ss@h/d": "postgresql://u:***@h/d",
        "--endpoint=http://h/v1?api_key=abc&x=1": "--endpoint=http://h/v1?api_key=***&x=1",
        "HTTP 401: Bearer sk-1 and Basic dXNlcjpw": "HTTP 401: Bearer *** and Basic ***",
        '{"password": "p\\"w", "model": "m"}': '{"password": "***", "model": "m"}',
        "password=hunter2 max_tokens=5 PGPASSWORD=x": "password=*** max_tokens=5 PGPASSWORD=***",
        "http://h:8000/v1 at a@b.org": "http://h:8000/v1 at a@b.org",
    }
    for text, masked in cases.items():
        assert redact(text) == masked, text
    assert redact("echo ABCDEFGH12", secrets=["ABCDEFGH12"]) == "echo ***"


def test_secret_environment_values_are_masked(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env-planted-42")
    monkeypatch.setenv("PWD", "/home/someone/work")  # the working directory, not a password
    assert redact("got sk-env-planted-42 in /home/someone/work") == "got *** in /home/someone/work"
