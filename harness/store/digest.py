"""A bank's content digest: the sha256 that says two databases hold the same samples.

Bank names are chosen by whoever imports a file, so a name alone cannot tell a regression gate
that a baseline and a candidate replayed the same data. The digest is computed from the stored
rows, not a file, so it is the same for a bank imported from ``.jsonl`` or ``.jsonl.gz``, into
SQLite or PostgreSQL, in any insertion order: rows are sorted by (task, query key, model, sample
index) and each is written as one canonical JSON array.

This is the *whole bank's* digest (provenance on the site, the gate's same-bank check). A run's
identity uses :func:`uisbench.store.arrays.content_digest` instead: the digest of the working
set a replay loads (one task, the chosen models), computed from the arrays already in memory,
so that adding another task or model to a bank does not invalidate runs that never saw it.
"""

from __future__ import annotations

import hashlib
import json

from sqlalchemy import Connection, select

from uisbench.store import schema as s
from uisbench.store.bank import get_bank_id

#: The sample fields that define a bank's content (latency included: replay charges it).
DIGEST_FIELDS = (
    "task",
    "query_key",
    "split",
    "prompt",
    "reference",
    "model",
    "sample_index",
    "text",
    "answer",
    "correct",
    "score",
    "input_tokens",
    "output_tokens",
    "cost_usd",
    "latency_s",
    "logprob",
)
CORRECT = DIGEST_FIELDS.index("correct")  # a boolean: 1 in SQLite, true in PostgreSQL


def bank_digest(conn: Connection, bank: str) -> str:
    """``sha256:<hex>`` of the bank's samples in canonical order (see the module docstring)."""
    bank_id = get_bank_id(conn, bank)
    sm, q, t, m = s.samples, s.queries, s.tasks, s.models
    query = (
        select(
            t.c.name,
            q.c.query_key,
            q.c.split,
            q.c.prompt,
            q.c.reference,
            m.c.name,
            sm.c.sample_index,
            sm.c.text,
            sm.c.answer,
            sm.c.correct,
            sm.c.score,
            sm.c.input_tokens,
            sm.c.output_tokens,
            sm.c.cost_usd,
            sm.c.latency_s,
            sm.c.logprob,
        )
        .join(q, sm.c.query_id == q.c.id)
        .join(t, q.c.task_id == t.c.id)
        .join(m, sm.c.model_id == m.c.id)
        .where(sm.c.bank_id == bank_id)
    )
    # Sorted here, not in SQL: PostgreSQL orders text by its locale, SQLite by code point.
    rows = sorted(conn.execute(query).all(), key=lambda r: (r[0], r[1], r[5], r[6]))
    h = hashlib.sha256(json.dumps(DIGEST_FIELDS).encode())
    for row in rows:
        values = [bool(v) if i == CORRECT else v for i, v in enumerate(row)]
        h.update(b"\n" + json.dumps(values, ensure_ascii=False).encode())
    return "sha256:" + h.hexdigest()
