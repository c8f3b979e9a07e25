"""Which banks are stored, which tasks they hold and how many samples of each model a bank holds
per query: the lookups ``uisbench run`` plans its work with, ``uisbench list banks`` shows and a
live recording tops a bank up from."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, func, select

from uisbench.store import schema
from uisbench.store.bank import get_bank_id


def stored_banks(engine: Engine) -> list[dict[str, Any]]:
    """Every bank's row (name, source, synthetic flag, configuration)."""
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(schema.banks)).mappings()]


def tasks_in_bank(engine: Engine, bank: str) -> list[str]:
    with engine.connect() as conn:
        bank_id = conn.execute(
            select(schema.banks.c.id).where(schema.banks.c.name == bank)
        ).scalar()
        if bank_id is None:
            get_bank_id(conn, bank)  # raises with the known banks
        ids = (
            select(schema.samples.c.query_id).where(schema.samples.c.bank_id == bank_id).distinct()
        )
        task_ids = select(schema.queries.c.task_id).where(schema.queries.c.id.in_(ids)).distinct()
        return list(
            conn.execute(
                select(schema.tasks.c.name).where(schema.tasks.c.id.in_(task_ids))
            ).scalars()
        )


def banks_with_task(engine: Engine, task: str) -> list[str]:
    with engine.connect() as conn:
        tid = conn.execute(select(schema.tasks.c.id).where(schema.tasks.c.name == task)).scalar()
        if tid is None:
            return []
        qids = select(schema.queries.c.id).where(schema.queries.c.task_id == tid)
        bank_ids = (
            select(schema.samples.c.bank_id).where(schema.samples.c.query_id.in_(qids)).distinct()
        )
        return list(
            conn.execute(
                select(schema.banks.c.name).where(schema.banks.c.id.in_(bank_ids))
            ).scalars()
        )


def models_without_cost_unit(engine: Engine, bank: str) -> list[str]:
    """Models of ``bank`` for which no cost unit is computable: no parameter count (FLOPs,
    parameter-weighted calls), and neither recorded costs nor prices with token counts."""
    m, smp = schema.models, schema.samples
    with engine.connect() as conn:
        bank_id = get_bank_id(conn, bank)
        rows = conn.execute(
            select(
                m.c.name,
                m.c.params_total,
                m.c.price_in_per_mtok,
                func.count(smp.c.cost_usd),
                func.count(smp.c.output_tokens),
            )
            .join(smp, smp.c.model_id == m.c.id)
            .where(smp.c.bank_id == bank_id)
            .group_by(m.c.id, m.c.name, m.c.params_total, m.c.price_in_per_mtok)
        ).all()
    return sorted(
        name
        for name, params, price, costs, tokens in rows
        if params is None and costs == 0 and (price is None or tokens == 0)
    )


def samples_held(engine: Engine, bank_id: int, model_id: int) -> dict[int, int]:
    """Samples the bank holds of ``model_id`` per query id (queries with none left out)."""
    smp = schema.samples
    with engine.connect() as conn:
        rows = conn.execute(
            select(smp.c.query_id, func.count())
            .where(smp.c.bank_id == bank_id, smp.c.model_id == model_id)
            .group_by(smp.c.query_id)
        ).all()
    return {int(q): int(n) for q, n in rows}
