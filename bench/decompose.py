"""Decomposition of SmolLM2-135M-Instruct (issue 12): what is removed, what it costs, what it buys.

Decomposes the cpu-tiny pool's SmolLM2 against its config's init distribution (no initial
checkpoint exists for it), then measures against the dense model on the arith-smoke test
prompts of the shipped bank's recipe:

* structure: fraction of weights removed, blocks per map, executed weights (from the report);
* function: KL(dense ‖ decomposed) of the next-token distribution after each prompt and the
  mean over prompt tokens; the block form against the masked dense model (max |Δlogit|);
* accuracy: the variant recorded with the shipped bank's generation settings (temperature 0.7,
  top-p 0.95, same task arguments, batch 16), compared with the shipped bank's SmolLM2 samples
  on the same test queries;
* cost: FLOPs per token (2·N_active) and wall time per generated token, decomposed / dense.

It also writes a bank file holding the shipped bank plus the variant's samples, and runs
``single`` and ``decomposed`` on it through the meter (the leaderboard rows).

    python bench/decompose.py --out /tmp/decompose-bench --k 8
"""

from __future__ import annotations

import argparse
import gzip
import json
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from uisbench.decompose.annealing import function_change
from uisbench.decompose.backend import DecomposedBackend
from uisbench.decompose.pipeline import REPORT_FILE
from uisbench.decompose.variant import POOL_FILE, calibration_batch, decompose_pool_model
from uisbench.job import DEFAULT_LIVE, shipped_banks
from uisbench.live.backends.transformers import TransformersBackend
from uisbench.live.pools import load_pool
from uisbench.store.bankfile import row_to_json
from uisbench.strategies.decomposed import variant_name
from uisbench.tasks import load_task

MODEL = "smollm2-135m-instruct"
LEVELS = (1e-1, 1e-2, 1e-4, 1e-8, 1e-12)


def decomposed_dir(out: Path, spec, task, force: float | None) -> dict:
    target = out / "decomposed"
    if not (target / REPORT_FILE).exists():
        start = time.perf_counter()
        report = decompose_pool_model(
            spec,
            target,
            variant_name(MODEL),
            task=task,
            levels=LEVELS,
            progress=print,
            force=force,
        )
        report["seconds"] = time.perf_counter() - start
        (target / REPORT_FILE).write_text(json.dumps(report, indent=1))
    return json.loads((target / REPORT_FILE).read_text())


def kl_on_prompts(dense, variant, batches) -> dict:
    """KL(dense ‖ decomposed): next-token distribution after the prompt, and mean over tokens."""
    last, mean, max_logit = [], [], 0.0
    for batch in batches:
        with torch.inference_mode():
            a = dense.model(**batch).logits.float()
            b = variant.model(**batch).logits.float()
        mean.append(function_change(a, b, batch["attention_mask"]).mean_kl)
        pa, pb = torch.log_softmax(a[:, -1], -1), torch.log_softmax(b[:, -1], -1)
        last.extend((pa.exp() * (pa - pb)).sum(-1).tolist())  # left padding: -1 is the last
        max_logit = max(max_logit, float((a - b).abs().max()))
    return {
        "kl_next_token_mean": float(np.mean(last)),
        "kl_next_token_max": float(np.max(last)),
        "kl_prompt_tokens_mean": float(np.mean(mean)),
        "max_abs_logit": max_logit,
    }


def block_vs_masked(variant_dir: Path, variant, batch) -> float:
    from transformers import AutoModelForCausalLM

    masked = AutoModelForCausalLM.from_pretrained(variant_dir, dtype=torch.float32).eval()
    with torch.inference_mode():
        return float((masked(**batch).logits - variant.model(**batch).logits).abs().max())


def time_per_token(backends: dict, batch, new_tokens: int = 32, repeats: int = 3) -> dict:
    """Greedy generation of exactly ``new_tokens`` tokens, alternating the models."""
    times: dict[str, list[float]] = {k: [] for k in backends}
    n_tokens = batch["input_ids"].shape[0] * new_tokens
    for _ in range(repeats):
        for name, b in backends.items():
            start = time.perf_counter()
            with torch.inference_mode():
                b.model.generate(
                    **batch,
                    max_new_tokens=new_tokens,
                    min_new_tokens=new_tokens,
                    do_sample=False,
                    pad_token_id=b.tokenizer.pad_token_id,
                )
            times[name].append((time.perf_counter() - start) / n_tokens)
    return {k: float(np.median(v)) for k, v in times.items()}


def record_variant(out: Path, k: int, limit: int | None) -> Path:
    from uisbench.live.recording import RecordRequest, record
    from uisbench.store.engine import open_engine

    db = out / "record.db"
    engine = open_engine(str(db))
    req = RecordRequest(
        DEFAULT_LIVE["task"],
        str(out / "decomposed" / POOL_FILE),
        k,
        limit=limit,
        splits=("test",),
        batch_size=16,
        task_overrides=DEFAULT_LIVE["task_overrides"],
    )
    stats = record(engine, req)
    print(f"recorded {stats.generated} samples in {stats.seconds:.0f} s", flush=True)
    return db


def variant_rows(db: Path) -> list:
    from uisbench.store.bank import export_rows
    from uisbench.store.engine import open_engine

    with open_engine(str(db)).connect() as conn:
        bank = conn.exec_driver_sql("select name from banks").scalar()
        return list(export_rows(conn, bank))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--k", type=int, default=8, help="samples per test query (shipped bank: 8)")
    ap.add_argument("--limit", type=int, default=None, help="first N test queries only")
    ap.add_argument("--force-level", type=float, default=None, help="keep this level anyway")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    spec = next(m for m in load_pool("cpu-tiny") if m.name == MODEL)
    task = load_task(DEFAULT_LIVE["task"], **DEFAULT_LIVE["task_overrides"])
    report = decomposed_dir(args.out, spec, task, args.force_level)
    vspec = load_pool(args.out / "decomposed" / POOL_FILE)[0]
    dense = TransformersBackend(spec, device="cpu")
    variant = DecomposedBackend(vspec, device="cpu")
    n_test = len(task.docs("test"))
    batches = [
        calibration_batch(dense, _Slice(task, s), "test", 16, True) for s in range(0, n_test, 16)
    ]
    results = {"report": {k: v for k, v in report.items() if k not in ("maps", "layers")}}
    results["function"] = kl_on_prompts(dense, variant, batches)
    results["block_vs_masked_max_abs_logit"] = block_vs_masked(
        args.out / "decomposed", variant, batches[0]
    )
    timing = time_per_token({"dense": dense, "decomposed": variant}, batches[0])
    results["seconds_per_token"] = timing
    results["params"] = {"dense": spec.params_total, "decomposed": vspec.params_active}
    print(json.dumps(results, indent=1), flush=True)
    db = record_variant(args.out, args.k, args.limit)
    results["accuracy"] = accuracy(variant_rows(db), args.out)
    (args.out / "results.json").write_text(json.dumps(results, indent=1))
    print(json.dumps(results, indent=1))


class _Slice:
    """The test docs from ``start`` on (calibration_batch takes the first n)."""

    def __init__(self, task, start: int) -> None:
        self.task, self.start = task, start

    def docs(self, split: str) -> list[dict]:
        return self.task.docs(split)[self.start :]

    def __getattr__(self, name: str):
        return getattr(self.task, name)


def accuracy(rows: list, out: Path) -> dict:
    """Per-sample accuracy of the variant and of the shipped SmolLM2 on the same test queries;
    writes the combined bank and runs single/decomposed on it through the meter."""
    shipped_file = next(p for p in shipped_banks() if p.name.startswith("arith-smoke-cpu-tiny"))
    var = pd.DataFrame([asdict(r) for r in rows]).rename(columns={"query_id": "query_key"})
    shipped = pd.read_json(shipped_file, lines=True, compression="gzip")
    dense = shipped[(shipped.model == MODEL) & shipped.query_id.isin(var.query_key)]
    acc = {
        "queries": int(var.query_key.nunique()),
        "samples_per_query": int(var.groupby("query_key").size().min()),
        "dense_per_sample": float(dense.correct.mean()),
        "decomposed_per_sample": float(var.correct.mean()),
    }
    acc["delta"] = acc["decomposed_per_sample"] - acc["dense_per_sample"]
    # standard error of the delta, bootstrap over queries
    rng = np.random.default_rng(0)
    d_q = dense.groupby("query_id").correct.mean()
    v_q = var.groupby("query_key").correct.mean().reindex(d_q.index)
    idx = rng.integers(len(d_q), size=(2000, len(d_q)))
    boot = v_q.to_numpy()[idx].mean(1) - d_q.to_numpy()[idx].mean(1)
    acc["delta_ci95"] = [float(np.quantile(boot, 0.025)), float(np.quantile(boot, 0.975))]
    acc["leaderboard"] = leaderboard(shipped_file, rows, out)
    return acc


def leaderboard(shipped_file: Path, rows: list, out: Path) -> str:
    """Shipped bank + variant rows as one bank file; single and decomposed through the meter."""
    bank = out / "arith-smoke-cpu-tiny-decomposed.jsonl.gz"
    models = json.loads(
        shipped_file.with_name(shipped_file.name.replace(".jsonl.gz", ".models.json")).read_text()
    )
    vspec = load_pool(out / "decomposed" / POOL_FILE)[0]
    models[vspec.name] = {
        "family": vspec.family,
        "params_b": vspec.params_total / 1e9,
        "active_params_b": vspec.params_active / 1e9,
        "train_tokens_t": 2.0,
    }
    bank.with_name(bank.name.replace(".jsonl.gz", ".models.json")).write_text(
        json.dumps(models, indent=1)
    )
    with gzip.open(bank, "wt") as f:
        with gzip.open(shipped_file, "rt") as src:
            f.write(src.read())
        f.writelines(row_to_json(r) + "\n" for r in rows)
    cmd = [
        sys.executable,
        "-m",
        "uisbench.cli",
        "run",
        "--bank",
        str(bank),
        "--db",
        str(out / "runs.db"),
        "--seed",
        "0",
        "--strategy",
        f"single:model={MODEL}",
        "--strategy",
        f"decomposed:model={vspec.name}",
    ]
    done = subprocess.run(cmd, capture_output=True, text=True)
    print(done.stdout, done.stderr, flush=True)
    return done.stdout


if __name__ == "__main__":
    main()
