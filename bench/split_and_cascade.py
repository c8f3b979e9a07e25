"""date-mot's split in two databases, and a cascade's escalation shares per seed (issue 18).

``split``: date-mot imported alone, and after mmlu-llama-ladder in another database: training
and test sizes, how many queries sit on another side, single llama-2-13b accuracy and T2's
extrapolation errors (both approaches). ``cascade``: the share of date-mot's test queries
``cascade:escalate=s`` passes on from its first model, per seed, for s = 0.1 … 0.9, and the mean
dollars per query over the seeds (``--skip``: the chain less its cheapest models)::

    .venv/bin/python bench/split_and_cascade.py split
    .venv/bin/python bench/split_and_cascade.py cascade [--skip 0] [--seeds 5]
"""

from __future__ import annotations

import argparse
import logging
import tempfile
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "banks"
TASK, BANK = "date-understanding", "date-mot"


def runner(banks: list[str], folder: Path):
    from uisbench.runner import Runner
    from uisbench.store.bank import import_file
    from uisbench.store.engine import open_engine

    engine = open_engine(str(folder / f"{len(banks)}.db"))
    for b in banks:
        import_file(engine, DATA / f"{b}.jsonl", DATA / f"{b}.models.json")
    return Runner(engine, TASK, BANK)


def split_report(folder: Path) -> None:
    sides = {}
    for label, banks in (("alone", [BANK]), ("after mmlu", ["mmlu-llama-ladder", BANK])):
        r = runner(banks, folder)
        acc = r.run("single:model=llama-2-13b").accuracy
        extra = []
        for approach in (1, 2):
            strat_run = r.run(f"t2:approach={approach}")
            extra.append(_extrapolation(r, strat_run.run_id))
        sides[label] = dict(zip(r.arrays.query_keys, r.split.tolist()))
        print(
            f"{label}: task id {r.task_id}, train {len(r.train_pos)}, test {len(r.test_pos)}, "
            f"llama-2-13b {acc:.3f}, T2 without the largest k: approach 1 {extra[0]:.1%}, "
            f"approach 2 {extra[1]:.1%}"
        )
    a, b = sides.values()
    print(f"queries on another side: {sum(a[k] != b[k] for k in a)} of {len(a)}")


def _extrapolation(r, run_id: int) -> float:
    from sqlalchemy import select

    from uisbench.store import schema

    with r.engine.connect() as conn:
        summary = conn.execute(
            select(schema.runs.c.summary).where(schema.runs.c.id == run_id)
        ).scalar()
    return summary["strategy"]["extrapolation"]["without_largest_k"]["rel_error"]


def cascade_report(folder: Path, skip: int, seeds: list[int]) -> None:
    from uisbench.run_loop import replay_in_memory
    from uisbench.strategies.base import make_strategy

    r = runner([BANK], folder)
    print(f"skip={skip}: train {len(r.train_pos)}, test {len(r.test_pos)} queries")
    print("| escalate | " + " | ".join(f"seed {s}" for s in seeds) + " | mean $/query |")
    print("|---" * (len(seeds) + 2) + "|")
    for esc in np.round(np.linspace(0.1, 0.9, 9), 2):
        shares, cost = [], []
        for seed in seeds:
            strat = make_strategy(f"cascade:escalate={esc},skip={skip}")
            rp = replay_in_memory(r.arrays, r.train, r.test_pos, strat, seed)
            passed = sum(e["model"] != strat.chain[0] for e in rp.extra)
            shares.append(f"{passed}/{len(rp.extra)}")
            cost.append(rp.dollars)
        print(f"| {esc} | " + " | ".join(shares) + f" | {np.mean(cost):.6f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=["split", "cascade"])
    ap.add_argument("--skip", type=int, default=0)
    ap.add_argument("--seeds", type=int, default=5)
    args = ap.parse_args()
    logging.disable(logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        if args.what == "split":
            split_report(Path(tmp))
        else:
            cascade_report(Path(tmp), args.skip, list(range(args.seeds)))


if __name__ == "__main__":
    main()
