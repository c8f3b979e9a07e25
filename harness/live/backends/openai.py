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
- At most ``concurrency`` requests in flight (default 32); each attempt has a timeout
  (``timeout_s``, default 300).
- 429, 5xx, timeouts, dropped connections and malformed JSON are retried up to ``max_attempts``
  (default 8) with exponential backoff and full jitter (tenacity's ``wait_random_exponential``).
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
"""

from __future__ import annotations

import asyncio
import json
import os
import time
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

API_KEY_VARIABLES = ("UISBENCH_API_KEY", "OPENAI_API_KEY")
#: Status codes worth another attempt: request timeout, conflict, rate limit, server errors.
RETRY_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})
#: Seed step between the single requests that stand in for ``n`` (a prime, so they do not meet
#: the per-prompt seeds ``seed + i`` of a small batch).
SINGLE_SEED_STRIDE = 7919


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


@dataclass
class Endpoint:
    """One server base URL and what the dispatcher knows of it."""

    url: str
    outstanding: int = 0
    failures: int = 0  # consecutive
    down_until: float = 0.0
    served: int = field(default=0, compare=False)


class EndpointPool:
    """Least-outstanding-requests choice among endpoints; failing ones sit out a cooldown."""

    def __init__(self, urls: tuple[str, ...], cooldown_s: float):
        self.endpoints = [Endpoint(u.rstrip("/")) for u in urls]
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

    def close(self) -> None:
        if self._client is not None:
            self._loop.run_until_complete(self._client.aclose())
            self._client = None
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
            headers = {"Authorization": f"Bearer {key}"} if (key := api_key()) else {}
            limits = httpx.Limits(max_connections=self.settings.concurrency)
            self._client = httpx.AsyncClient(headers=headers, limits=limits, timeout=None)
        gate = asyncio.Semaphore(self.settings.concurrency)
        sampling = config.temperature > 0
        draws = n if sampling else 1  # greedy: one sequence, copied below
        groups = await asyncio.gather(
            *(self._samples(gate, p, draws, config, config.seed + i) for i, p in enumerate(prompts))
        )
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
                        return await self._attempt(path, body, chat)
        except RetryableError as exc:
            raise UisbenchError(
                f"model {self.name}: request failed after {self.settings.max_attempts} "
                f"attempts ({exc}); samples already recorded are kept, run again to resume"
            ) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    async def _attempt(self, path: str, body: dict[str, Any], chat: bool) -> list[Generation]:
        """One attempt at the least-loaded endpoint; its failure counts against that endpoint."""
        assert self._client is not None
        endpoint = self.pool.acquire()
        ok = False
        start = time.perf_counter()
        try:
            response = await self._client.post(
                endpoint.url + path, json=body, timeout=self.settings.timeout_s
            )
            payload = _payload(endpoint.url, response)
            generations = parse_response(payload, chat, time.perf_counter() - start)
            ok = True
            return generations
        except httpx.TransportError as exc:  # timeouts, refused or dropped connections
            raise RetryableError(f"{endpoint.url}: {type(exc).__name__}") from exc
        finally:
            self.pool.release(endpoint, ok)


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


def _payload(url: str, response: httpx.Response) -> dict[str, Any]:
    """The response's JSON; retryable statuses and unreadable bodies raise RetryableError."""
    if response.status_code in RETRY_STATUS:
        raise RetryableError(f"{url}: HTTP {response.status_code}")
    if response.status_code >= 400:
        raise UisbenchError(
            f"{url} refused the request: HTTP {response.status_code}: {response.text[:300]}"
        )
    try:
        payload = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RetryableError(f"{url}: malformed JSON") from exc
    if not isinstance(payload, dict) or not isinstance(payload.get("choices"), list):
        raise RetryableError(f"{url}: response without choices")
    return payload


def parse_response(payload: dict[str, Any], chat: bool, latency: float) -> list[Generation]:
    """Generations of one (chat) completions response, in choice order."""
    try:
        choices = sorted(payload["choices"], key=lambda c: c.get("index", 0))
        usage = payload.get("usage") or {}
        prompt_tokens = int(usage.get("prompt_tokens") or 0)
        cached = int(((usage.get("prompt_tokens_details") or {}).get("cached_tokens")) or 0)
        per_choice = _token_logprobs(choices, chat)
        counts = _output_counts(per_choice, int(usage.get("completion_tokens") or 0))
        return [
            Generation(
                text=(c["message"]["content"] if chat else c["text"]) or "",
                input_tokens=prompt_tokens,
                output_tokens=count,
                logprob=float(sum(lps)) if lps is not None else None,
                latency_s=latency,
                cached_tokens=cached,
            )
            for c, lps, count in zip(choices, per_choice, counts)
        ]
    except (KeyError, TypeError, ValueError) as exc:
        raise RetryableError(f"malformed response ({type(exc).__name__}: {exc})") from exc


def _token_logprobs(choices: list[dict[str, Any]], chat: bool) -> list[list[float] | None]:
    """Per choice, the sampled tokens' log-probs (None where the server returned none)."""
    out: list[list[float] | None] = []
    for c in choices:
        lp = c.get("logprobs") or {}
        if chat:
            entries = lp.get("content")
            values = None if entries is None else [e["logprob"] for e in entries]
        else:
            values = lp.get("token_logprobs")
        out.append(None if values is None else [float(v) for v in values if v is not None])
    return out


def _output_counts(per_choice: list[list[float] | None], completion_tokens: int) -> list[int]:
    """Tokens per choice: the log-prob count where given, else an even share of the total."""
    if all(v is not None for v in per_choice):
        return [len(v) for v in per_choice]  # type: ignore[arg-type]
    share, extra = divmod(completion_tokens, max(len(per_choice), 1))
    return [share + (i < extra) for i in range(len(per_choice))]
