"""The oracle's front read from the database (:func:`uisbench.results.oracle.oracle_fronts`)
against the same front recomputed here from every decision (:func:`load_decisions`)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tests.site.toysite import make_toy_db
from uisbench.results.aggregate import load_decisions
from uisbench.results.oracle import MAX_CAPS, oracle_fronts
from uisbench.results.pareto import oracle_front
from uisbench.runner import Runner


def test_the_front_is_the_one_its_decisions_give(tmp_path):
    engine = make_toy_db(tmp_path)
    runner = Runner(engine, "toy-task", "toy-task")
    for extra_seed in (1, 2):  # several runs of each single model and of the oracle
        for spec in ("single:model=toy-small", "single:model=toy-large", "oracle:k=4"):
            runner.run(spec, extra_seed)
    dec = load_decisions(engine)
    runs = dec.drop_duplicates("run_id")[["run_id", "strategy", "config_label"]]
    for unit in ("dollars", "flops"):
        got = oracle_fronts(engine, runs, unit)
        per_query = dec.groupby(["config_label", "query_id"])[["correct", unit]].mean()
        singles = runs.loc[runs["strategy"] == "single", "config_label"].unique()
        cheapest = pd.concat([per_query.loc[s][unit] for s in singles], axis=1).min(axis=1)
        oracle = per_query.loc["oracle:k=4"].join(cheapest.rename("fallback"))
        solved = oracle["correct"].to_numpy() > 0.5
        cost = oracle[unit].to_numpy(float)
        caps = np.unique(np.quantile(cost[solved], np.linspace(0, 1, MAX_CAPS)))
        c, a = oracle_front(cost, solved, oracle["fallback"].to_numpy(float), caps)
        assert len(got) == len(c) > 1 and set(got["config_label"]) == {"oracle:k=4"}
        np.testing.assert_allclose(got["cost"], c, rtol=1e-12)
        np.testing.assert_allclose(got["accuracy"], a, rtol=1e-12)
