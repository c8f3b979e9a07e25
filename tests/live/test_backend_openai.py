"""The ``openai`` backend against a fake OpenAI-compatible server on loopback (conftest.py):
retries on 429/5xx/timeouts/malformed JSON, failover between endpoints, n per request or one by
one, usage and log-probs read from responses, and an API key that never reaches the bank or site.
"""

from __future__ import annotations

import math
import socket
from dataclasses import replace
from pathlib import Path

import pytest

pytest.importorskip("httpx")
pytest.importorskip("tenacity")

from sqlalchemy import select

from tests.fakes import served_pool
from uisbench.cli import main
from uisbench.errors import UisbenchError
from uisbench.live import RecordRequest, record
from uisbench.live.backends import GenerationConfig
from uisbench.live.backends.openai import OpenAIBackend, parse_response, request_body
from uisbench.live.pools import ModelSpec, load_pool
from uisbench.store import schema
from uisbench.store.engine import open_engine

FAST = {"backoff_s": 0.01, "backoff_max_s": 0.05, "cooldown_s": 60.0, "timeout_s": 5.0}
CONFIG = GenerationConfig(temperature=0.7, max_tokens=4, stop=("\n",), seed=3)
PROMPT = "Q: 2 + 3 = ?\nA:"
KEY = "sk-planted-0123456789abcdef"


def spec(urls: list[str], **settings) -> ModelSpec:
    return ModelSpec(
        name="fake",
        backend="openai",
        identifier="org/fake-model",
        params_total=1000,
        params_active=1000,
        endpoints=tuple(urls),
        extra={"openai": {**FAST, **settings}},
    )


def sample(urls: list[str], prompts=(PROMPT,), n: int = 2, config=CONFIG, **settings):
    backend = OpenAIBackend(spec(urls, **settings))
    try:
        return backend, backend.generate(list(prompts), n, config)
    finally:
        backend.close()


def dead_url() -> str:
    with socket.socket() as sock:  # a port nothing listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def test_request_body_completions_and_chat():
    body = request_body("m", PROMPT, 4, CONFIG, seed=9)
    assert body == {
        "model": "m",
        "n": 4,
        "max_tokens": 4,
        "temperature": 0.7,
        "top_p": 0.95,
        "seed": 9,
        "stop": ["\n"],
        "prompt": PROMPT,
        "logprobs": 0,
    }
    chat = request_body("m", [{"role": "user", "content": "hi"}], 1, replace(CONFIG, stop=()), 0)
    assert chat["messages"] == [{"role": "user", "content": "hi"}]
    assert (chat["logprobs"], chat["top_logprobs"], "stop" in chat) == (True, 0, False)


def test_parse_response_reads_usage_logprobs_and_splits_counts_without_logprobs():
    payload = {
        "choices": [
            {"index": 1, "text": "b", "logprobs": {"token_logprobs": [-1.0, -0.5, -0.25]}},
            {"index": 0, "text": "a", "logprobs": {"token_logprobs": [-2.0]}},
        ],
        "usage": {
            "prompt_tokens": 11,
            "completion_tokens": 4,
            "prompt_tokens_details": {"cached_tokens": 8},
        },
    }
    a, b = parse_response(payload, chat=False, latency=0.5)
    assert (a.text, a.output_tokens, a.logprob, a.input_tokens, a.cached_tokens) == (
        "a",
        1,
        -2.0,
        11,
        8,
    )
    assert (b.text, b.output_tokens, b.logprob, b.latency_s) == ("b", 3, -1.75, 0.5)
    bare = {
        "choices": [{"text": "x"}, {"text": "y"}, {"text": "z"}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 7},
    }
    gens = parse_response(bare, chat=False, latency=0.1)
    assert [g.output_tokens for g in gens] == [3, 2, 2]  # 7 split evenly, total kept
    assert all(g.logprob is None and g.cached_tokens == 0 for g in gens)


def test_n_samples_in_one_request_with_usage_and_logprobs(fake_openai):
    server = fake_openai()
    _, out = sample([server.url], prompts=[PROMPT, "Q: 4 * 2 = ?\nA:"], n=3)
    assert len(server.requests) == 2 and {r["n"] for r in server.requests} == {3}
    assert sorted(r["seed"] for r in server.requests) == [3, 4]  # config.seed + prompt index
    assert [len(g) for g in out] == [3, 3]
    first = out[0][0]
    assert (first.input_tokens, first.cached_tokens, first.output_tokens) == (20, 16, 2)
    assert math.isclose(first.logprob, 2 * -0.25)
    # seed 3: choice 0 is wrong by one ((3 + 0) % 3 == 0), choices 1 and 2 are right
    assert [g.text for g in out[0]] == [" 6", " 5", " 5"]


def test_server_ignoring_n_gets_single_requests(fake_openai):
    server = fake_openai(honour_n=False)
    backend, out = sample([server.url], n=3)
    assert [len(g) for g in out] == [3]
    assert [r["n"] for r in server.requests] == [3, 1, 1]
    assert len({r["seed"] for r in server.requests}) == 3
    assert backend.settings.n_per_request is False


def test_greedy_sends_one_sample_and_copies_it(fake_openai):
    server = fake_openai()
    _, out = sample([server.url], n=4, config=replace(CONFIG, temperature=0.0))
    assert [r["n"] for r in server.requests] == [1]
    assert server.requests[0]["temperature"] == 0.0
    assert len(out[0]) == 4 and len({g.text for g in out[0]}) == 1


@pytest.mark.parametrize("script", [[429, 500, 503], ["garbage", 502], [("sleep", 1.0)]], ids=str)
def test_transient_failures_are_retried(fake_openai, script):
    server = fake_openai(script=list(script))
    _, out = sample([server.url], n=2, timeout_s=0.3)
    assert len(out[0]) == 2
    assert len(server.requests) == len(script) + 1


def test_retries_are_bounded_and_client_errors_are_not_retried(fake_openai):
    server = fake_openai(script=[500] * 10)
    with pytest.raises(UisbenchError, match="failed after 3 attempts"):
        sample([server.url], max_attempts=3)
    assert len(server.requests) == 3
    refused = fake_openai(script=[400])
    with pytest.raises(UisbenchError, match="HTTP 400"):
        sample([refused.url])
    assert len(refused.requests) == 1


def test_unknown_setting_and_missing_endpoint_are_refused():
    with pytest.raises(UisbenchError, match="unknown openai setting"):
        OpenAIBackend(spec(["http://x/v1"], concurency=2))
    with pytest.raises(UisbenchError, match="--endpoint"):
        OpenAIBackend(spec([]))


def test_failing_endpoint_is_taken_out_and_survivors_serve(fake_openai):
    good, bad = fake_openai(), fake_openai(down=True)
    prompts = [f"Q: {i} + 1 = ?\nA:" for i in range(12)]
    # one request at a time: the first goes to `bad`, its retry to the dead port, then `good`
    urls = [bad.url, dead_url(), good.url]
    backend, out = sample(urls, prompts=prompts, n=2, concurrency=1)
    assert [len(g) for g in out] == [2] * 12
    assert len(good.requests) == 12
    assert len(bad.requests) == 1  # one failure takes it out for the cooldown
    assert [e.failures for e in backend.pool.endpoints] == [1, 1, 0]
    served = {e.url: e.served for e in backend.pool.endpoints}
    assert served[good.url.rstrip("/")] == 12 and sum(served.values()) == 12
    crowd = fake_openai()  # concurrent: requests in flight at a failing endpoint move on too
    _, out = sample([fake_openai(down=True).url, dead_url(), crowd.url], prompts=prompts, n=2)
    assert [len(g) for g in out] == [2] * 12 and len(crowd.requests) == 12


def test_least_outstanding_spreads_slow_requests(fake_openai):
    a = fake_openai(script=[("sleep", 0.3)] * 8)
    b = fake_openai(script=[("sleep", 0.3)] * 8)
    prompts = [f"Q: {i} + 1 = ?\nA:" for i in range(8)]
    backend, _ = sample([a.url, b.url], prompts=prompts, n=1)
    assert (len(a.requests), len(b.requests)) == (4, 4)


ARITH = {"levels": ["add1"], "n_per_level": 6, "n_train_per_level": 2}


def samples(engine) -> list[tuple]:
    with engine.connect() as conn:
        cols = (schema.samples.c.query_id, schema.samples.c.sample_index, schema.samples.c.cost_usd)
        return [tuple(r) for r in conn.execute(select(*cols))]


def test_endpoint_with_a_local_backend_is_refused(tmp_path):
    engine = open_engine(str(tmp_path / "e.db"))
    with pytest.raises(UisbenchError, match="--endpoint is for server backends"):
        record(
            engine, RecordRequest("arith-smoke", "cpu-tiny", 1, endpoints=["http://127.0.0.1:1/v1"])
        )


def test_pool_endpoints_and_cached_tokens_priced(fake_openai, tmp_path):
    server = fake_openai()
    path = served_pool(tmp_path, server.url, cached_price=True)
    assert load_pool(path)[0].endpoints == (server.url,)
    engine = open_engine(str(tmp_path / "b.db"))
    stats = record(
        engine, RecordRequest("arith-smoke", str(path), 2, splits=("test",), task_overrides=ARITH)
    )
    assert (stats.queries, stats.generated) == (6, 12)
    rows = samples(engine)
    # 4 fresh prompt tokens at $1, 16 cached at $0.25, 2 output tokens at $4 per million
    expected = (4 * 1.0 + 16 * 0.25 + 2 * 4.0) / 1e6
    assert all(math.isclose(r[2], expected) for r in rows)


def test_killed_server_loses_nothing_and_resume_duplicates_nothing(fake_openai, tmp_path):
    server = fake_openai()
    path = served_pool(tmp_path, server.url, cached_price=True)
    engine = open_engine(str(tmp_path / "b.db"))
    kw = dict(splits=("test",), task_overrides=ARITH, batch_size=2)
    server.script = [None, None, None, None] + [503] * 50  # dies after two batches of 2 queries
    with pytest.raises(UisbenchError, match="run again to resume"):
        record(engine, RecordRequest("arith-smoke", str(path), 3, **kw))
    assert len(samples(engine)) == 4 * 3  # the two committed batches are kept
    server.script = []  # restarted
    again = record(engine, RecordRequest("arith-smoke", str(path), 3, **kw))
    assert (again.generated, again.already) == (6, 12)
    keys = [(q, i) for q, i, _ in samples(engine)]
    assert len(keys) == len(set(keys)) == 18
    assert sorted({i for _, i in keys}) == [0, 1, 2]


def test_planted_api_key_is_sent_but_stored_nowhere(fake_openai, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("UISBENCH_API_KEY", KEY)
    server = fake_openai(script=[500])
    path = served_pool(tmp_path, server.url, cached_price=True)
    db = str(tmp_path / "k.db")
    args = ["run", "--live", "--backend", "openai", "--endpoint", server.url, "--pool", str(path)]
    args += ["--k", "2", "--limit", "3", "--strategy", "single:model=served-model", "--db", db]
    main(args)
    main(["site", "build", "--db", db, "--out", str(tmp_path / "site")])
    assert {h.get("Authorization") for h in server.headers} == {f"Bearer {KEY}"}
    blobs = [Path(db).read_bytes()]
    blobs += [p.read_bytes() for p in (tmp_path / "site").rglob("*") if p.is_file()]
    assert len(blobs) > 3 and not any(KEY.encode() in b for b in blobs)
    out = capsys.readouterr()
    assert KEY not in out.out + out.err
