"""A stored run read back: its decision rows and its summary, as the runner wrote them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine, select

from uisbench.store import schema as s


def decision_rows(engine: Engine, run_id: int, columns: Sequence[str]) -> list[tuple]:
    """The run's decisions, ``columns`` of each, ordered by query id."""
    d = s.decisions
    q = select(*(d.c[c] for c in columns)).where(d.c.run_id == run_id).order_by(d.c.query_id)
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(q)]


def run_summary(engine: Engine, run_id: int) -> dict[str, Any]:
    """The run's stored summary (the strategy's figures, its flags); the run must exist."""
    q = select(s.runs.c.summary).where(s.runs.c.id == run_id)
    with engine.connect() as conn:
        return conn.execute(q).scalar_one()
