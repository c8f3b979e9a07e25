"""Each strategy family's front against the single-model hull on every real bank (issue 15).

For every bank in ``../shared/data/banks`` (``NAME.jsonl`` beside ``NAME.models.json``) it
replays every registered strategy's default sweep (``Strategy.sweep``) with a few seeds, in
memory, and compares each family's non-decreasing hull with the hull of the single models:

* AIQ (RouterBench) over linear cost and over log cost, on the cost range shared by every
  configuration of the bank (upper bounds such as ``oracle`` and ``pass-at-k`` left out);
* at each single model's mean cost: the family hull's accuracy minus that model's, with a 95%
  paired-bootstrap interval over the test queries, the family's mixture chosen on other
  queries (:func:`uisbench.results.budget.budget_table`; ``—`` where the family cannot spend
  that little).

The cost is FLOPs where every model's size is known, else dollars (as the strategies choose).
It prints one Markdown table per bank, then each T2 approach's extrapolation errors (the law
refitted without the largest k, and without the largest model), for bench/RESULTS.md::

    .venv/bin/python bench/strategy_quality.py [--data DIR] [--seeds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "banks"
FAMILIES = ("routing", "tts", "uniscale", "t2")


def default_specs(models: list[str], max_k: dict[str, int]) -> dict[str, list[str]]:
    """Every registered strategy's default sweep, by family; upper bounds left out."""
    from uisbench.strategies.base import STRATEGIES, config_label

    out: dict[str, list[str]] = {f: [] for f in (*FAMILIES, "single")}
    for name, cls in sorted(STRATEGIES.all().items()):
        if cls.upper_bound or (cls.family not in FAMILIES and name != "single"):
            continue
        family = "single" if name == "single" else cls.family
        out[family] += [config_label(name, p) for p in cls.sweep(models, max_k)]
    return out


def replay_config(runner, spec: str, seeds: list[int]) -> tuple[pd.Series, float, str, bool]:
    """Per-query accuracy (mean over seeds, indexed by query position), mean cost, unit."""
    from uisbench.run_loop import replay_seeds_in_memory
    from uisbench.strategies.costing import all_sizes_known

    unit = "flops" if all_sizes_known(runner.arrays.model_meta) else "dollars"
    r = replay_seeds_in_memory(
        runner.arrays, runner.train, runner.test_pos, spec, seeds, runner.cache
    )
    return pd.Series(r.correct, index=r.q), getattr(r, unit), unit, r.upper_bound


def bank_table(runner, seeds: list[int]) -> tuple[pd.DataFrame, str, dict]:
    from uisbench.results.budget import budget_table, resample
    from uisbench.results.pareto import aiq, aiq_log

    specs = default_specs(runner.models, runner.max_k())
    per_query, cost, fam_of, unit = {}, {}, {}, "flops"
    for fam, labels in specs.items():
        for spec in labels:
            acc, c, unit, bound = replay_config(runner, spec, seeds)
            if bound:  # used the oracle verifier: an upper bound, not a strategy to compare
                continue
            per_query[spec], cost[spec], fam_of[spec] = acc, c, fam
    table = pd.DataFrame(per_query).T
    cost = pd.Series(cost)
    groups = {f: [s for s in table.index if fam_of[s] == f] for f in FAMILIES}
    groups = {f: v for f, v in groups.items() if v}
    singles = [s for s in table.index if fam_of[s] == "single"]
    res = resample(table)
    lo, hi = float(cost.min()), float(cost.max())
    rows = []
    for name, labels in {"single models": singles, **groups}.items():
        c, a = cost[labels].to_numpy(), res.observed[res.index(labels)]
        rows.append(
            {
                "family": name,
                "configs": len(labels),
                "AIQ": aiq(c, a, lo, hi),
                "AIQ log": aiq_log(c, a, lo, hi),
            }
        )
    budget = budget_table(table, cost, groups, singles)
    return (
        pd.DataFrame(rows),
        unit,
        {"budget": budget, "counts": {f: len(v) for f, v in groups.items()}},
    )


def markdown(bank: str, summary: pd.DataFrame, budget: pd.DataFrame, unit: str) -> str:
    singles = list(budget.drop_duplicates("budget_of").sort_values("budget")["budget_of"])
    short = {s: s.split("model=")[-1] for s in singles}
    head = ["family", "configs", "AIQ", "AIQ log"] + [f"Δ at {short[s]}" for s in singles]
    lines = [
        f"**{bank}** (cost in {unit}; Δ = family − single model at that model's cost, the "
        "family's mixture chosen on other queries (cross-fitted halves), 95% paired-bootstrap "
        "interval; * = best at that budget after Holm)",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for _, r in summary.iterrows():
        cells = [r["family"], str(r["configs"]), f"{r['AIQ']:.4f}", f"{r['AIQ log']:.4f}"]
        for s in singles:
            if r["family"] == "single models":
                acc = budget[budget.budget_of == s]["single_accuracy"].iloc[0]
                cells.append(f"{acc:.3f}")
                continue
            b = budget[(budget.budget_of == s) & (budget.group == r["family"])].iloc[0]
            cells.append(
                "—"
                if not np.isfinite(b.gain)
                else f"{b.gain:+.3f} [{b.gain_low:+.3f}, {b.gain_high:+.3f}]"
                + ("*" if b.best else "")
            )
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def t2_extrapolation(runner, bank: str) -> list[str]:
    """Markdown rows: each T2 approach's fit warnings and extrapolation errors on ``bank``."""
    from uisbench.run_loop import replay_in_memory
    from uisbench.strategies.base import make_strategy

    rows = []
    for approach in (1, 2):
        s = make_strategy(f"t2:approach={approach}")
        replay_in_memory(runner.arrays, runner.train, runner.test_pos, s, 0)
        x = s.run_summary()["extrapolation"]
        k = x.get("without_largest_k")
        m = x.get("without_largest_model")
        rows.append(
            f"| {bank} | {approach} | "
            + (f"k = {k['k']}: {k['rel_error']:.1%}" if k else "n/a (one k)")
            + " | "
            + (f"{m['model']}: {m['rel_error']:.1%}" if m else "n/a (N or D unknown)")
            + f" | {'; '.join(s.run_summary()['warnings']) or 'none'} |"
        )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--seeds", type=int, default=3)
    args = ap.parse_args()
    banks = sorted(args.data.glob("*.models.json"))
    if not banks:
        sys.exit(f"no bank (NAME.jsonl + NAME.models.json) in {args.data}")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from uisbench.runner import Runner
    from uisbench.store.bank import import_file
    from uisbench.store.engine import open_engine

    engine = open_engine(f"sqlite:///{tempfile.mkdtemp()}/quality.db")
    t2_rows = []
    for models in banks:
        bank = models.name.removesuffix(".models.json")
        jsonl = models.with_name(f"{bank}.jsonl")
        task = json.loads(jsonl.open().readline())["task"]
        import_file(engine, jsonl, models)
        t0 = time.perf_counter()
        runner = Runner(engine, task, bank)
        summary, unit, out = bank_table(runner, list(range(args.seeds)))
        print(markdown(bank, summary, out["budget"], unit))
        print(f"\n({time.perf_counter() - t0:.0f} s, {args.seeds} seeds)\n")
        t2_rows += t2_extrapolation(runner, bank)
    print(
        "**T2 extrapolation** (relative error of the metric where the refit law predicts what "
        "it never saw; default budget, seed 0)\n"
    )
    print("| bank | approach | without the largest k | without the largest model | warnings |")
    print("|---|---|---|---|---|")
    print("\n".join(t2_rows))


if __name__ == "__main__":
    main()
