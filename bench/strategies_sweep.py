"""Strategy sweep on the real banks: time every family's sweep and check the quality bars.

For each real bank (mmlu-llama-ladder, date-mot from ../shared/data/banks) it runs the four
strategy families — routing-only, TTS-only, UniScale, T2-optimal — with 10 settings each and 5
seeds, plus the reference points, and prints wall time per family and bank, a table of every
configuration (accuracy, $/query, FLOPs/query) and the issue's quality bars.

    .venv/bin/python bench/strategies_sweep.py                 # through the runner + SQLite
    .venv/bin/python bench/strategies_sweep.py --mode memory   # strategies only, no DB writes

``--mode runner`` is what ``uisbench run`` does (decision rows written to a fresh SQLite file);
``--mode memory`` replays the same runs in memory (``uisbench.run_loop``) and times
the strategies and the meter alone. Query embeddings are cached on disk after their first
computation (``features.py``); the first ever run on a machine pays for embedding every prompt
once (minutes on a CPU) and that is not part of the sweep's time — run it once to warm.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "banks"
BANKS = {"mmlu-llama-ladder": "mmlu", "date-mot": "date-understanding"}
SEEDS = [0, 1, 2, 3, 4]
FAMILIES = ("routing", "tts", "uniscale", "t2")


def spread(values: list, n: int) -> list:
    """At most ``n`` items of ``values``, evenly spread and keeping both ends."""
    if len(values) <= n:
        return list(values)
    idx = np.unique(np.round(np.linspace(0, len(values) - 1, n)).astype(int))
    return [values[i] for i in idx]


def family_specs(models: list[str], max_k: dict[str, int]) -> dict:
    """Ten settings per family for this pool (TTS degenerates to k=1 where the bank has 1)."""
    from uisbench.strategies.base import STRATEGIES, config_label

    reg = STRATEGIES.all()
    skip = len(models) - 2
    routing = [f"lr-router:wtp={x}" for x in ("inf", 50, 20, 10, 3.3, 1, 0.1)] + [
        f"cascade:escalate={x},skip={skip}" for x in (0.1, 0.3, 0.5)
    ]
    tts = [
        config_label(name, p)
        for name in ("majority", "best-of-k", "adaptive", "pass-at-k")
        for p in reg[name].sweep(models, max_k)
    ]
    tts = spread(tts, 10)
    for m in models:  # banks with one sample per query: k = 1 is all TTS can do
        if len(tts) < 10:
            tts.append(f"majority:model={m},k=1")
    uniscale = [f"uniscale:cost_weight={w}" for w in (0, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 1, 2)]
    t2 = [f"t2:budget={b:.3g}" for b in np.geomspace(0.003, 1.5, 10)]
    refs = [f"single:model={m}" for m in models] + ["random", "oracle"]
    return {"routing": routing, "tts": tts, "uniscale": uniscale, "t2": t2, "reference": refs}


def run_bank(engine, bank: str, task: str, mode: str, seeds: list[int]) -> tuple[dict, list]:
    from uisbench.run_loop import replay_in_memory
    from uisbench.runner import Runner

    runner = Runner(engine, task, bank)
    specs = family_specs(runner.models, runner.max_k())
    times, cpu, rows = {}, {}, []
    for fam, fam_specs in specs.items():
        t0, c0 = time.perf_counter(), time.process_time()
        for spec in fam_specs:
            for seed in seeds:
                if mode == "runner":
                    runner.run(spec, seed, command="bench/strategies_sweep.py")
                else:
                    r = replay_in_memory(
                        runner.arrays, runner.train, runner.test_pos, spec, seed, runner.cache
                    )
                    rows.append(
                        {
                            "config_label": r.label,
                            "family": r.family,
                            "seed": seed,
                            "upper_bound": r.upper_bound,
                            "accuracy": r.accuracy,
                            "dollars": r.dollars,
                            "flops": r.flops,
                        }
                    )
        times[fam] = time.perf_counter() - t0
        cpu[fam] = time.process_time() - c0
    return times, cpu, rows


def summary_table(engine, bank: str, task: str, mode: str, rows: list) -> pd.DataFrame:
    if mode == "memory":
        df = pd.DataFrame(rows)
        return df.groupby(["config_label", "family"], as_index=False).agg(
            accuracy=("accuracy", "mean"),
            dollars=("dollars", "mean"),
            flops=("flops", "mean"),
            upper_bound=("upper_bound", "any"),
        )
    from uisbench.results.aggregate import load_decisions, summarize

    s = summarize(load_decisions(engine, task))
    return s[s["bank"] == bank][
        ["config_label", "family", "accuracy", "dollars", "flops", "upper_bound"]
    ]


def dominated(front: pd.DataFrame, other: pd.DataFrame, cost: str) -> bool:
    """True when every point of ``front`` is weakly beaten (cost and accuracy) by ``other``."""
    for _, p in front.iterrows():
        beaten = (
            (other[cost] <= p[cost])
            & (other["accuracy"] >= p["accuracy"])
            & ((other[cost] < p[cost]) | (other["accuracy"] > p["accuracy"]))
        )
        if not beaten.any():
            return False
    return True


def quality_bars(tables: dict[str, pd.DataFrame]) -> list[str]:
    out = []
    if "mmlu-llama-ladder" in tables:
        out += mmlu_bars(tables["mmlu-llama-ladder"])
    if "date-mot" in tables:
        out += date_bars(tables["date-mot"])
    return out


def mmlu_bars(t: pd.DataFrame) -> list[str]:
    """Routing matches the 405B model at <= 60% of its dollars; routing's AIQ beats the hull."""
    from uisbench.results.pareto import aiq

    out = []
    big = t[t.config_label == "single:model=llama3.1-405b"].iloc[0]
    rout = t[t.family == "routing"]
    ok = rout[rout.accuracy >= big.accuracy - 0.01]
    best = ok.loc[ok.dollars.idxmin()] if len(ok) else None
    share = best.dollars / big.dollars if best is not None else float("nan")
    out.append(
        f"mmlu: 405B acc {big.accuracy:.4f} at ${big.dollars:.3g}/q; cheapest routing config "
        f"within 1 pt: {best.config_label if best is not None else 'none'} "
        f"acc {best.accuracy if best is not None else float('nan'):.4f} at "
        f"{share:.1%} of its dollars -> bar (<= 60%) {'MET' if share <= 0.6 else 'NOT MET'}"
    )
    singles = t[t.config_label.str.startswith("single:")]
    lo = min(singles.dollars.min(), rout.dollars.min())
    hi = max(singles.dollars.max(), rout.dollars.max())
    a_r = aiq(rout.dollars.to_numpy(), rout.accuracy.to_numpy(), lo, hi)
    a_s = aiq(singles.dollars.to_numpy(), singles.accuracy.to_numpy(), lo, hi)
    out.append(
        f"mmlu: AIQ($) routing {a_r:.4f} vs single-model hull {a_s:.4f} -> "
        f"{'MET' if a_r > a_s else 'NOT MET'}"
    )
    return out


def date_bars(t: pd.DataFrame) -> list[str]:
    """Majority vote beats k = 1; UniScale's front is not dominated by one family alone."""
    out = []
    k1 = t[t.config_label == "single:model=llama-2-13b"].accuracy.iloc[0]
    maj = t[t.config_label.str.startswith("majority:model=llama-2-13b")]
    maj = maj[~maj.config_label.str.endswith("k=1")]
    if len(maj):
        b = maj.loc[maj.accuracy.idxmax()]
        verdict = "MET" if b.accuracy > k1 else "NOT MET"
        out.append(
            f"date-mot: llama-2-13b k=1 acc {k1:.4f}; best majority {b.config_label} "
            f"acc {b.accuracy:.4f} -> {verdict}"
        )
    real = t[~t.upper_bound.astype(bool)]
    uni = real[real.family == "uniscale"]
    for fam in ("routing", "tts"):
        other = real[real.family == fam]
        dom = dominated(uni, other, "dollars")
        out.append(
            f"date-mot: UniScale front dominated by {fam}-only ($)? "
            f"{'yes -> NOT MET' if dom else 'no -> MET'}"
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mode", choices=("runner", "memory"), default="runner")
    ap.add_argument("--seeds", type=int, default=len(SEEDS))
    ap.add_argument("--table", action="store_true", help="print every configuration")
    args = ap.parse_args()
    if not DATA.is_dir():
        sys.exit(f"needs the real banks in {DATA} (../shared/data/banks)")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from uisbench.store.bank import import_file
    from uisbench.store.engine import open_engine

    seeds = list(range(args.seeds))
    tmp = tempfile.mkdtemp()
    engine = open_engine(f"sqlite:///{tmp}/sweep.db")
    tables, grand, grand_cpu = {}, 0.0, 0.0
    for bank, task in BANKS.items():
        import_file(engine, DATA / f"{bank}.jsonl", DATA / f"{bank}.models.json")
        t0 = time.perf_counter()
        times, cpu, rows = run_bank(engine, bank, task, args.mode, seeds)
        total = time.perf_counter() - t0
        four = sum(times[f] for f in FAMILIES)
        four_cpu = sum(cpu[f] for f in FAMILIES)
        grand += four
        grand_cpu += four_cpu
        print(
            f"{bank}: "
            + ", ".join(f"{f} {times[f]:.1f}s" for f in times)
            + f" | four families {four:.1f}s wall, {four_cpu:.1f}s CPU; "
            f"all incl. load {total:.1f}s"
        )
        tables[bank] = summary_table(engine, bank, task, args.mode, rows)
        if args.table:
            with pd.option_context("display.width", 160, "display.max_rows", 200):
                print(tables[bank].sort_values("dollars").to_string(index=False))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"four families x 10 settings x {len(seeds)} seeds on both banks: {grand:.1f}s wall, "
        f"{grand_cpu:.1f}s CPU of this process (mode={args.mode}, {os.cpu_count()} CPUs, "
        f"load average {load:.1f} at the end)"
    )
    for line in quality_bars(tables):
        print(line)


if __name__ == "__main__":
    main()
