"""Accuracy and speed of the cpu-tiny models on arith-smoke, per difficulty level.

For each model and level: per-sample accuracy, maj@n (lm-eval-extracted answers, plurality
vote) and pass@n (unbiased estimator, k = n), plus wall time and output tokens/s. Used to pick
the default shipped bank (models neither at 0% nor near 100%).

    python bench/arith_levels.py --levels add1 add2 --queries 40 --n 8
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter

import numpy as np

from uisbench.live.backends import GenerationConfig, get_backend
from uisbench.live.pools import load_pool
from uisbench.strategies.estimators import pass_at_k
from uisbench.tasks import load_task


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pool", default="cpu-tiny")
    ap.add_argument("--models", nargs="*", default=None)
    ap.add_argument("--levels", nargs="+", default=["add1", "add2"])
    ap.add_argument("--queries", type=int, default=40)
    ap.add_argument("--n", type=int, default=8)
    ap.add_argument("--temperature", type=float, default=0.7)
    args = ap.parse_args()
    rows = []
    for spec in load_pool(args.pool):
        if args.models and spec.name not in args.models:
            continue
        backend = get_backend(spec, device="cpu")
        for level in args.levels:
            task = load_task("arith-smoke", levels=[level], n_per_level=args.queries)
            docs = task.docs("test")
            gen = task.generation_defaults
            cfg = GenerationConfig(
                temperature=args.temperature,
                top_p=gen["top_p"],
                max_tokens=gen["max_tokens"],
                stop=tuple(gen["stop"]),
                seed=0,
            )
            t = time.perf_counter()
            out = backend.generate([task.prompt(d) for d in docs], args.n, cfg)
            wall = time.perf_counter() - t
            per_query, maj = [], []
            for doc, group in zip(docs, out):
                scored = task.score(doc, [g.text for g in group])
                per_query.append(sum(c for _, c in scored))
                votes = Counter(a for a, _ in scored if a is not None).most_common(1)
                maj.append(bool(votes) and votes[0][0] == task.reference(doc))
            c = np.array(per_query)
            toks = sum(g.output_tokens for grp in out for g in grp)
            row = {
                "model": spec.name,
                "level": level,
                "queries": len(docs),
                "n": args.n,
                "acc_per_sample": float(c.sum() / (len(docs) * args.n)),
                f"maj@{args.n}": float(np.mean(maj)),
                f"pass@{args.n}": float(np.mean(pass_at_k(args.n, c, args.n))),
                "wall_s": round(wall, 1),
                "out_tok_per_s": round(toks / wall, 1),
            }
            rows.append(row)
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
