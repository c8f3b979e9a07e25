"""OpenAI-compatible backend: samples from running servers (``vllm serve``, SGLang, hosted APIs).

Select it with ``--backend openai --endpoint http://HOST:PORT/v1`` (repeat ``--endpoint`` for
data-parallel replicas) or in a pool file (``backend: openai`` and ``endpoints: [...]``). Text
prompts go to ``/v1/completions``, chat messages to ``/v1/chat/completions`` (the server applies
the chat template). The request names the model ``extra["served_model"]`` of the pool entry, or
its ``identifier``.

How requests are made:

- ``n`` samples in one request (one prefill) when the server honours ``n``; a server that returns
  fewer choices is sent the missing samples as single requests, which share the prompt's prefix
  in its cache, and later calls go that way from the start.
- At most ``concurrency`` requests in flight (default 32). Each attempt has one deadline for
  the whole exchange (``timeout_s``, default 300): a server that sends a byte now and then is
  cut when it runs out, not given ``timeout_s`` per read.
- Responses are read as a stream and cut at a byte cap counted after decompression (only
  ``gzip`` and ``deflate`` are accepted, inflated a step at a time, so a gzip bomb is cut at the
  cap too): what an honest answer can need, 1 MiB plus 1 KiB per requested token (``n`` ×
  ``max_tokens``: text, token, log-prob and its bytes), and never more than ``max_response_mb``
  (default 16). A larger body is an error, not retried. The cap bounds memory, parsing
  included: a JSON body of empty objects (``[{},{},...]``, the worst case) parses into about
  35 times its size, some 550 MiB at the 16 MiB ceiling; an honest chat response with log-probs
  needs about 150 bytes a token (16 samples of 4096 tokens: 10 MB).
- A completion's text may hold at most ``max_tokens`` × :data:`MAX_CHARS_PER_TOKEN` (256)
  characters: nothing longer can be ``max_tokens`` tokens, and nothing longer reaches the task's
  filters (lm-eval's regular expressions).
- 429, 5xx, timeouts, dropped connections and malformed responses are retried up to
  ``max_attempts`` (default 8) with exponential backoff and full jitter (tenacity's
  ``wait_random_exponential``). Malformed: not JSON, no choices, a text that is not a string
  (or longer than the cap), or a number outside the bank's bounds
  (:data:`uisbench.store.bankfile.BOUNDS`: negative or non-integral usage, usage past 2^53,
  log-probs that are not finite). Other statuses are errors: a 4xx, and a 3xx (redirects are
  not followed, so the API key never goes to another address).
- Endpoints are chosen by least outstanding requests. A failing endpoint is taken out for a
  cooldown that doubles with each consecutive failure, so its requests go to the survivors; when
  every endpoint is out, the one back soonest is probed.

What each :class:`~uisbench.live.backends.Generation` holds: the server's ``usage`` gives
``input_tokens`` (``prompt_tokens``) and ``cached_tokens``
(``usage.prompt_tokens_details.cached_tokens``, 0 when the server does not say); ``output_tokens``
is the number of per-token log-probs of the choice, or, when the server returns none, the
request's ``completion_tokens`` split evenly across its choices (exact in total, per choice an
estimate). ``logprob`` is the sum of the sampled tokens' log-probs when returned, else None.
``latency_s`` is the wall time of the request that produced the sample.

The API key is read from ``$UISBENCH_API_KEY`` (or ``$OPENAI_API_KEY``) and sent only as the
``Authorization`` header: it is never part of a pool, a bank key, an error message or a log line.
Error messages quote at most 300 characters of a server's body, on one line, with the key,
``Bearer``/``Basic`` credentials and URL passwords masked (:func:`uisbench.redact.redact`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_random_exponential,
)

from uisbench.errors import UisbenchError
from uisbench.live.backends import Generation, GenerationConfig, Prompt
from uisbench.live.pools import ModelSpec
from uisbench.redact import redact
from uisbench.store.bankfile import BOUNDS, out_of_bounds

API_KEY_VARIABLES = ("UISBENCH_API_KEY", "OPENAI_API_KEY")
#: Status codes worth another attempt: request timeout, conflict, rate limit, server errors.
RETRY_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})
#: Seed step between the single requests that stand in for ``n`` (a prime, so they do not meet
#: the per-prompt seeds ``seed + i`` of a small batch).
SINGLE_SEED_STRIDE = 7919
#: Longest text a completion of ``max_tokens`` tokens may have: ``max_tokens`` × this. Tokens of
#: real vocabularies are far shorter; it bounds what reaches the task's regular expressions.
MAX_CHARS_PER_TOKEN = 256
#: Bytes of an error response read (its first 300 characters are quoted).
ERROR_BODY_BYTES = 64 << 10
#: Decompressed bytes produced per inflate step (memory of a gzip bomb's step is bounded too).
INFLATE_STEP = 1 << 20
MIB = 1 << 20
#: Response cap: this much, plus BYTES_PER_TOKEN per requested token, at most max_response_mb.
BASE_RESPONSE_BYTES = MIB
BYTES_PER_TOKEN = 1024


@dataclass
class ServerSettings:
    """Per-model request settings; a pool entry overrides them under ``openai: {...}``."""

    concurrency: int = 32
    timeout_s: float = 300.0
    max_attempts: int = 8
    backoff_s: float = 0.5  # scale of the first retry's wait (full jitter: uniform up to it)
    backoff_max_s: float = 30.0
    cooldown_s: float = 5.0  # first time-out of a failing endpoint; doubles per failure
    n_per_request: bool = True
    max_response_mb: float = 16.0  # most a body may hold, counted after decompression

    @classmethod
    def from_spec(cls, spec: ModelSpec) -> ServerSettings:
        given = dict(spec.extra.get("openai") or {})
        unknown = sorted(set(given) - set(cls.__dataclass_fields__))
        if unknown:
            options = ", ".join(cls.__dataclass_fields__)
            raise UisbenchError(
                f"model {spec.name}: unknown openai setting(s) {', '.join(unknown)} "
                f"(options: {options})"
            )
        return cls(**given)


class RetryableError(Exception):
    """A failed attempt another attempt (possibly at another endpoint) may fix."""


class ResponseTooLarge(UisbenchError):
    """A body past ``max_response_mb``: another attempt would be as large."""


@dataclass
class Endpoint:
    """One server base URL and what the dispatcher knows of it."""

    url: str
    shown: str = ""  # the URL as messages show it (credentials masked)
    outstanding: int = 0
    failures: int = 0  # consecutive
    down_until: float = 0.0
    served: int = field(default=0, compare=False)


class EndpointPool:
    """Least-outstanding-requests choice among endpoints; failing ones sit out a cooldown."""

    def __init__(self, urls: tuple[str, ...], cooldown_s: float):
        self.endpoints = [Endpoint(u.rstrip("/"), redact(u.rstrip("/"))) for u in urls]
        self.cooldown_s = cooldown_s

    def acquire(self) -> Endpoint:
        now = time.monotonic()
        live = [e for e in self.endpoints if e.down_until <= now]
        pick = (
            min(live, key=lambda e: e.outstanding)
            if live
            else min(self.endpoints, key=lambda e: e.down_until)  # all out: probe the soonest
        )
        pick.outstanding += 1
        return pick

    def release(self, endpoint: Endpoint, ok: bool) -> None:
        endpoint.outstanding -= 1
        if ok:
            endpoint.failures, endpoint.down_until = 0, 0.0
            endpoint.served += 1
        else:
            endpoint.failures += 1
            wait = self.cooldown_s * 2 ** (endpoint.failures - 1)
            endpoint.down_until = time.monotonic() + wait


def api_key() -> str | None:
    for var in API_KEY_VARIABLES:
        if os.environ.get(var):
            return os.environ[var]
    return None


class OpenAIBackend:
    """Samples through OpenAI-compatible HTTP servers; one event loop and client per backend."""

    def __init__(self, spec: ModelSpec, device: str | None = None):
        if not spec.endpoints:
            raise UisbenchError(
                f"backend 'openai' needs a server for {spec.name}: give --endpoint URL "
                "or list endpoints: in the pool file"
            )
        self.spec = spec
        self.name = spec.name
        self.model = str(spec.extra.get("served_model") or spec.identifier)
        self.settings = ServerSettings.from_spec(spec)
        self.pool = EndpointPool(spec.endpoints, self.settings.cooldown_s)
        self._loop = asyncio.new_event_loop()
        self._client: httpx.AsyncClient | None = None
        self._secrets = tuple(k for k in [api_key()] if k)

    def close(self) -> None:
        if self._client is not None:
            self._loop.run_until_complete(self._client.aclose())
            self._client = None
        self._loop.run_until_complete(self._loop.shutdown_asyncgens())  # streams cut short
        self._loop.close()

    def generate(
        self, prompts: list[Prompt], n: int, config: GenerationConfig
    ) -> list[list[Generation]]:
        if n < 1:
            raise UisbenchError("n must be at least 1")
        return self._loop.run_until_complete(self._generate(prompts, n, config))

    async def _generate(
        self, prompts: list[Prompt], n: int, config: GenerationConfig
    ) -> list[list[Generation]]:
        if self._client is None:
            headers = {"Accept-Encoding": "gzip, deflate"}  # the encodings read_body inflates
            if key := api_key():
                headers["Authorization"] = f"Bearer {key}"
            limits = httpx.Limits(max_connections=self.settings.concurrency)
            self._client = httpx.AsyncClient(headers=headers, limits=limits, timeout=None)
        gate = asyncio.Semaphore(self.settings.concurrency)
        sampling = config.temperature > 0
        draws = n if sampling else 1  # greedy: one sequence, copied below
        tasks = [
            asyncio.ensure_future(self._samples(gate, p, draws, config, config.seed + i))
            for i, p in enumerate(prompts)
        ]
        try:
            groups = await asyncio.gather(*tasks)
        except BaseException:  # one prompt failed: stop the others' requests before returning
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        return [g if sampling else g[:1] * n for g in groups]

    async def _samples(
        self, gate: asyncio.Semaphore, prompt: Prompt, n: int, config: GenerationConfig, seed: int
    ) -> list[Generation]:
        """``n`` samples of one prompt: one request of ``n`` where the server allows it."""
        got: list[Generation] = []
        if self.settings.n_per_request:
            got = await self._request(gate, prompt, n, config, seed)
            if len(got) < n:  # the server ignores n: sample the rest one by one from now on
                self.settings.n_per_request = False
        seeds = [seed + SINGLE_SEED_STRIDE * (j + 1) for j in range(len(got), n)]
        singles = await asyncio.gather(*(self._request(gate, prompt, 1, config, s) for s in seeds))
        return [*got, *(g for s in singles for g in s)][:n]

    async def _request(
        self, gate: asyncio.Semaphore, prompt: Prompt, n: int, config: GenerationConfig, seed: int
    ) -> list[Generation]:
        chat = not isinstance(prompt, str)
        path = "/chat/completions" if chat else "/completions"
        body = request_body(self.model, prompt, n, config, seed)
        max_text = max(config.max_tokens, 1) * MAX_CHARS_PER_TOKEN
        cap = response_cap(self.settings.max_response_mb, n, config.max_tokens)
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.settings.max_attempts),
            wait=wait_random_exponential(
                multiplier=self.settings.backoff_s, max=self.settings.backoff_max_s
            ),
            retry=retry_if_exception_type(RetryableError),
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    async with gate:
                        return await self._attempt(path, body, chat, max_text, cap)
        except ResponseTooLarge as exc:
            raise UisbenchError(
                f"model {self.name}: {exc} (the cap for n={n} of max_tokens="
                f"{config.max_tokens}: 1 MiB + 1 KiB a token, at most max_response_mb="
                f"{self.settings.max_response_mb:g})"
            ) from exc
        except RetryableError as exc:
            why = redact(str(exc), self._secrets)
            raise UisbenchError(
                f"model {self.name}: request failed after {self.settings.max_attempts} "
                f"attempts ({why}); samples already recorded are kept, run again to resume"
            ) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    async def _attempt(
        self, path: str, body: dict[str, Any], chat: bool, max_text: int, cap: int
    ) -> list[Generation]:
        """One attempt at the least-loaded endpoint; its failure counts against that endpoint."""
        endpoint = self.pool.acquire()
        ok = False
        start = time.perf_counter()
        timeout = self.settings.timeout_s
        try:
            # one deadline for the whole exchange: connecting, headers and every byte of body
            status, data = await asyncio.wait_for(
                self._exchange(endpoint, path, body, cap), timeout
            )
            payload = _payload(endpoint.shown, status, data, self._secrets)
            generations = parse_response(payload, chat, time.perf_counter() - start, max_text)
            ok = True
            return generations
        except asyncio.TimeoutError as exc:
            raise RetryableError(
                f"{endpoint.shown}: no complete response within {timeout:g} s (timeout_s)"
            ) from exc
        except httpx.TransportError as exc:  # refused or dropped connections
            raise RetryableError(f"{endpoint.shown}: {type(exc).__name__}") from exc
        finally:
            self.pool.release(endpoint, ok)

    async def _exchange(
        self, endpoint: Endpoint, path: str, body: dict[str, Any], cap: int
    ) -> tuple[int, bytes]:
        """Status and (decoded, capped) body of one POST; error bodies are cut, not refused."""
        assert self._client is not None
        async with self._client.stream(
            "POST", endpoint.url + path, json=body, timeout=self.settings.timeout_s
        ) as response:
            status = response.status_code
            if 200 <= status < 300:
                return status, await read_body(response, cap, endpoint.shown, cut=False)
            return status, await read_body(response, ERROR_BODY_BYTES, endpoint.shown, cut=True)


def response_cap(max_response_mb: float, n: int, max_tokens: int) -> int:
    """Bytes a response to ``n`` completions of ``max_tokens`` may hold (decompressed)."""
    honest = BASE_RESPONSE_BYTES + n * max(max_tokens, 1) * BYTES_PER_TOKEN
    return int(min(honest, max_response_mb * MIB))


async def read_body(response: httpx.Response, cap: int, shown: str, cut: bool) -> bytes:
    """The body, decompressed a step at a time; past ``cap`` bytes it is cut (``cut``) or
    refused with :class:`ResponseTooLarge`. Memory stays within the cap and one step."""
    encoding = response.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding in ("", "identity"):
        inflater = None
    elif encoding in ("gzip", "x-gzip", "deflate"):
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS if "gzip" in encoding else zlib.MAX_WBITS)
    else:
        raise RetryableError(f"{shown}: unsupported Content-Encoding {encoding[:40]!r}")
    out = bytearray()
    try:
        async with contextlib.aclosing(response.aiter_raw()) as chunks:  # closed when cut short
            async for raw in chunks:
                for piece in _inflate(inflater, raw):
                    out += piece
                    if len(out) > cap:
                        if cut:
                            return bytes(out[:cap])
                        raise ResponseTooLarge(
                            f"{shown}: response body over {cap} bytes after decompression"
                        )
    except zlib.error as exc:
        raise RetryableError(f"{shown}: malformed {encoding} body") from exc
    return bytes(out)


def _inflate(inflater: Any, raw: bytes) -> Iterator[bytes]:
    """``raw`` decompressed in steps of at most :data:`INFLATE_STEP` bytes."""
    if inflater is None:
        yield raw
        return
    data = raw
    while not inflater.eof:
        piece = inflater.decompress(data, INFLATE_STEP)
        yield piece
        data = inflater.unconsumed_tail
        if not data and len(piece) < INFLATE_STEP:  # a full step may leave output pending
            return


def request_body(
    model: str, prompt: Prompt, n: int, config: GenerationConfig, seed: int
) -> dict[str, Any]:
    """The JSON body of a completions or chat-completions request for ``n`` samples."""
    sampling = config.temperature > 0
    body: dict[str, Any] = {
        "model": model,
        "n": n,
        "max_tokens": config.max_tokens,
        "temperature": config.temperature if sampling else 0.0,
        "top_p": config.top_p if sampling else 1.0,
        "seed": seed,
    }
    if config.stop:
        body["stop"] = list(config.stop)
    if isinstance(prompt, str):
        body.update(prompt=prompt, logprobs=0)  # the sampled token's log-prob only
    else:
        body.update(messages=prompt, logprobs=True, top_logprobs=0)
    return body


def _payload(url: str, status: int, data: bytes, secrets: tuple[str, ...]) -> dict[str, Any]:
    """The response's JSON; retryable statuses and unreadable bodies raise RetryableError."""
    if status in RETRY_STATUS:
        raise RetryableError(f"{url}: HTTP {status}")
    if 300 <= status < 400:
        raise UisbenchError(
            f"{url} answered HTTP {status}, a redirect: not followed (it would send the API key "
            "elsewhere) and not a completion; give the final URL as the endpoint"
        )
    if not 200 <= status < 300:
        raise UisbenchError(
            f"{url} refused the request: HTTP {status}: {quote_body(data, secrets)}"
        )
    try:
        payload = json.loads(data, parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:  # not JSON, not UTF-8, NaN, nested too deep
        raise RetryableError(f"{url}: malformed response (not JSON)") from exc
    if not isinstance(payload, dict) or not isinstance(payload.get("choices"), list):
        raise RetryableError(f"{url}: malformed response (no choices)")
    if not payload["choices"]:
        raise RetryableError(f"{url}: malformed response (zero choices)")
    return payload


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number")


def quote_body(data: bytes, secrets: tuple[str, ...] = ()) -> str:
    """At most 300 characters of a body, on one line, printable, credentials masked."""
    text = data.decode("utf-8", errors="replace")
    text = "".join(ch if ch.isprintable() else " " for ch in redact(text, secrets))
    return " ".join(text.split())[:300]


def parse_response(
    payload: dict[str, Any], chat: bool, latency: float, max_text: int | None = None
) -> list[Generation]:
    """Generations of one (chat) completions response, in choice order.

    Every number is checked against the bank's bounds before it can be recorded, and every
    text is a string (valid as UTF-8) of at most ``max_text`` characters; anything else is a
    malformed response.
    """
    try:
        choices = sorted(payload["choices"], key=lambda c: c.get("index", 0))
        usage = payload.get("usage") or {}
        prompt_tokens = _count(usage, "prompt_tokens", "input_tokens")
        details = usage.get("prompt_tokens_details") or {}
        cached = _count(details, "cached_tokens", "input_tokens")
        per_choice = _token_logprobs(choices, chat)
        total = _count(usage, "completion_tokens", "output_tokens")
        counts = _output_counts(per_choice, total)
        texts = [_text(c["message"]["content"] if chat else c["text"], max_text) for c in choices]
        logprobs = [_logprob(lps) for lps in per_choice]
        return [
            Generation(
                text=text,
                input_tokens=prompt_tokens,
                output_tokens=count,
                logprob=lp,
                latency_s=latency,
                cached_tokens=cached,
            )
            for text, lp, count in zip(texts, logprobs, counts)
        ]
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
        raise RetryableError(f"malformed response ({type(exc).__name__}: {exc})") from exc


def _count(usage: Any, name: str, field: str) -> int:
    """A token count of ``usage`` (0 when absent): an integer within the bank's bounds."""
    v = usage.get(name)
    if v is None:
        return 0
    if not isinstance(v, int) or isinstance(v, bool) or out_of_bounds(field, v):
        raise ValueError(f"usage {name} {_short(v)} is not {BOUNDS[field][-1]}")
    return v


def _text(v: Any, max_text: int | None) -> str:
    if v is None:
        return ""
    if not isinstance(v, str):
        raise TypeError(f"completion text is a {type(v).__name__}, not a string")
    if max_text is not None and len(v) > max_text:
        raise ValueError(
            f"completion text of {len(v)} characters, more than {max_text // MAX_CHARS_PER_TOKEN}"
            f" tokens can hold ({MAX_CHARS_PER_TOKEN} characters a token)"
        )
    v.encode("utf-8")  # a lone surrogate can be neither stored nor exported: UnicodeError
    return v


def _logprob(values: list[float] | None) -> float | None:
    """The sequence log-prob: the sum, finite (as the bank's bounds require)."""
    if values is None:
        return None
    total = float(sum(values))
    if out_of_bounds("logprob", total):
        raise ValueError(f"log-prob {total!r} is not {BOUNDS['logprob'][-1]}")
    return total


def _short(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 40 else text[:37] + "..."


def _token_logprobs(choices: list[dict[str, Any]], chat: bool) -> list[list[float] | None]:
    """Per choice, the sampled tokens' log-probs (None where the server returned none)."""
    out: list[list[float] | None] = []
    for c in choices:
        lp = c.get("logprobs") or {}
        if chat:
            entries = lp.get("content")
            values = None if entries is None else [_number(e["logprob"]) for e in entries]
        else:
            values = lp.get("token_logprobs")
        out.append(None if values is None else [_number(v) for v in values if v is not None])
    return out


def _number(v: Any) -> float:
    if not isinstance(v, (int, float)) or isinstance(v, bool):
        raise TypeError(f"log-prob {_short(v)} is not a number")
    return float(v)


def _output_counts(per_choice: list[list[float] | None], completion_tokens: int) -> list[int]:
    """Tokens per choice: the log-prob count where given, else an even share of the total."""
    if all(v is not None for v in per_choice):
        return [len(v) for v in per_choice]  # type: ignore[arg-type]
    share, extra = divmod(completion_tokens, max(len(per_choice), 1))
    return [share + (i < extra) for i in range(len(per_choice))]
