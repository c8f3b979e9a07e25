"""Seeded synthetic sample banks in the flat JSONL(.gz) format, for speed and scale tests only.

Nothing here is a model result: every task is named ``synthetic-...`` and the bank must be
imported with ``synthetic=True`` (``uisbench bank import --synthetic``) so that reports and the
site label it. The generator still has the structure strategies care about, so that a sweep
over k does real work and majority vote actually helps:

* each query has a difficulty and each model a skill; a query/model pair gets a latent accuracy
  ``p = sigmoid(skill - difficulty + noise)``;
* each query has one correct answer and a few distractors with uneven weights; a sample is
  correct with probability ``p``, otherwise it picks a distractor (so the plurality is right
  whenever ``p`` beats the heaviest distractor's share, and more samples sharpen that);
* a small share of samples has no extracted answer (null);
* prompt tokens are per query, output tokens log-normal per model, log-probs higher for correct
  samples, dollars from the pool prices and latency from tokens over a per-model throughput.

Usage: ``python bench/synthetic.py OUT.jsonl.gz [--queries N --models M --samples S --seed X]``
writes OUT.jsonl.gz and OUT.models.json next to it.
"""

from __future__ import annotations

import argparse
import gzip
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: Pool of synthetic models: (name, params in billions, training tokens in trillions,
#: USD per million input / output tokens, skill, output tokens per second).
POOL = (
    ("syn-0.5b", 0.5, 18.0, 0.02, 0.04, -1.2, 220.0),
    ("syn-1.5b", 1.5, 18.0, 0.05, 0.10, -0.5, 180.0),
    ("syn-3b", 3.0, 15.0, 0.08, 0.16, 0.0, 150.0),
    ("syn-8b", 8.0, 15.0, 0.15, 0.30, 0.6, 110.0),
    ("syn-32b", 32.0, 18.0, 0.60, 1.20, 1.2, 60.0),
    ("syn-70b", 70.0, 15.0, 0.90, 1.80, 1.7, 35.0),
    ("syn-405b", 405.0, 15.0, 3.00, 6.00, 2.1, 20.0),
    ("syn-1t", 1000.0, 20.0, 5.00, 15.00, 2.4, 12.0),
)
N_DISTRACTORS = 3
NO_ANSWER_RATE = 0.02


@dataclass
class SyntheticStats:
    path: Path
    models_path: Path
    task: str
    queries: int
    models: list[str]
    samples: int
    rows: int


def task_name(queries: int, seed: int) -> str:
    return f"synthetic-q{queries}-s{seed}"


def models_meta(n_models: int) -> dict[str, dict]:
    """The ``NAME.models.json`` content for the first ``n_models`` synthetic models."""
    if not 1 <= n_models <= len(POOL):
        raise ValueError(f"models must be between 1 and {len(POOL)}")
    return {
        name: {
            "family": "synthetic",
            "params_b": params,
            "train_tokens_t": tokens,
            "price_in_per_mtok": p_in,
            "price_out_per_mtok": p_out,
        }
        for name, params, tokens, p_in, p_out, _skill, _tps in POOL[:n_models]
    }


def generate(
    out: Path,
    *,
    queries: int = 10_000,
    models: int = 6,
    samples: int = 64,
    seed: int = 0,
    compresslevel: int = 1,
) -> SyntheticStats:
    """Write a bank of ``queries × models × samples`` rows to ``out`` (.jsonl or .jsonl.gz).

    The same arguments always give byte-identical files (one seeded generator, fixed order:
    model, then query, then sample index).
    """
    rng = np.random.default_rng([seed, 0xBA4C])
    pool = POOL[:models]
    task = task_name(queries, seed)
    task_j = json.dumps(task)

    difficulty = rng.normal(0.0, 1.3, queries)
    prompt_tokens = rng.integers(40, 400, queries)
    reference = rng.integers(0, 10_000, queries)
    # Distractors: distinct from the reference; their weights are uneven so one is the
    # "attractive wrong answer" majority vote has to beat.
    distract = (reference[:, None] + rng.integers(1, 9_999, (queries, N_DISTRACTORS))) % 10_000
    dweights = rng.dirichlet(np.full(N_DISTRACTORS, 0.7), queries)
    dcum = np.cumsum(dweights, axis=1)
    head = [
        f'{{"task":{task_j},"query_id":"q{i:06d}","split":null,'
        f'"prompt":"Synthetic question {i} (seed {seed}): what is the hidden number?",'
        f'"reference":"{reference[i]}","model":'
        for i in range(queries)
    ]
    ref_s = [str(x) for x in reference.tolist()]
    dis_s = [[str(x) for x in row] for row in distract.tolist()]

    models_path = out.with_name(out.name.split(".jsonl")[0] + ".models.json")
    meta = models_meta(models)
    out.parent.mkdir(parents=True, exist_ok=True)
    opener = (
        (lambda p: gzip.open(p, "wt", encoding="utf-8", compresslevel=compresslevel))
        if out.suffix == ".gz"
        else (lambda p: open(p, "w", encoding="utf-8"))
    )
    rows = 0
    with opener(out) as fh:
        for name, _params, _tokens, p_in, p_out, skill, tps in pool:
            name_j = json.dumps(name)
            p = 1.0 / (1.0 + np.exp(-(skill - difficulty + rng.normal(0.0, 0.5, queries))))
            u = rng.random((queries, samples))
            correct = u < p[:, None]
            pick = rng.random((queries, samples))
            which = (pick[:, :, None] > dcum[:, None, :]).sum(axis=2)
            which = np.minimum(which, N_DISTRACTORS - 1)
            null = rng.random((queries, samples)) < NO_ANSWER_RATE
            correct &= ~null
            out_tok = np.maximum(
                1, rng.lognormal(np.log(120 + 40 * skill), 0.45, (queries, samples))
            ).astype(np.int64)
            # a log-probability is never positive (the bank format's bounds refuse it)
            logprob = np.minimum(
                0.0,
                np.where(correct, -0.02, -0.06) * out_tok
                + rng.normal(0.0, 1.5, (queries, samples)),
            )
            cost = (p_in * prompt_tokens[:, None] + p_out * out_tok) / 1e6
            latency = 0.05 + out_tok / tps * rng.uniform(0.9, 1.2, (queries, samples))
            lines = []
            for i in range(queries):
                h = f"{head[i]}{name_j},"
                pt = int(prompt_tokens[i])
                c_row = correct[i].tolist()
                n_row = null[i].tolist()
                w_row = which[i].tolist()
                o_row = out_tok[i].tolist()
                l_row = logprob[i].tolist()
                d_row = cost[i].tolist()
                t_row = latency[i].tolist()
                ref, dis = ref_s[i], dis_s[i]
                for j in range(samples):
                    if n_row[j]:
                        ans = "null"
                    elif c_row[j]:
                        ans = f'"{ref}"'
                    else:
                        ans = f'"{dis[w_row[j]]}"'
                    lines.append(
                        f'{h}"sample":{j},"answer":{ans},'
                        f'"correct":{"true" if c_row[j] else "false"},'
                        f'"input_tokens":{pt},"output_tokens":{o_row[j]},'
                        f'"cost_usd":{d_row[j]:.6g},"latency_s":{t_row[j]:.4f},'
                        f'"logprob":{l_row[j]:.4f}}}\n'
                    )
                if len(lines) >= 65_536:
                    fh.write("".join(lines))
                    rows += len(lines)
                    lines.clear()
            fh.write("".join(lines))
            rows += len(lines)
    models_path.write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    return SyntheticStats(out, models_path, task, queries, [m[0] for m in pool], samples, rows)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path, help="output .jsonl or .jsonl.gz")
    ap.add_argument("--queries", type=int, default=10_000)
    ap.add_argument("--models", type=int, default=6)
    ap.add_argument("--samples", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    st = generate(a.out, queries=a.queries, models=a.models, samples=a.samples, seed=a.seed)
    print(f"SYNTHETIC bank: {st.rows} rows ({st.task}) -> {st.path}, {st.models_path}")


if __name__ == "__main__":
    main()
