"""Hostile OpenAI-compatible servers on loopback, for the ``openai`` client's defences.

Each answer is bounded in time (``wall_s``) and size (``max_bytes``) and ends by itself when
the client hangs up, so a test that fails (a client that keeps reading) still finishes.

Modes (``Hostile.mode``):

- ``endless``: HTTP 200, chunked, a JSON completion whose text never ends;
- ``objects``: HTTP 200, chunked, a list of choices that are empty objects, endless (a JSON
  parser turns 3 bytes of ``{},`` into a 64-byte dict);
- ``gzip``: HTTP 200, ``Content-Encoding: gzip``, 10 MB of gzip that inflates to 10 GB of zeros;
- ``huge``: HTTP 200, ``Content-Length`` 1 GiB: a completion whose text is 1 GiB of ``a``;
- ``drip``: HTTP 200, a valid completion sent one byte every ``drip_s`` seconds;
- ``echo``: HTTP ``status`` with a body that echoes the request's ``Authorization`` header;
- ``json``: HTTP ``status`` with ``payload`` (bytes as given, else JSON), ``headers`` added
  (``Content-Encoding: gzip`` or ``deflate`` compresses it);
  ``payload`` may be a callable of the request number (0, 1, ...) and of how many times the
  same request body came before (0 the first time, 1 for its first retry, ...).
"""

from __future__ import annotations

import itertools
import json
import threading
import time
import zlib
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MIB = 1 << 20
PREFIX = b'{"id": "x", "object": "text_completion", "choices": [{"index": 0, "text": "'


@dataclass
class Hostile:
    mode: str = "json"
    status: int = 200
    payload: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    drip_s: float = 0.5
    wall_s: float = 30.0  # no answer lasts longer
    max_bytes: int = 1 << 30  # nor sends more than this (a gzip bomb's compressed bytes)
    url: str = ""
    requests: int = 0
    sent: list[int] = field(default_factory=list)  # bytes sent per answer
    seen_auth: list[str | None] = field(default_factory=list)
    arrivals: list[float] = field(default_factory=list)  # time.monotonic() of each request
    bodies: dict[bytes, int] = field(default_factory=dict)  # request body -> times seen
    lock: threading.Lock = field(default_factory=threading.Lock)


def completion(text: str = " 5", **usage: Any) -> dict[str, Any]:
    """A valid completions response (one choice, two tokens); ``usage`` fields override."""
    lps = {"tokens": ["x", "y"], "token_logprobs": [-0.25, -0.25]}
    return {
        "id": "x",
        "object": "text_completion",
        "choices": [{"index": 0, "text": text, "logprobs": lps}],
        "usage": {"prompt_tokens": 20, "completion_tokens": 2, **usage},
    }


def _gzip_bomb_blocks() -> tuple[bytes, bytes]:
    """A gzip header with its first 1 MiB of zeros, and a block that adds 1 MiB more each time
    it is repeated (after a full flush the compressor's output no longer depends on history)."""
    c = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    zeros = bytes(MIB)
    head = c.compress(zeros) + c.flush(zlib.Z_FULL_FLUSH)
    block = c.compress(zeros) + c.flush(zlib.Z_FULL_FLUSH)
    assert c.compress(zeros) + c.flush(zlib.Z_FULL_FLUSH) == block
    return head, block


def _handler(server: Hostile) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with server.lock:
                number = server.requests
                server.requests += 1
                server.seen_auth.append(self.headers.get("Authorization"))
                server.arrivals.append(time.monotonic())
                self.repeat = server.bodies.get(body, 0)
                server.bodies[body] = self.repeat + 1
            self.deadline = time.monotonic() + server.wall_s
            self.count = 0
            try:
                getattr(self, f"_{server.mode}")(number)
            except OSError:  # the client hung up: what the defences are for
                pass
            finally:
                with server.lock:
                    server.sent.append(self.count)
                self.close_connection = True

        def _write(self, data: bytes) -> bool:
            """Send ``data``; False once this answer is out of time or bytes."""
            if time.monotonic() > self.deadline or self.count + len(data) > server.max_bytes:
                return False
            self.wfile.write(data)
            self.count += len(data)
            return True

        def _head(self, status: int, length: int | None, **extra: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Connection", "close")  # each answer closes: never reused half-read
            if length is None:
                self.send_header("Transfer-Encoding", "chunked")
            else:
                self.send_header("Content-Length", str(length))
            for k, v in {**server.headers, **extra}.items():
                self.send_header(k, v)
            self.end_headers()

        def _endless(self, number: int) -> None:
            self._head(200, None)
            piece = b"a" * (64 << 10)
            for data in itertools.chain([PREFIX], itertools.repeat(piece)):
                if not self._write(b"%x\r\n%s\r\n" % (len(data), data)):
                    return

        def _objects(self, number: int) -> None:
            self._head(200, None)
            piece = b"{}," * (1 << 14)
            for data in itertools.chain([b'{"choices": ['], itertools.repeat(piece)):
                if not self._write(b"%x\r\n%s\r\n" % (len(data), data)):
                    return

        def _gzip(self, number: int) -> None:
            head, block = _gzip_bomb_blocks()
            blocks = (10 * 1000 * 1000 - len(head)) // len(block)  # 10 MB on the wire
            self._head(200, len(head) + blocks * len(block), **{"Content-Encoding": "gzip"})
            self._write(head)
            for _ in range(blocks):
                if not self._write(block):
                    return

        def _huge(self, number: int) -> None:
            self._head(200, 1 << 30)
            self._write(PREFIX)
            piece = b"a" * MIB
            while self._write(piece):
                pass

        def _drip(self, number: int) -> None:
            body = json.dumps(completion()).encode()
            self._head(200, len(body))
            for i in range(len(body)):
                if not self._write(body[i : i + 1]):
                    return
                self.wfile.flush()
                time.sleep(server.drip_s)

        def _echo(self, number: int) -> None:
            auth = self.headers.get("Authorization") or ""
            body = f"bad request from {auth}\nheaders: Authorization: {auth}".encode()
            self._head(server.status, len(body))
            self._write(body)

        def _json(self, number: int) -> None:
            payload = server.payload
            if callable(payload):
                payload = payload(number, self.repeat)
            body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
            encoding = server.headers.get("Content-Encoding")
            if encoding in ("gzip", "deflate"):  # an honest compressed answer
                c = zlib.compressobj(6, zlib.DEFLATED, 31 if encoding == "gzip" else 15)
                body = c.compress(body) + c.flush()
            self._head(server.status, len(body))
            self._write(body)

    return Handler


class Servers:
    """Servers started by one test: ``start(mode="gzip")`` on 127.0.0.1, ``close()`` after it."""

    def __init__(self) -> None:
        self.started: list[ThreadingHTTPServer] = []

    def start(self, **kwargs: Any) -> Hostile:
        server = Hostile(**kwargs)
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(server))
        httpd.daemon_threads = True
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        self.started.append(httpd)
        server.url = f"http://127.0.0.1:{httpd.server_address[1]}/v1"
        return server

    def close(self) -> None:
        for httpd in self.started:
            httpd.shutdown()
            httpd.server_close()
