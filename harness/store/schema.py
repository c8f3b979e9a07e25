"""The database schema: pool metadata, the sample bank, runs and their decisions.

One schema serves SQLite (the default) and PostgreSQL. It is versioned: a database written by
another schema version is refused rather than silently misread (see :mod:`uisbench.store.engine`).
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

#: 4: banks keep their content digest's state (content_sum, content_rows), see store/digest.py.
#: Seeded splits are computed from content, not stored (store/splits.py).
#: 5: ``runs`` has no ``mode`` column (every run replays a bank), see store/runs.py.
SCHEMA_VERSION = 5

metadata = MetaData()

meta = Table(
    "uisbench_meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

tasks = Table(
    "tasks",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("description", Text),
)

queries = Table(
    "queries",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("task_id", Integer, ForeignKey("tasks.id"), nullable=False),
    Column("query_key", String(300), nullable=False),
    # The source's own split ("train"/"test"), NULL when the source has none.
    Column("split", String(16)),
    Column("prompt", Text, nullable=False),
    Column("reference", Text),
    UniqueConstraint("task_id", "query_key", name="uq_query"),
)

models = Table(
    "models",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("family", String(100)),
    Column("backend", String(50)),
    Column("identifier", String(500)),
    Column("params_total", Float),  # parameters, not billions
    Column("params_active", Float),
    Column("train_tokens", Float),  # tokens, not trillions
    Column("price_in_per_mtok", Float),  # USD per million tokens
    Column("price_out_per_mtok", Float),
    Column("price_cached_in_per_mtok", Float),  # a cached prompt prefix, where billed apart
    Column("context_length", Integer),
)

# A bank is a named generation configuration: every sample belongs to exactly one.
banks = Table(
    "banks",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("source", String(50), nullable=False),  # "import" | "live" | "synthetic"
    Column("config", JSON, nullable=False),
    Column("synthetic", Boolean, nullable=False, default=False),
    # The content digest's state, kept up to date by every sample write (store/digest.py).
    Column("content_sum", String(64), nullable=False, server_default="0" * 64),
    Column("content_rows", Integer, nullable=False, server_default="0"),
)

samples = Table(
    "samples",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("bank_id", Integer, ForeignKey("banks.id"), nullable=False),
    Column("query_id", Integer, ForeignKey("queries.id"), nullable=False),
    Column("model_id", Integer, ForeignKey("models.id"), nullable=False),
    Column("sample_index", Integer, nullable=False),
    Column("text", Text),
    Column("answer", Text),
    Column("correct", Boolean, nullable=False),
    Column("score", Float),
    Column("input_tokens", Integer),
    Column("output_tokens", Integer),
    Column("cost_usd", Float),
    Column("latency_s", Float),
    Column("logprob", Float),
    # Model before query: imports arrive model by model, so this index is appended to in
    # order (about twice the insert rate of query-first at millions of rows), and its prefix
    # serves replay's per-(bank, model) loads, so no second index is needed.
    UniqueConstraint("bank_id", "model_id", "query_id", "sample_index", name="uq_sample"),
)

runs = Table(
    "runs",
    metadata,
    Column("id", Integer, primary_key=True),
    # Hash of what defines the run (task, strategy, params, seed, bank, models); resume finds it.
    Column("run_key", String(64), nullable=False, unique=True),
    Column("task_id", Integer, ForeignKey("tasks.id"), nullable=False),
    Column("bank_id", Integer, ForeignKey("banks.id"), nullable=False),
    Column("strategy", String(100), nullable=False),
    Column("params", JSON, nullable=False),
    Column("config_label", String(300), nullable=False),
    Column("seed", Integer, nullable=False),
    Column("models", JSON, nullable=False),
    Column("split_seed", Integer),
    # What a repeated request finds in the prompt cache: none | full | block:N (costs.PrefixCache).
    Column("prefix_cache", String(32), nullable=False),
    Column("n_queries", Integer, nullable=False),
    Column("bank_digest", String(64)),  # content of the bank replayed (part of run_key)
    Column("uisbench_version", String(50), nullable=False),
    Column("git_commit", String(64)),
    Column("command", Text),
    Column("host", String(200)),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("ended_at", DateTime(timezone=True)),
    Column("status", String(16), nullable=False),  # "running" | "complete"
    Column("summary", JSON),
)

decisions = Table(
    "decisions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("run_id", Integer, ForeignKey("runs.id"), nullable=False),
    Column("query_id", Integer, ForeignKey("queries.id"), nullable=False),
    Column("position", Integer, nullable=False),  # order in the run's query stream
    Column("arms", JSON, nullable=False),  # [{"model": ..., "n": ...}, ...] in call order
    Column("samples_used", Integer, nullable=False),
    Column("answer", Text),
    Column("correct", Boolean, nullable=False),
    Column("input_tokens", Integer),  # NULL when the bank recorded no token counts
    Column("output_tokens", Integer),
    Column("flops", Float),  # NULL when a model's parameter count is undisclosed
    Column("dollars", Float),
    Column("latency_s", Float),
    Column("param_calls", Float),  # Σ N_active of the samples drawn (outcomes-only banks' unit)
    Column("reward", Float),
    Column("extra", JSON),
    UniqueConstraint("run_id", "query_id", name="uq_decision"),
)
Index("ix_decisions_run", decisions.c.run_id, decisions.c.position)
