"""Serving throughput: samples/s through uisbench vs vLLM driven directly (run in .venv-vllm).

1. ``serve``: the ``openai`` backend's ``generate`` against ``vllm serve``, vs the official
   ``openai`` client sending the same requests (same bodies, ``n`` per request) with the same
   concurrency.
2. ``offline``: the ``vllm`` backend's ``generate`` vs ``LLM.generate`` on the same ``LLM``
   object, identical token prompts and sampling parameters.

vLLM runs eager (``--enforce-eager``: torch.compile's warm-up takes many minutes on a small
CPU) and the same engine serves both sides of each comparison. Both sides run ``--repeats``
times alternately and the best wall time is kept (CPU noise). No stop strings, fixed seeds:
both sides send the same requests.

    bash scripts/serve_env.sh
    VLLM_CPU_KVCACHE_SPACE=1 .venv-vllm/bin/python bench/serve_throughput.py --prompts 32 --n 4 \
        --max-tokens 16 --concurrency 16
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SERVED = "HuggingFaceTB/SmolLM2-135M-Instruct"


def prompts_for(count: int) -> list[str]:
    from uisbench.tasks.arith import make_docs

    docs = make_docs(levels=["add2", "mul1"], n_per_level=count // 2 + 1)
    return [f"Q: {d['a']} {d['op']} {d['b']} = ?\nA: Let me think step by step." for d in docs][
        :count
    ]


def start_server(model_dir: str, port: int, log: Path) -> subprocess.Popen:
    import httpx

    cmd = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", model_dir]
    cmd += ["--served-model-name", SERVED, "--host", "127.0.0.1", "--port", str(port)]
    cmd += ["--max-model-len", "1024", "--enforce-eager"]
    proc = subprocess.Popen(cmd, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    for _ in range(450):
        if proc.poll() is not None:
            raise SystemExit(f"vllm serve exited; see {log}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=5).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        time.sleep(2)
    proc.kill()
    raise SystemExit(f"vllm serve not ready; see {log}")


async def direct(url: str, bodies: list[dict], concurrency: int) -> int:
    """The reference: the official client, the same bodies, a semaphore of ``concurrency``."""
    from openai import AsyncOpenAI

    client = AsyncOpenAI(base_url=url, api_key="none", max_retries=0, timeout=600)
    gate = asyncio.Semaphore(concurrency)

    async def one(body: dict) -> int:
        async with gate:
            extra = {k: v for k, v in body.items() if k not in ("model", "prompt")}
            res = await client.completions.create(
                model=body["model"], prompt=body["prompt"], **extra
            )
            return len(res.choices)

    counts = await asyncio.gather(*(one(b) for b in bodies))
    await client.close()
    return sum(counts)


def summary(times: dict[str, list[float]], samples: dict[str, int]) -> dict:
    """Best wall time per side, samples/s from it, and harness/direct of the rates."""
    best = {k: min(v) for k, v in times.items()}
    rate = {k: samples[k] / best[k] for k in best}
    return {
        "seconds": times,
        "best_s": best,
        "samples": samples,
        "samples_per_s": rate,
        "ratio": rate["harness"] / rate["direct"],
    }


def bench_serve(args, model_dir: str, prompts: list[str]) -> dict:
    from uisbench.live.backends import GenerationConfig
    from uisbench.live.backends.openai import OpenAIBackend, request_body
    from uisbench.live.pools import ModelSpec

    proc = None
    url = args.endpoint
    if url is None:
        port = 18000 + os.getpid() % 1000
        proc = start_server(model_dir, port, Path(tempfile.gettempdir()) / "serve_bench.log")
        url = f"http://127.0.0.1:{port}/v1"
    settings = {"concurrency": args.concurrency, "timeout_s": 600}
    spec = ModelSpec(
        name="smollm2",
        backend="openai",
        identifier=SERVED,
        params_total=1,
        params_active=1,
        endpoints=(url,),
        extra={"openai": settings},
    )
    cfg = GenerationConfig(temperature=1.0, top_p=0.95, max_tokens=args.max_tokens, seed=0)
    bodies = [request_body(SERVED, p, args.n, cfg, cfg.seed + i) for i, p in enumerate(prompts)]
    backend = OpenAIBackend(spec)
    try:
        backend.generate(prompts[:2], 1, GenerationConfig(max_tokens=2))  # warm-up
        times: dict[str, list[float]] = {"harness": [], "direct": []}
        samples = {}
        for _ in range(args.repeats):
            t = time.perf_counter()
            out = backend.generate(prompts, args.n, cfg)
            times["harness"].append(time.perf_counter() - t)
            samples["harness"] = sum(len(g) for g in out)
            t = time.perf_counter()
            samples["direct"] = asyncio.run(direct(url, bodies, args.concurrency))
            times["direct"].append(time.perf_counter() - t)
    finally:
        backend.close()
        if proc is not None:
            proc.terminate()
            proc.wait()
    return summary(times, samples)


def bench_offline(args, model_dir: str, prompts: list[str]) -> dict:
    from vllm import LLM, SamplingParams
    from vllm.inputs import TokensPrompt

    from uisbench.live.backends import GenerationConfig
    from uisbench.live.backends.vllm import VllmBackend
    from uisbench.live.pools import ModelSpec

    llm = LLM(
        model=model_dir,
        seed=0,
        logprobs_mode="processed_logprobs",
        max_model_len=1024,
        enforce_eager=True,
    )
    spec = ModelSpec(
        name="smollm2", backend="vllm", identifier=model_dir, params_total=1, params_active=1
    )
    backend = VllmBackend(spec, llm=llm)
    cfg = GenerationConfig(temperature=1.0, top_p=0.95, max_tokens=args.max_tokens, seed=0)
    tokens = [TokensPrompt(prompt_token_ids=ids) for ids in backend.prompt_ids(prompts)]
    params = [
        SamplingParams(
            n=args.n, temperature=1.0, top_p=0.95, max_tokens=args.max_tokens, seed=i, logprobs=0
        )
        for i in range(len(prompts))
    ]
    backend.generate(prompts[:2], 1, GenerationConfig(max_tokens=2))  # warm-up
    times: dict[str, list[float]] = {"harness": [], "direct": []}
    samples = {}
    try:
        for _ in range(args.repeats):
            t = time.perf_counter()
            out = backend.generate(prompts, args.n, cfg)
            times["harness"].append(time.perf_counter() - t)
            samples["harness"] = sum(len(g) for g in out)
            t = time.perf_counter()
            res = llm.generate(tokens, params, use_tqdm=False)
            times["direct"].append(time.perf_counter() - t)
            samples["direct"] = sum(len(r.outputs) for r in res)
    finally:
        backend.close()
    return summary(times, samples)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--prompts", type=int, default=32)
    ap.add_argument("--n", type=int, default=4)
    ap.add_argument("--max-tokens", type=int, default=16)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--endpoint", default=None, help="A running server (default: start one).")
    ap.add_argument("--only", choices=("serve", "offline"), default=None)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()

    from uisbench.live.backends.vllm import checkpoint_for
    from uisbench.live.pools import load_pool

    spec = next(m for m in load_pool("cpu-tiny") if m.name == "smollm2-135m-instruct")
    model_dir = checkpoint_for(spec)
    prompts = prompts_for(args.prompts)
    result = {
        "prompts": len(prompts),
        "n": args.n,
        "max_tokens": args.max_tokens,
        "concurrency": args.concurrency,
        "cpus": os.cpu_count(),
    }
    if args.only in (None, "serve"):
        result["serve"] = bench_serve(args, model_dir, prompts)
        print(json.dumps(result["serve"], indent=2), flush=True)
    if args.only in (None, "offline"):
        result["offline"] = bench_offline(args, model_dir, prompts)
    print(json.dumps(result, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
