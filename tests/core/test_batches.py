"""How ``--jobs`` cuts the work list (:func:`uisbench.parallel.batches`): a strategy's runs on
one working set stay together, so one worker fits what its settings share (``ctx.cache``)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from uisbench import parallel


def work(runner, specs: dict[str, int], seeds: int = 3) -> list:
    return [
        (runner, f"{name}:x={i}", s)
        for name, n in specs.items()
        for i in range(n)
        for s in range(seeds)
    ]


def test_a_strategy_s_runs_go_out_together_in_order():
    a, b = SimpleNamespace(test_pos=np.arange(120)), SimpleNamespace(test_pos=np.arange(50))
    items = work(a, {"lr-router": 12, "majority": 7, "uniscale": 16}) + work(b, {"lr-router": 12})
    out = parallel.batches(items, jobs=2)
    assert [i for batch in out for i in batch] == list(range(len(items)))  # all, once, in order
    for batch in out:
        assert len({(id(items[i][0]), items[i][1].split(":")[0]) for i in batch}) == 1
    # 141 runs, 2 workers: at most 141 // 8 = 17 runs a batch, a longer group in equal parts
    assert [len(batch) for batch in out] == [12, 12, 12, 21 // 2, 21 - 21 // 2] + [16] * 3 + [
        12
    ] * 3


def test_batches_are_bounded_by_the_rows_they_bring_back(monkeypatch):
    monkeypatch.setattr(parallel, "BATCH_ROWS", 1000)
    big = SimpleNamespace(test_pos=np.arange(400))  # 2 runs' rows at most
    out = parallel.batches(work(big, {"majority": 3}, seeds=5), jobs=1)  # 15 runs, 3 a batch
    assert [len(batch) for batch in out] == [2, 2, 2, 2, 1, 2, 2, 2]
    huge = SimpleNamespace(test_pos=np.arange(5000))  # one run is more than the bound: alone
    assert [len(b) for b in parallel.batches(work(huge, {"cascade": 1}), jobs=1)] == [1, 1, 1]


def test_few_runs_go_one_by_one():
    r = SimpleNamespace(test_pos=np.arange(10))
    items = work(r, {"lr-router": 2, "cascade": 1})  # 9 runs on 2 workers
    assert parallel.batches(items, jobs=2) == [[i] for i in range(9)]
