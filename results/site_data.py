"""What the site shows beside the leaderboard, read from the database.

The leaderboard's figures come from :mod:`.leaderboard`; the site's other pages need the rows
themselves: every complete run with all its columns (the run pages), the models' metadata (a
run's pool), each bank's provenance (every page's footer) and the drill-down, the decisions
and recorded samples of a task's first test queries by key. :mod:`uisbench.site.build` renders
what these functions return and reads the database through nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd
from sqlalchemy import Engine, select

from uisbench.results.aggregate import bank_labels
from uisbench.store import schema
from uisbench.store.bank import bank_config
from uisbench.store.digest import bank_digest


def complete_runs(engine: Engine, include_synthetic: bool) -> pd.DataFrame:
    """Complete runs, every column of the run row with its task's and bank's names, the
    bank's synthetic flag and ``board``, the bank's label on the leaderboard
    (:func:`~uisbench.results.aggregate.bank_labels`: ``NAME@split=N`` on another split), in
    the order they were opened."""
    r, t, b = schema.runs, schema.tasks, schema.banks
    q = (
        select(r, t.c.name.label("task"), b.c.name.label("bank"), b.c.synthetic)
        .join(t, r.c.task_id == t.c.id)
        .join(b, r.c.bank_id == b.c.id)
        .where(r.c.status == "complete")
        .order_by(r.c.id)
    )
    if not include_synthetic:
        q = q.where(b.c.synthetic.is_(False))
    with engine.connect() as conn:
        runs = pd.DataFrame(conn.execute(q).mappings().all())
    if len(runs):
        runs["board"] = bank_labels(runs)
    return runs


def models_by_name(engine: Engine) -> dict[str, dict[str, Any]]:
    """Every model's row (size, training tokens, prices), by model name."""
    with engine.connect() as conn:
        return {r["name"]: dict(r) for r in conn.execute(select(schema.models)).mappings()}


def bank_provenance(engine: Engine, banks: list[str]) -> list[dict[str, Any]]:
    """Name, content digest, source and licence of each stored bank, sorted by name."""
    out = []
    with engine.connect() as conn:
        for name in sorted(set(banks)):
            config = bank_config(conn, name)
            out.append(
                {
                    "bank": name,
                    "digest": bank_digest(conn, name),
                    "source": config.get("source"),
                    "licence": config.get("licence"),
                }
            )
    return out


@dataclass
class DrillRows:
    """The drill-down of one task: which queries, the runs' decisions on them, the queries'
    rows by id and the samples recorded for them (model name beside each)."""

    query_ids: list[int]
    decisions: pd.DataFrame
    queries: dict[int, dict[str, Any]]
    samples: pd.DataFrame


def drill_rows(
    engine: Engine, run_ids: list[int], bank_id: int, n_queries: int, max_samples: int
) -> DrillRows:
    """The first ``n_queries`` queries by key (all when 0) that the first of ``run_ids``
    decided, every run's decisions on them and the first ``max_samples`` samples per model
    that ``bank_id`` holds for them."""
    qids = first_queries(engine, run_ids[0], n_queries) if run_ids else []
    d, qt = schema.decisions, schema.queries
    with engine.connect() as conn:
        dec_q = select(d).where(d.c.run_id.in_(run_ids), d.c.query_id.in_(qids))
        decisions = pd.DataFrame(conn.execute(dec_q).mappings().all())
        queries = {
            r["id"]: dict(r) for r in conn.execute(select(qt).where(qt.c.id.in_(qids))).mappings()
        }
        sample_q = _samples_query(qids, bank_id, max_samples)
        samples = pd.DataFrame(conn.execute(sample_q).mappings().all())
    return DrillRows(qids, decisions, queries, samples)


def _samples_query(query_ids: list[int], bank_id: int, max_samples: int) -> Any:
    sm, m = schema.samples, schema.models
    return (
        select(
            sm.c.query_id,
            m.c.name.label("model"),
            sm.c.sample_index,
            sm.c.answer,
            sm.c.correct,
            sm.c.output_tokens,
            sm.c.logprob,
        )
        .join(m, sm.c.model_id == m.c.id)
        .where(
            sm.c.bank_id == bank_id,
            sm.c.query_id.in_(query_ids),
            sm.c.sample_index < max_samples,
        )
        .order_by(sm.c.query_id, m.c.name, sm.c.sample_index)
    )


def first_queries(engine: Engine, run_id: int, n: int) -> list[int]:
    """Ids of the ``n`` first queries by key that a run decided (all when ``n`` is 0): by key,
    not id, so the drilled set does not depend on import order."""
    d, qt = schema.decisions, schema.queries
    q = (
        select(d.c.query_id)
        .join(qt, d.c.query_id == qt.c.id)
        .where(d.c.run_id == run_id)
        .order_by(qt.c.query_key)
    )
    if n > 0:
        q = q.limit(n)
    with engine.connect() as conn:
        return [int(x) for x in conn.execute(q).scalars()]
