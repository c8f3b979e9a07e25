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
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine

from uisbench.errors import UisbenchError
from uisbench.store.bank import (
    MODEL_META,
    SAMPLE_COLUMNS,
    ensure_bank,
    ensure_models,
    ensure_queries,
    ensure_task,
    write_samples,
)
from uisbench.store.bankfile import BOUNDS, out_of_bounds
from uisbench.store.lookups import samples_held
from uisbench.tasks.requirements import require_live_extra

if TYPE_CHECKING:
    from uisbench.live.backends import Backend, Generation, GenerationConfig
    from uisbench.live.pools import ModelSpec

#: Backends that generate in this process: a server endpoint means nothing to them.
LOCAL_BACKENDS = frozenset({"transformers", "vllm"})
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


@dataclass
class RecordRequest:
    """What a recording asks for: up to ``k`` samples per query and model of ``pool`` on
    ``task``. ``endpoints`` (server URLs) replace the pool's for every model: they say where a
    served model answers, not what it samples, so they are not part of the bank's key."""

    task: str
    pool: str  # pool name or file
    k: int
    limit: int | None = None  # first N documents of each split
    splits: tuple[str, ...] = ("test",)
    models: list[str] | None = None  # a subset of the pool; None: every model
    batch_size: int = 8  # prompts per generate call
    device: str | None = None  # cpu, cuda, cuda:1 ... (None: the backend's choice)
    backend: str | None = None  # for every model (None: the pool's)
    endpoints: list[str] | None = None
    task_overrides: dict[str, Any] = field(default_factory=dict)  # the task's options
    config_overrides: dict[str, Any] = field(default_factory=dict)  # generation settings


@dataclass
class _Recording:
    """A request under way: the task it loaded, the generation configuration, the bank's row."""

    engine: Engine
    req: RecordRequest
    task: Any
    config: GenerationConfig
    bank_id: int


def record(
    engine: Engine,
    req: RecordRequest,
    progress: Callable[[int, int, str], None] | None = None,
) -> RecordStats:
    """Generate up to ``req.k`` samples per query and model into the request's bank;
    ``progress(done, total, model)`` after each committed batch."""
    require_live_extra()
    from uisbench.tasks import load_task

    if req.k < 1:
        raise UisbenchError("k must be at least 1")
    task = load_task(req.task, **req.task_overrides)
    pool, swapped = _select_pool(req.pool, req.models, req.backend, req.endpoints)
    _require_model_packages(pool)  # every model's weights are there before any is generated
    config = _generation_config(task, req.config_overrides)
    key = _bank_key(req, config, swapped)
    name = bank_name(req.task, req.pool, key)
    docs = _documents(task, req.task, req.splits, req.limit)
    bank_id, model_ids, qids = _bank_rows(engine, name, key, task, pool, docs)
    rec = _Recording(engine, req, task, config, bank_id)

    total = len(docs) * req.k * len(pool)
    generated = already = 0
    start = time.perf_counter()
    for spec in pool:
        held = samples_held(engine, bank_id, model_ids[spec.name])
        todo = [(doc, qid, held.get(qid, 0)) for (_, doc), qid in zip(docs, qids)]
        already += sum(min(have, req.k) for *_, have in todo)
        todo = [t for t in todo if t[2] < req.k]
        if progress:
            progress(generated + already, total, spec.name)
        if not todo:
            continue
        for n_rows in _fill_with_backend(rec, spec, model_ids[spec.name], todo):
            generated += n_rows
            if progress:
                progress(generated + already, total, spec.name)

    return RecordStats(name, len(docs), generated, already, time.perf_counter() - start)


def _bank_key(req: RecordRequest, config: GenerationConfig, swapped: bool) -> dict[str, Any]:
    """What names the bank: task, pool, generation settings, task options, and the backend
    when it is not the pool's (another backend samples differently)."""
    key = {
        "task": req.task,
        "pool": req.pool,
        "generation": config.key(),
        "task_overrides": {k: str(v) for k, v in req.task_overrides.items()},
    }
    if swapped:
        key["backend"] = req.backend
    return key


def _bank_rows(
    engine: Engine,
    name: str,
    key: dict[str, Any],
    task: Any,
    pool: list[ModelSpec],
    docs: list[tuple[str, dict]],
) -> tuple[int, dict[str, int], list[int]]:
    """The bank's id, its models' ids and the documents' query ids (rows written if missing)."""
    with engine.begin() as conn:
        bank_id = ensure_bank(conn, name, "live", key)
        task_id = ensure_task(conn, key["task"], task.description)
        model_ids = ensure_models(conn, {m.name: _model_meta(m) for m in pool})
        qrows = [_query_row(task, split, d) for split, d in docs]
        query_ids = ensure_queries(conn, task_id, qrows)
    return bank_id, model_ids, [query_ids[q["query_key"]] for q in qrows]


def _select_pool(
    pool_name: str, models: list[str] | None, backend: str | None, endpoints: list[str] | None
) -> tuple[list[ModelSpec], bool]:
    """The pool's models to record (``models`` subset, ``backend`` and ``endpoints`` swapped in),
    and whether the backend differs from the pool's own. An unknown backend fails here, before
    any row is written."""
    from uisbench.live.backends import BACKENDS
    from uisbench.live.pools import load_pool

    pool = load_pool(pool_name)
    if models:
        unknown = sorted(set(models) - {m.name for m in pool})
        if unknown:
            raise UisbenchError(f"unknown model(s) {', '.join(unknown)} in pool {pool_name!r}")
        pool = [m for m in pool if m.name in models]
    for b in {backend} if backend else {m.backend for m in pool}:
        BACKENDS.get(b)
    swapped = bool(backend) and any(m.backend != backend for m in pool)
    if backend:
        pool = [replace(m, backend=backend) for m in pool]
    if endpoints:
        local = sorted({m.backend for m in pool} & LOCAL_BACKENDS)
        if local:
            raise UisbenchError(
                f"--endpoint is for server backends (--backend openai); the pool's models use "
                f"{', '.join(local)}, which generate in this process"
            )
        pool = [replace(m, endpoints=tuple(endpoints)) for m in pool]
    return pool, swapped


def _require_model_packages(pool: list[ModelSpec]) -> None:
    """One line naming every packaged model file a local backend cannot find, before the first
    model generates anything (not after it has generated its samples)."""
    from uisbench.live.pools import missing_packages

    missing = missing_packages([m for m in pool if m.backend in LOCAL_BACKENDS])
    if missing:
        raise UisbenchError(
            "model package(s) missing for this pool: "
            + "; ".join(f"{name}: pip install {cmd}" for name, cmd in missing)
        )


def _generation_config(task: Any, overrides: dict[str, Any] | None) -> GenerationConfig:
    """The task's generation defaults with ``overrides``; keys the backends do not know dropped."""
    from uisbench.live.backends import GenerationConfig

    defaults = dict(task.generation_defaults)
    defaults.update(overrides or {})
    if "stop" in defaults:
        defaults["stop"] = tuple(defaults["stop"] or ())
    fields = GenerationConfig.__dataclass_fields__
    return GenerationConfig(**{k: v for k, v in defaults.items() if k in fields})


def _documents(
    task: Any, task_name: str, splits: tuple[str, ...], limit: int | None
) -> list[tuple[str, dict]]:
    """(split, document) pairs: the first ``limit`` documents of each split."""
    docs: list[tuple[str, dict]] = []
    for split in splits:
        part = task.docs(split)
        if limit is not None:
            part = part[:limit]
        docs.extend((split, d) for d in part)
    if not docs:
        raise UisbenchError(f"task {task_name!r} has no documents in split(s) {', '.join(splits)}")
    return docs


def _query_row(task: Any, split: str, doc: dict) -> dict[str, Any]:
    return {
        "query_key": task.query_id(doc),
        "split": split,
        "prompt": task.prompt(doc),
        "reference": task.reference(doc),
    }


def _fill_with_backend(
    rec: _Recording, spec: ModelSpec, model_id: int, todo: list[tuple[dict, int, int]]
) -> Iterator[int]:
    """:func:`_fill` with a backend opened for ``spec`` and closed afterwards."""
    from uisbench.live.backends import get_backend

    generator = get_backend(spec, device=rec.req.device)
    try:
        yield from _fill(rec, spec, model_id, generator, todo)
    finally:
        if close := getattr(generator, "close", None):
            close()  # e.g. vLLM's engine processes, an HTTP client's connections


def _fill(
    rec: _Recording,
    spec: ModelSpec,
    model_id: int,
    generator: Backend,
    todo: list[tuple[dict, int, int]],
) -> Iterator[int]:
    """Generate the missing samples of one model, committing batch by batch; yields rows added.

    Queries are grouped by how many samples they lack, so one generate call serves a batch.
    """
    task, k, batch_size = rec.task, rec.req.k, rec.req.batch_size
    todo = sorted(todo, key=lambda t: t[2])
    i = 0
    while i < len(todo):
        have = todo[i][2]
        batch = [t for t in todo[i : i + batch_size] if t[2] == have]
        i += len(batch)
        prompts = [_prompt_for(task, spec, doc) for doc, *_ in batch]
        outs = generator.generate(prompts, k - have, top_up_config(rec.config, have))
        if len(outs) != len(batch) or any(len(g) != k - have for g in outs):
            got = sorted({len(g) for g in outs})
            raise UisbenchError(
                f"model {spec.name}: the backend returned {got} sample(s) for {len(outs)} of "
                f"{len(batch)} prompts, not {k - have} for each; nothing of this batch was written"
            )
        rows = []
        for (doc, qid, _), gens in zip(batch, outs):
            scored = task.score(doc, [g.text for g in gens])
            for j, (g, (answer, correct)) in enumerate(zip(gens, scored)):
                rows.append(
                    _sample_row(rec.bank_id, qid, model_id, have + j, g, answer, correct, spec)
                )
        _check_bounds(spec.name, rows)
        with rec.engine.begin() as conn:
            write_samples(conn, SAMPLE_COLUMNS, rows)  # keeps the bank's digest
        yield len(rows)


#: Fields of a sample row checked against the bank's bounds (those ``bank import`` checks), so
#: that a recorded bank always exports and imports back.
_COLUMN = {"sample": "sample_index"}
_BOUNDED = tuple(
    (f, SAMPLE_COLUMNS.index(_COLUMN.get(f, f)))
    for f in BOUNDS
    if _COLUMN.get(f, f) in SAMPLE_COLUMNS
)


def _check_bounds(model: str, rows: list[tuple]) -> None:
    """Refuse a batch holding a number ``bank import`` would refuse (before anything is
    written): negative or huge token counts, infinite or negative costs, log-probs that are
    not finite."""
    for row in rows:
        for name, i in _BOUNDED:
            if out_of_bounds(name, row[i]):
                raise UisbenchError(
                    f"model {model}: the backend gave {name} {row[i]!r}, not "
                    f"{BOUNDS[name][-1]}; nothing of this batch was written"
                )


def _sample_row(
    bank_id: int,
    qid: int,
    model_id: int,
    index: int,
    g: Generation,
    answer: Any,
    correct: Any,
    spec: ModelSpec,
) -> tuple:
    """One row of ``samples`` in :data:`SAMPLE_COLUMNS` order (``score`` stays NULL)."""
    dollars = _dollars(spec, g)
    return (
        bank_id,
        qid,
        model_id,
        index,
        g.text,
        answer,
        bool(correct),
        None,
        g.input_tokens,
        g.output_tokens,
        dollars,
        g.latency_s,
        g.logprob,
    )


def _prompt_for(task: Any, spec: Any, doc: dict) -> Any:
    """Chat messages for chat models when the task provides them, else the plain prompt."""
    if getattr(spec, "chat_template", False):
        messages = task.chat_messages(doc)
        if messages:
            return messages
    return task.prompt(doc)


def _dollars(spec: Any, g: Any) -> float | None:
    """The sample's price: prompt tokens the server read from its prefix cache at the cached
    price (``price_cached_in_per_mtok``, the input price when the pool gives none)."""
    if spec.price_in_per_mtok is None or spec.price_out_per_mtok is None:
        return None
    cached = min(getattr(g, "cached_tokens", 0) or 0, g.input_tokens)
    p_cached = spec.price_cached_in_per_mtok
    if p_cached is None:
        p_cached = spec.price_in_per_mtok
    fresh = g.input_tokens - cached
    return (
        spec.price_in_per_mtok * fresh
        + float(p_cached) * cached
        + spec.price_out_per_mtok * g.output_tokens
    ) / 1e6


def _model_meta(spec: Any) -> dict[str, Any]:
    d = asdict(spec) if hasattr(spec, "__dataclass_fields__") else dict(vars(spec))
    return {k: d.get(k) for k in MODEL_META}
