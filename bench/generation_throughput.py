"""Generation throughput: uisbench's transformers backend vs a bare ``model.generate`` loop.

Same model object, same prompts, same sampling settings, same seed, in one process; each side
runs ``--repeats`` times alternately and the best time is kept (CPU noise). Prints and writes
(``--out``) output tokens/s of both and the ratio of their wall times (target >= 0.95).

    python bench/generation_throughput.py --model smollm2-135m-instruct --prompts 16 --n 4 \
        --max-tokens 32
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from uisbench.live.backends import GenerationConfig
from uisbench.live.backends.transformers import TransformersBackend
from uisbench.live.pools import load_pool
from uisbench.tasks.arith import make_docs


def bare_loop(model, tokenizer, prompts: list[str], n: int, cfg: GenerationConfig) -> int:
    """The reference: one batched generate call, sampled, no stop strings, tokens counted."""
    enc = tokenizer(prompts, return_tensors="pt", padding=True)
    torch.manual_seed(cfg.seed)
    with torch.inference_mode():
        seqs = model.generate(
            **enc,
            max_new_tokens=cfg.max_tokens,
            do_sample=True,
            temperature=cfg.temperature,
            top_p=cfg.top_p,
            top_k=0,
            num_return_sequences=n,
            pad_token_id=tokenizer.pad_token_id,
        )
    gen = seqs[:, enc["input_ids"].shape[1] :]
    return int((gen != tokenizer.pad_token_id).sum())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pool", default="cpu-tiny")
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--prompts", type=int, default=16)
    ap.add_argument("--n", type=int, default=4)
    ap.add_argument("--max-tokens", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()

    spec = next(m for m in load_pool(args.pool) if m.name == args.model)
    backend = TransformersBackend(spec, device="cpu")
    docs = make_docs(levels=["add2", "mul1"], n_per_level=args.prompts // 2 + 1)
    prompts = [f"Q: {d['a']} {d['op']} {d['b']} = ?\nA: Let me think step by step." for d in docs]
    prompts = prompts[: args.prompts]
    # no stop strings: both sides must generate the same number of tokens to compare speed
    cfg = GenerationConfig(temperature=1.0, top_p=0.95, max_tokens=args.max_tokens, seed=0)
    backend.generate(prompts[:2], 1, GenerationConfig(max_tokens=2))  # warm-up
    best = {"backend": float("inf"), "bare": float("inf")}
    tokens = {}
    for _ in range(args.repeats):
        t = time.perf_counter()
        out = backend.generate(prompts, args.n, cfg)
        best["backend"] = min(best["backend"], time.perf_counter() - t)
        tokens["backend"] = sum(g.output_tokens for grp in out for g in grp)
        t = time.perf_counter()
        tokens["bare"] = bare_loop(backend.model, backend.tokenizer, prompts, args.n, cfg)
        best["bare"] = min(best["bare"], time.perf_counter() - t)
    tps = {k: tokens[k] / best[k] for k in best}
    result = {
        "model": spec.name,
        "prompts": len(prompts),
        "n": args.n,
        "max_tokens": args.max_tokens,
        "threads": torch.get_num_threads(),
        "tokens": tokens,
        "seconds": best,
        "tokens_per_s": tps,
        # both sides do the same work (same seed, sampling settings and length), so the ratio
        # of wall times is the fair figure; token counts differ only in that the bare loop
        # cannot tell EOS from padding (SmolLM2's pad id is its EOS id) and leaves EOS out
        "ratio": best["bare"] / best["backend"],
    }
    print(json.dumps(result, indent=2))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
