"""Data recipe for ``arith-smoke``: seeded arithmetic of graded difficulty (a smoke task).

Why: the offline CPU pool (135M-270M parameter models) scores ~0% on GSM8K, so strategies need a
task where such models are neither hopeless nor perfect. Difficulty levels go from 1-digit
addition to 2-digit multiplication; every query is generated deterministically from
(seed, level, index), so the data never has to be downloaded or shipped.
"""

from __future__ import annotations

import random

from uisbench.errors import UisbenchError

# level name -> (operator, digits of each operand)
LEVELS: dict[str, tuple[str, int]] = {
    "add1": ("+", 1),
    "sub1": ("-", 1),
    "mul1": ("*", 1),
    "add2": ("+", 2),
    "sub2": ("-", 2),
    "add3": ("+", 3),
    "mul2": ("*", 2),
}
DEFAULT_LEVELS = ("add1", "mul1", "add2", "sub2", "add3")
_OPS = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b}


def make_docs(
    seed: int = 1234,
    levels: str | tuple[str, ...] | list[str] = DEFAULT_LEVELS,
    n_per_level: int = 50,
) -> list[dict]:
    """``n_per_level`` problems per level; the same arguments always give the same problems."""
    if isinstance(levels, str):  # "add1" or "add1,mul1" from the command line
        levels = [x.strip() for x in levels.split(",") if x.strip()]
    docs = []
    for level in levels:
        if level not in LEVELS:
            raise UisbenchError(f"unknown arith level {level!r}; known: {', '.join(LEVELS)}")
        op, digits = LEVELS[level]
        rng = random.Random(f"{seed}:{level}")
        lo, hi = (0 if digits == 1 else 10 ** (digits - 1)), 10**digits - 1
        for i in range(n_per_level):
            a, b = rng.randint(lo, hi), rng.randint(lo, hi)
            docs.append(
                {
                    "id": f"{level}-{i:04d}",
                    "level": level,
                    "a": a,
                    "b": b,
                    "op": op,
                    "answer": str(_OPS[op](a, b)),
                }
            )
    return docs


def make_dataset(
    seed: int = 1234,
    levels: str | tuple[str, ...] | list[str] = DEFAULT_LEVELS,
    n_per_level: int = 50,
    n_train_per_level: int = 20,
    **_ignored: object,
):
    """lm-eval ``custom_dataset`` hook: a DatasetDict with disjoint-seed train and test splits."""
    import datasets

    # Train ids carry a prefix: query ids must be unique across splits of one task.
    train_docs = make_docs(seed + 1, levels, n_train_per_level)
    train = [{**d, "id": f"train-{d['id']}"} for d in train_docs]
    return datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_list(train),
            "test": datasets.Dataset.from_list(make_docs(seed, levels, n_per_level)),
        }
    )
