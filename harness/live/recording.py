"""Recording samples with a live backend into the bank (``uisbench bank record``).

Each (task, pool, generation configuration) is one bank. Recording is resumable and cumulative:
for every query and model it generates only the samples the bank does not hold yet, so a repeated
call generates nothing, and asking for k=8 after k=4 generates 4 more per query. Samples are
committed batch by batch, so a killed recording loses at most the batch in flight.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, func, select

from uisbench.errors import UisbenchError
from uisbench.store import schema as s
from uisbench.store.bank import (
    SAMPLE_COLUMNS,
    ensure_bank,
    ensure_models,
    ensure_queries,
    ensure_task,
)
from uisbench.store.dialect import bulk_insert_ignore

if TYPE_CHECKING:
    from uisbench.live.backends import Backend, GenerationConfig
    from uisbench.live.pools import ModelSpec

#: Seed shift per sample already held; larger than any batch offset a backend adds to the seed.
TOP_UP_SEED_STRIDE = 1_000_003


@dataclass
class RecordStats:
    bank: str
    queries: int
    generated: int
    already: int
    seconds: float


def bank_name(task: str, pool: str, config_key: dict[str, Any]) -> str:
    digest = hashlib.sha256(json.dumps(config_key, sort_keys=True).encode()).hexdigest()[:8]
    return f"{task}@{pool}-{digest}"


def top_up_config(config: GenerationConfig, have: int) -> GenerationConfig:
    """The configuration for samples ``have``, ``have + 1``, ...: the seed moves with ``have``.

    With the bank's own seed, a top-up (k=8 after k=4) would replay the first samples exactly:
    same prompts, same seed, same draws. Shifting the seed by the number already held makes
    the new samples fresh draws while a recording from scratch stays what it was.
    """
    return replace(config, seed=config.seed + TOP_UP_SEED_STRIDE * have) if have else config


def record(
    engine: Engine,
    task_name: str,
    pool_name: str,
    k: int,
    *,
    limit: int | None = None,
    splits: tuple[str, ...] = ("test",),
    models: list[str] | None = None,
    batch_size: int = 8,
    device: str | None = None,
    backend: str | None = None,
    task_overrides: dict[str, Any] | None = None,
    config_overrides: dict[str, Any] | None = None,
    progress: Callable[[int, int, str], None] | None = None,
) -> RecordStats:
    """Generate up to ``k`` samples per query and model of ``pool`` on ``task`` into the bank."""
    from uisbench.live.backends import BACKENDS, GenerationConfig, get_backend
    from uisbench.live.pools import load_pool
    from uisbench.tasks import load_task

    if k < 1:
        raise UisbenchError("k must be at least 1")
    task = load_task(task_name, **(task_overrides or {}))
    pool = load_pool(pool_name)
    if models:
        unknown = sorted(set(models) - {m.name for m in pool})
        if unknown:
            raise UisbenchError(f"unknown model(s) {', '.join(unknown)} in pool {pool_name!r}")
        pool = [m for m in pool if m.name in models]
    for b in {backend} if backend else {m.backend for m in pool}:
        BACKENDS.get(b)  # an unknown backend fails here, before any row is written
    swapped = bool(backend) and any(m.backend != backend for m in pool)
    if backend:
        pool = [replace(m, backend=backend) for m in pool]
    defaults = dict(task.generation_defaults)
    defaults.update(config_overrides or {})
    if "stop" in defaults:
        defaults["stop"] = tuple(defaults["stop"] or ())
    config = GenerationConfig(**{k_: v for k_, v in defaults.items() if k_ in
                                 GenerationConfig.__dataclass_fields__})  # fmt: skip
    key = {"task": task_name, "pool": pool_name, "generation": config.key(),
           "task_overrides": {k_: str(v) for k_, v in (task_overrides or {}).items()}}  # fmt: skip
    if swapped:  # another backend samples differently: its samples form another bank
        key["backend"] = backend
    name = bank_name(task_name, pool_name, key)

    docs: list[tuple[str, dict]] = []
    for split in splits:
        part = task.docs(split)
        if limit is not None:
            part = part[:limit]
        docs.extend((split, d) for d in part)
    if not docs:
        raise UisbenchError(f"task {task_name!r} has no documents in split(s) {', '.join(splits)}")

    with engine.begin() as conn:
        bank_id = ensure_bank(conn, name, "live", key)
        task_id = ensure_task(conn, task_name, task.description)
        model_ids = ensure_models(conn, {m.name: _model_meta(m) for m in pool})
        qrows = [
            {"query_key": task.query_id(d), "split": split, "prompt": task.prompt(d),
             "reference": task.reference(d)}
            for split, d in docs
        ]  # fmt: skip
        query_ids = ensure_queries(conn, task_id, qrows)

    total = len(docs) * k * len(pool)
    generated = already = 0
    start = time.perf_counter()
    for spec in pool:
        held = _held(engine, bank_id, model_ids[spec.name])
        todo = []
        for (_, doc), q in zip(docs, qrows):
            qid = query_ids[q["query_key"]]
            have = held.get(qid, 0)
            already += min(have, k)
            if have < k:
                todo.append((doc, q, qid, have))
        if progress:
            progress(generated + already, total, spec.name)
        if not todo:
            continue
        generator = get_backend(spec, device=device)
        try:
            for n_rows in _fill(engine, task, spec, generator, todo, k, config, batch_size,
                                bank_id, model_ids[spec.name]):  # fmt: skip
                generated += n_rows
                if progress:
                    progress(generated + already, total, spec.name)
        finally:
            if close := getattr(generator, "close", None):
                close()  # e.g. vLLM's engine processes

    return RecordStats(name, len(docs), generated, already, time.perf_counter() - start)


def _fill(
    engine: Engine,
    task: Any,
    spec: ModelSpec,
    generator: Backend,
    todo: list[tuple[dict, dict, int, int]],
    k: int,
    config: GenerationConfig,
    batch_size: int,
    bank_id: int,
    model_id: int,
) -> Iterator[int]:
    """Generate the missing samples of one model, committing batch by batch; yields rows added.

    Queries are grouped by how many samples they lack, so one generate call serves a batch.
    """
    todo = sorted(todo, key=lambda t: t[3])
    i = 0
    while i < len(todo):
        have = todo[i][3]
        batch = [t for t in todo[i : i + batch_size] if t[3] == have]
        i += len(batch)
        prompts = [_prompt_for(task, spec, doc) for doc, *_ in batch]
        outs = generator.generate(prompts, k - have, top_up_config(config, have))
        rows = []
        for (doc, _q, qid, _), gens in zip(batch, outs):
            scored = task.score(doc, [g.text for g in gens])
            for j, (g, (answer, correct)) in enumerate(zip(gens, scored)):
                rows.append((
                    bank_id, qid, model_id, have + j, g.text, answer, bool(correct), None,
                    g.input_tokens, g.output_tokens, _dollars(spec, g), g.latency_s, g.logprob,
                ))  # fmt: skip
        with engine.begin() as conn:
            bulk_insert_ignore(conn, s.samples, SAMPLE_COLUMNS, rows)
        yield len(rows)


def _held(engine: Engine, bank_id: int, model_id: int) -> dict[int, int]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(s.samples.c.query_id, func.count())
            .where(s.samples.c.bank_id == bank_id, s.samples.c.model_id == model_id)
            .group_by(s.samples.c.query_id)
        ).all()
    return {int(q): int(n) for q, n in rows}


def _prompt_for(task: Any, spec: Any, doc: dict) -> Any:
    """Chat messages for chat models when the task provides them, else the plain prompt."""
    if getattr(spec, "chat_template", False):
        messages = task.chat_messages(doc)
        if messages:
            return messages
    return task.prompt(doc)


def _dollars(spec: Any, g: Any) -> float | None:
    if spec.price_in_per_mtok is None or spec.price_out_per_mtok is None:
        return None
    return (
        spec.price_in_per_mtok * g.input_tokens + spec.price_out_per_mtok * g.output_tokens
    ) / 1e6


def _model_meta(spec: Any) -> dict[str, Any]:
    d = asdict(spec) if hasattr(spec, "__dataclass_fields__") else dict(vars(spec))
    return {k: d.get(k) for k in (
        "family", "backend", "identifier", "params_total", "params_active", "train_tokens",
        "price_in_per_mtok", "price_out_per_mtok", "price_cached_in_per_mtok",
        "context_length")}  # fmt: skip
