"""The ``openai`` client against hostile servers on loopback (``hostile.py``): a server cannot
sink the harness (bodies cut at a byte cap counted after decompression, one deadline per
response, a cap on completion text), cannot plant numbers a bank may not hold, cannot pass a
redirect or an empty answer off as a completion, and cannot make it print the API key.

Memory is measured in a child process (peak RSS from ``wait4``) running the real command, with
a watchdog that ends it at 1.5 GiB so that a client without the defences fails instead of
taking the machine down.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import threading
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import pytest

pytest.importorskip("httpx")
pytest.importorskip("tenacity")
pytest.importorskip("lm_eval")

from sqlalchemy import func, select

from tests.fakes import served_pool
from tests.live.hostile import Servers, completion
from uisbench.cli import main
from uisbench.live.backends.openai import INFLATE_STEP, ServerSettings, _inflate, response_cap
from uisbench.store import schema
from uisbench.store.bankfile import MAX_TOKENS
from uisbench.store.engine import open_engine

KEY = "sk-planted-0123456789abcdef"
MIB = 1 << 20
#: The child is ended past this resident size (a client without a byte cap reaches gigabytes).
RSS_LIMIT = 1536 * MIB
TASK_ARGS = ["--task-arg", "levels=add1", "--task-arg", "n_per_level=1"]  # one query
TASK_ARGS += ["--task-arg", "n_train_per_level=1"]


@pytest.fixture()
def hostile():
    servers = Servers()
    yield servers.start
    servers.close()


def record_args(folder: Path, url: str, k: int = 1, **openai: float) -> list[str]:
    pool = served_pool(folder, url, name="hostile", **{"max_attempts": 1, **openai})
    db = str(folder / "bank.db")
    return ["bank", "record", "--task", "arith-smoke", "--pool", str(pool), "--k", str(k)] + [
        *TASK_ARGS,
        "--db",
        db,
    ]


def n_samples(folder: Path) -> int:
    engine = open_engine(str(folder / "bank.db"))
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(schema.samples)).scalar_one()


def one_error_line(capsys, args: list[str]) -> str:
    """Run the CLI in this process; it must exit 2 with exactly one line on stderr."""
    with pytest.raises(SystemExit) as exit_:
        main(args)
    err = capsys.readouterr().err
    assert exit_.value.code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("uisbench: error: "), err
    return lines[0]


# ---------------------------------------------------------------- item 6: cannot sink it

CHILD = r"""
import os, sys, threading, time
limit = int(sys.argv[1])
def watch():
    page = os.sysconf("SC_PAGE_SIZE")
    while True:
        with open("/proc/self/statm") as f:
            rss = int(f.read().split()[1]) * page
        if rss > limit:
            sys.stderr.write(f"WATCHDOG: resident memory {rss >> 20} MiB over the limit\n")
            sys.stderr.flush()
            os._exit(99)
        time.sleep(0.01)
threading.Thread(target=watch, daemon=True).start()
from uisbench.cli import main
main(sys.argv[2:])
"""


@dataclass
class Child:
    code: int
    err: str
    peak_mib: float
    wall_s: float


def run_child(folder: Path, args: list[str], timeout: float = 120.0) -> Child:
    """The CLI in a child process; its exit code, stderr, peak RSS (MiB) and wall time."""
    err_path = folder / "child.err"
    with open(err_path, "wb") as err:
        start = time.monotonic()
        proc = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(RSS_LIMIT), *args],
            stdout=subprocess.DEVNULL,
            stderr=err,
            cwd=folder,
        )
        timer = threading.Timer(timeout, proc.kill)
        timer.start()
        _, status, usage = os.wait4(proc.pid, 0)
        timer.cancel()
        proc.returncode = code = os.waitstatus_to_exitcode(status)
    wall = time.monotonic() - start
    return Child(code, err_path.read_text(errors="replace"), usage.ru_maxrss / 1024, wall)


@pytest.fixture(scope="module")
def honest_run(tmp_path_factory) -> Child:
    """The same command against an honest server: the memory and time any run needs."""
    servers = Servers()
    try:
        server = servers.start(mode="json", payload=completion())
        folder = tmp_path_factory.mktemp("honest")
        child = run_child(folder, record_args(folder, server.url))
    finally:
        servers.close()
    assert child.code == 0, child.err
    return child


@pytest.mark.parametrize("mode", ["endless", "objects", "gzip", "huge"])
def test_endless_bombed_or_huge_body_is_cut_at_the_byte_cap(hostile, tmp_path, mode, honest_run):
    server = hostile(mode=mode)
    child = run_child(tmp_path, record_args(tmp_path, server.url))
    lines = child.err.strip().splitlines()
    print(
        f"\n{mode}: peak RSS {child.peak_mib:.0f} MiB (honest run {honest_run.peak_mib:.0f} MiB),"
        f" {sum(server.sent) / MIB:.1f} MiB sent, {child.wall_s:.1f} s; {lines[-1:]}"
    )
    assert child.code == 2, child.err[-2000:]
    cap = response_cap(ServerSettings().max_response_mb, n=1, max_tokens=12)  # arith-smoke
    assert len(lines) == 1 and lines[0].startswith("uisbench: error: "), child.err[-2000:]
    assert f"over {cap} bytes after decompression" in lines[0] and "max_response_mb" in lines[0]
    # the cap and a decompression step, never the body
    assert child.peak_mib < honest_run.peak_mib + 32, child.peak_mib
    assert server.requests == 1  # too large is not retried: it would be too large again


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_honest_compressed_answers_are_read(hostile, tmp_path, encoding):
    server = hostile(mode="json", payload=completion(), headers={"Content-Encoding": encoding})
    main(record_args(tmp_path, server.url, k=2))
    assert n_samples(tmp_path) == 2


def test_inflate_steps_give_back_every_byte():
    data = os.urandom(3000) + bytes(3 * INFLATE_STEP + 7)  # exact steps leave output pending
    for wbits in (31, 15):
        c = zlib.compressobj(6, zlib.DEFLATED, wbits)
        z = c.compress(data) + c.flush()
        for chunk in (7, 4096, len(z)):
            d = zlib.decompressobj(wbits)
            pieces = [p for i in range(0, len(z), chunk) for p in _inflate(d, z[i : i + chunk])]
            assert b"".join(pieces) == data and max(map(len, pieces)) <= INFLATE_STEP


def test_response_cap_is_what_an_honest_answer_needs():
    assert response_cap(16, n=1, max_tokens=12) == MIB + 12 * 1024
    assert response_cap(16, n=64, max_tokens=4096) == 16 * MIB  # never past max_response_mb
    assert response_cap(0.5, n=1, max_tokens=1) == MIB // 2


def test_one_deadline_for_the_whole_response(hostile, tmp_path, capsys):
    # one byte every 0.25 s: no single read waits 1 s, the response never completes
    server = hostile(mode="drip", drip_s=0.25)
    args = record_args(tmp_path, server.url, timeout_s=1.0, max_attempts=2)
    line = one_error_line(capsys, args)
    took = time.monotonic() - server.arrivals[0]
    print(f"\ndrip: error {took:.2f} s after the first request; {line}")
    assert "no complete response within 1 s" in line and "after 2 attempts" in line
    assert took < 2 * 1.0 + 1.0, took  # two attempts of 1 s each (and a short backoff)
    assert server.requests == 2 and n_samples(tmp_path) == 0


def test_completion_text_is_capped_before_the_filters(hostile, tmp_path, capsys):
    # arith-smoke asks for 12 tokens: 300,000 characters is not a completion of 12 tokens
    server = hostile(mode="json", payload=completion(text=" 5" + " 1" * 150_000))
    line = one_error_line(capsys, record_args(tmp_path, server.url))
    assert "text of 300002 characters" in line and "12 tokens" in line
    assert n_samples(tmp_path) == 0


# ------------------------------------------------- item 7: numbers, empty answers, redirects

RAW_USAGE = b'{"choices": [{"index": 0, "text": " 5"}], "usage": {"prompt_tokens": %s}}'
RAW_LOGPROBS = b'{"choices": [{"index": 0, "text": " 5", "logprobs": {"token_logprobs": %s}}]}'
BAD = {
    "negative usage": completion(prompt_tokens=-500),
    "negative completion tokens": completion(completion_tokens=-3),
    "usage 1e30": completion(completion_tokens=1e30),
    "usage 1e999": RAW_USAGE % b"1e999",
    "usage a string": completion(prompt_tokens="20"),
    "usage a bool": completion(prompt_tokens=True),
    "cached tokens negative": completion(prompt_tokens_details={"cached_tokens": -4}),
    "logprob -inf": RAW_LOGPROBS % b"[-1e999, -0.5]",
    "logprob NaN": RAW_LOGPROBS % b"[NaN]",
    "logprobs summing to -inf": RAW_LOGPROBS % b"[-1e308, -1e308]",
    "text a number": completion(text=5),
    "text a lone surrogate": b'{"choices": [{"index": 0, "text": "\\ud800"}]}',
    "zero choices": {"choices": [], "usage": {"prompt_tokens": 20, "completion_tokens": 0}},
    "no choices": {"object": "error"},
    "deep nesting": b"[" * 100_000,
}


@pytest.mark.parametrize("payload", BAD.values(), ids=BAD.keys())
def test_server_numbers_outside_the_bank_bounds_are_refused(hostile, tmp_path, capsys, payload):
    server = hostile(mode="json", payload=payload)
    line = one_error_line(capsys, record_args(tmp_path, server.url, max_attempts=2))
    assert "request failed after 2 attempts" in line and "malformed response" in line
    assert server.requests == 2 and n_samples(tmp_path) == 0


def test_recorded_bank_always_reimports(hostile, tmp_path, capsys):
    """Whatever a hostile server gets recorded exports and imports back, row for row."""
    bad = list(BAD.values())
    edge = [  # odd but valid (at the plausible-range table's limits): recorded as given
        completion(prompt_tokens=0, completion_tokens=0),
        completion(text="", prompt_tokens=MAX_TOKENS),
        completion(text=" 5 \u202e ünïcode"),
        {"choices": [{"index": 0, "text": " 5", "logprobs": {"token_logprobs": [-1e9]}}]},
    ]

    def answer(number: int, repeat: int) -> object:  # hostile first, odd but valid on a retry
        return bad[number % len(bad)] if repeat == 0 else edge[number % len(edge)]

    server = hostile(mode="json", payload=answer)
    args = record_args(tmp_path, server.url, k=2, max_attempts=2)
    main([*args, "--task-arg", "n_per_level=3"])
    held = n_samples(tmp_path)
    assert held == 3 * 2 and server.requests >= 2 * held  # 3 queries, k=2, one by one
    out = tmp_path / "export.jsonl"
    db = str(tmp_path / "bank.db")
    main(["bank", "export", "--bank", bank_of(tmp_path), "--out", str(out), "--db", db])
    again = tmp_path / "again.db"
    main(["bank", "import", str(out), "--db", str(again)])
    engine = open_engine(str(again))
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(schema.samples)).scalar_one() == held


def bank_of(folder: Path) -> str:
    engine = open_engine(str(folder / "bank.db"))
    with engine.connect() as conn:
        return conn.execute(select(schema.banks.c.name)).scalar_one()


def test_redirect_with_a_json_body_is_not_a_completion(hostile, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("UISBENCH_API_KEY", KEY)
    target = hostile(mode="json", payload=completion())
    for status in (301, 302, 307, 308):
        server = hostile(
            mode="json", status=status, payload=completion(), headers={"Location": target.url}
        )
        line = one_error_line(capsys, record_args(tmp_path, server.url, max_attempts=3))
        assert f"HTTP {status}" in line and "redirect" in line, line
        assert server.requests == 1  # not retried: it would redirect again
    assert target.requests == 0 and n_samples(tmp_path) == 0  # the key went nowhere else


# ------------------------------------------------------------- item 8: the key never printed


@pytest.mark.parametrize("status", [400, 401, 403])
def test_an_echoed_api_key_is_not_printed(hostile, tmp_path, capsys, monkeypatch, status):
    monkeypatch.setenv("UISBENCH_API_KEY", KEY)
    server = hostile(mode="echo", status=status)
    line = one_error_line(capsys, record_args(tmp_path, server.url))
    assert server.seen_auth == [f"Bearer {KEY}"]  # sent, and echoed back
    assert f"HTTP {status}" in line and "Bearer ***" in line and KEY not in line, line
    assert "sk-planted" not in line


def test_key_planted_in_a_malformed_answer_is_not_printed(hostile, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("UISBENCH_API_KEY", KEY)
    payload = RAW_LOGPROBS % json.dumps([KEY, f"Bearer {KEY}"]).encode()
    server = hostile(mode="json", payload=payload)
    line = one_error_line(capsys, record_args(tmp_path, server.url))
    assert "malformed response" in line and KEY not in line, line


def test_basic_credentials_of_the_endpoint_are_not_printed(hostile, tmp_path, capsys):
    server = hostile(mode="echo", status=400)
    url = server.url.replace("http://", "http://user:S3CRET-planted@")
    line = one_error_line(capsys, record_args(tmp_path, url))
    basic = base64.b64encode(b"user:S3CRET-planted").decode()
    assert server.seen_auth == [f"Basic {basic}"]
    assert "S3CRET" not in line and basic not in line and "user:***@127.0.0.1" in line, line


# ------------------------------------- item 7: the recorder's own check, for every backend


@pytest.mark.parametrize(
    "change",
    [
        {"input_tokens": -500},
        {"output_tokens": 2**63},
        {"logprob": float("-inf")},
        {"latency_s": float("nan")},
        {"input_tokens": 10**30},
        "one sample short",
    ],
    ids=str,
)
def test_recorder_refuses_what_bank_import_would(fake_backend, tmp_path, monkeypatch, change):
    """Any backend (here the fake one) is held to the bank's bounds before a row is written."""
    from dataclasses import replace

    from uisbench.errors import UisbenchError
    from uisbench.live import RecordRequest, record

    honest = fake_backend.generate

    def hostile_generate(self, prompts, n, config):
        out = honest(self, prompts, n, config)
        if change == "one sample short":
            return [g[:-1] for g in out]
        return [[replace(g, **change) for g in gens] for gens in out]

    monkeypatch.setattr(fake_backend, "generate", hostile_generate)
    engine = open_engine(str(tmp_path / "bank.db"))
    args = {"levels": ["add1"], "n_per_level": 2, "n_train_per_level": 1}
    with pytest.raises(UisbenchError, match="nothing of this batch was written"):
        record(
            engine, RecordRequest("arith-smoke", "cpu-tiny", 2, backend="fake", task_overrides=args)
        )
    assert n_samples(tmp_path) == 0
