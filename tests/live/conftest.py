"""A fake OpenAI-compatible server on loopback for the ``openai`` backend's tests.

It answers ``/v1/completions`` and ``/v1/chat/completions`` like vLLM: ``n`` choices, per-token
log-probs, ``usage`` with cached prompt tokens. ``script`` holds faults served in order before
normal answers: an HTTP status (429, 500, ...), ``"garbage"`` (a body that is not JSON), or
``("sleep", seconds)`` (answer late). The answer to the arithmetic prompts of ``arith-smoke`` is
right unless ``(seed + choice) % 3 == 0``, so the bank holds both outcomes.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest


@dataclass
class FakeServer:
    # every choice is 2 tokens of log-prob ``token_logprob``; usage reports these prompt tokens
    token_logprob: float = -0.25
    prompt_tokens: int = 20
    cached_tokens: int = 16
    script: list[Any] = field(default_factory=list)
    honour_n: bool = True
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    down: bool = False  # answer every request with 503
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""

    def next_fault(self) -> Any:
        with self.lock:
            return self.script.pop(0) if self.script else None


def _answer(prompt: str, seed: int, index: int) -> str:
    found = re.findall(r"Q: (\d+) ([-+*]) (\d+) = \?", prompt)
    if not found:
        return " 0"
    a, op, b = found[-1]
    value = {"+": int(a) + int(b), "-": int(a) - int(b), "*": int(a) * int(b)}[op]
    return f" {value + ((seed + index) % 3 == 0)}"


def completion(body: dict[str, Any], fake: FakeServer) -> dict[str, Any]:
    chat = "messages" in body
    prompt = body["messages"][-1]["content"] if chat else body["prompt"]
    n = int(body.get("n", 1)) if fake.honour_n else 1
    choices = []
    for i in range(n):
        text = _answer(prompt, int(body.get("seed", 0)), i)
        if chat:
            lps = {"content": [{"token": t, "logprob": fake.token_logprob} for t in ("x", "y")]}
            message = {"role": "assistant", "content": text}
            choices.append({"index": i, "message": message, "logprobs": lps})
        else:
            lps = {"tokens": ["x", "y"], "token_logprobs": [fake.token_logprob] * 2}
            choices.append({"index": i, "text": text, "logprobs": lps})
    usage = {
        "prompt_tokens": fake.prompt_tokens,
        "completion_tokens": 2 * n,
        "prompt_tokens_details": {"cached_tokens": fake.cached_tokens},
    }
    return {"id": "x", "object": "text_completion", "choices": choices, "usage": usage}


def _handler(server: FakeServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _send(self, status: int, payload: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with server.lock:
                server.requests.append(body)
                server.headers.append(dict(self.headers))
            fault = server.next_fault()
            if server.down:
                return self._send(503, b'{"error": "down"}')
            if isinstance(fault, int):
                return self._send(fault, b'{"error": "scripted"}')
            if fault == "garbage":
                return self._send(200, b'{"choices": [')
            if isinstance(fault, tuple) and fault[0] == "sleep":
                time.sleep(fault[1])
            self._send(200, json.dumps(completion(body, server)).encode())

    return Handler


@pytest.fixture()
def fake_openai() -> Iterator[Callable[..., FakeServer]]:
    """Factory: ``fake_openai(script=[429, "garbage"], honour_n=False)`` starts one server."""
    started: list[ThreadingHTTPServer] = []

    def start(**kwargs: Any) -> FakeServer:
        fake = FakeServer(**kwargs)
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
        httpd.daemon_threads = True
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        started.append(httpd)
        fake.url = f"http://127.0.0.1:{httpd.server_address[1]}/v1"
        return fake

    yield start
    for httpd in started:
        httpd.shutdown()
        httpd.server_close()
