"""``uisbench bank``: import, export, inspect and record sample banks."""

from __future__ import annotations

import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from uisbench.cli.options import db_option, parse_task_args, unsafe_exec_option
from uisbench.errors import UisbenchError

#: Files from this size up are announced before the import (it runs in one transaction).
ANNOUNCE_MB = 5.0


@click.group(short_help="Import, export, record and inspect sample banks.")
def bank() -> None:
    """Import, export and inspect sample banks."""


FORMAT_NAMES = (
    "auto",
    "flat",
    "lm-eval",
    "inspect",
    "routerbench",
    "openrouterbench",
    "correctness-matrix",
)


def format_options(f: Callable) -> Callable:
    """Options shared by ``bank import`` and ``bank convert`` for the field's formats."""
    f = click.option(
        "--trust-pickle",
        is_flag=True,
        help="Read a RouterBench .pkl (a pickle runs code when loaded: only files you trust).",
    )(f)
    f = click.option("--task", "task_name", default=None, help="Task name (correctness-matrix).")(f)
    f = click.option(
        "--model",
        "model_name",
        default=None,
        help="Model name for lm-eval and inspect input (default: from the run's arguments).",
    )(f)
    f = click.option(
        "--format",
        "fmt",
        type=click.Choice(FORMAT_NAMES),
        default="auto",
        show_default=True,
        help="Input format; auto: .jsonl[.gz] is flat, else the one importer that recognises it "
        "(docs/BANK_FORMAT.md).",
    )(f)
    return f


def _convert(file: Path, fmt: str, model: str | None, task: str | None, trust: bool) -> Any:
    from uisbench.importers import convert

    return convert(file, fmt, model=model, task=task, trust_pickle=trust)


@bank.command("import")
@click.argument("file", type=click.Path(path_type=Path))
@click.option(
    "--models",
    "models_file",
    type=click.Path(path_type=Path),
    default=None,
    help="NAME.models.json with parameter counts, training tokens and prices.",
)
@click.option("--name", default=None, help="Bank name (default: the file name without suffix).")
@click.option("--synthetic", is_flag=True, help="Label the bank synthetic (speed tests only).")
@click.option(
    "--on-conflict",
    type=click.Choice(["refuse", "replace"]),
    default="refuse",
    show_default=True,
    help="A held sample with another answer, or a query id with another prompt or split.",
)
@format_options
@db_option
def bank_import(
    file: Path,
    models_file: Path | None,
    name: str | None,
    synthetic: bool,
    on_conflict: str,
    fmt: str,
    model_name: str | None,
    task_name: str | None,
    trust_pickle: bool,
    db: str | None,
) -> None:
    """Import a bank: the flat format (JSONL or JSONL.gz), or lm-eval, inspect_ai, RouterBench,
    OpenRouterBench output or a correctness matrix (--format); samples already present are
    skipped. The models' metadata (NAME.models.json) is read from beside the file, or from
    --models."""
    from uisbench.importers import cost_unit_hint, is_flat, with_models, write_flat
    from uisbench.store.bank import import_file
    from uisbench.store.bankfile import bank_name_from_path, models_file_beside
    from uisbench.store.engine import open_engine
    from uisbench.store.lookups import models_without_cost_unit
    from uisbench.tasks import task_description

    if file.name.endswith(".models.json"):
        raise UisbenchError(
            f"{file} is a models file (parameter counts, prices), not a bank: give the bank "
            f"file and pass this one with --models {file}"
        )
    if file.exists() and not (file.is_file() or file.is_dir()):  # a FIFO, a device
        raise UisbenchError(f"{file}: not a regular file or a folder")
    engine = open_engine(db)
    size = file.stat().st_size / 1e6 if file.is_file() else 0.0
    if size >= ANNOUNCE_MB and not sys.stdout.isatty():  # a CI log hears that work has begun
        click.echo(f"importing {file} ({size:.1f} MB) in one transaction…")
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="uisbench-import-") as tmp:
        if fmt != "flat" and not (fmt == "auto" and is_flat(file)):
            conv = with_models(
                _convert(file, fmt, model_name, task_name, trust_pickle), models_file
            )
            name = name or bank_name_from_path(file)
            file, models_file = write_flat(conv, Path(tmp) / f"{name}.jsonl.gz")
            for note in conv.notes:
                click.echo(f"note: {note}", err=True)
        models_file = models_file or models_file_beside(file)
        stats = import_file(
            engine,
            file,
            models_file,
            name=name,
            synthetic=synthetic,
            describe=task_description,
            on_conflict=on_conflict,
        )
    if hint := cost_unit_hint(models_without_cost_unit(engine, stats.bank)):
        click.echo(hint, err=True)
    if stats.unknown_models:
        n, shown = len(stats.unknown_models), stats.unknown_models[:5]
        more = f", ... ({n} in all)" if n > len(shown) else ""
        click.echo(
            f"warning: the models file describes {n} model(s) the bank lacks (not stored): "
            f"{', '.join(shown)}{more}",
            err=True,
        )
    replaced = f"; {stats.replaced} conflicting rows replaced" if stats.replaced else ""
    click.echo(
        f"bank {stats.bank}: {stats.rows} rows read, {stats.inserted} new samples "
        f"({stats.rows - stats.inserted} already present); tasks: {', '.join(stats.tasks)}; "
        f"models: {', '.join(stats.models)}{replaced} ({time.perf_counter() - start:.1f} s)"
    )


@bank.command("convert")
@click.argument("file", type=click.Path(path_type=Path))
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    required=True,
    help="Flat bank to write (.jsonl or .jsonl.gz); NAME.models.json and NAME.bank.json beside.",
)
@click.option(
    "--models",
    "models_file",
    type=click.Path(path_type=Path),
    default=None,
    help="models.json whose entries override what the input says.",
)
@format_options
def bank_convert(
    file: Path,
    out: Path,
    models_file: Path | None,
    fmt: str,
    model_name: str | None,
    task_name: str | None,
    trust_pickle: bool,
) -> None:
    """Convert lm-eval, inspect_ai, RouterBench, OpenRouterBench output or a correctness matrix
    into the flat format, without importing it."""
    from uisbench.errors import UisbenchError
    from uisbench.importers import with_models, write_flat

    if not (out.name.endswith(".jsonl") or out.name.endswith(".jsonl.gz")):
        raise UisbenchError(f"--out {out.name}: a flat bank is written as .jsonl or .jsonl.gz")
    conv = with_models(_convert(file, fmt, model_name, task_name, trust_pickle), models_file)
    write_flat(conv, out)
    for note in conv.notes:
        click.echo(f"note: {note}", err=True)
    n_models = len({r.model for r in conv.rows})
    click.echo(f"wrote {out}: {len(conv.rows)} samples of {n_models} model(s)")


@bank.command("export")
@click.option("--bank", "bank_name", required=True, help="Bank to export.")
@click.option("--task", default=None, help="Only this task.")
@click.option(
    "--out", type=click.Path(path_type=Path), required=True, help="Output .jsonl or .jsonl.gz."
)
@click.option(
    "--models-out",
    type=click.Path(path_type=Path),
    default=None,
    help="Also write the models metadata file.",
)
@db_option
def bank_export(
    bank_name: str, task: str | None, out: Path, models_out: Path | None, db: str | None
) -> None:
    """Export a bank in the flat outcome format (round-trips with ``bank import``)."""
    from uisbench.store.bank import bank_config, bank_models_meta, export_rows
    from uisbench.store.bankfile import (
        PROVENANCE_KEYS,
        bank_meta_path,
        models_to_json,
        open_text,
        row_to_json,
    )
    from uisbench.store.engine import open_engine

    if out.is_dir():
        raise UisbenchError(f"--out {out} is a directory; give a file name (.jsonl or .jsonl.gz)")
    engine = open_engine(db, create=False)
    n = 0
    tmp = out.with_suffix(".part" + out.suffix)  # keeps .gz last: compressed like the target
    out.parent.mkdir(parents=True, exist_ok=True)
    with engine.connect() as conn:
        meta = bank_models_meta(conn, bank_name)  # fails on an unknown bank before any write
        config = bank_config(conn, bank_name)
        try:
            with open_text(tmp, "wt") as fh:
                for row in export_rows(conn, bank_name, task):
                    fh.write(row_to_json(row) + "\n")
                    n += 1
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    try:
        tmp.replace(out)  # atomic: a reader never sees a half-written export
    finally:
        tmp.unlink(missing_ok=True)
    if models_out:
        models_out.parent.mkdir(parents=True, exist_ok=True)
        models_out.write_text(models_to_json(meta) + "\n", encoding="utf-8")
    provenance = {k: config[k] for k in PROVENANCE_KEYS if isinstance(config.get(k), str)}
    if provenance:  # source and licence travel with the samples (read back by bank import)
        text = json.dumps(provenance, indent=1, ensure_ascii=False)
        bank_meta_path(out).write_text(text + "\n", encoding="utf-8")
    click.echo(f"wrote {n} samples to {out}")


@bank.command("info")
@click.option("--bank", "bank_name", default=None, help="Only this bank.")
@db_option
def bank_info(bank_name: str | None, db: str | None) -> None:
    """Show models × queries × samples per bank and task, with each model's accuracy on the
    test and the train split and its mean cost."""
    from uisbench.results.report import print_bank_info, split_accuracy
    from uisbench.store.bank import get_bank_id, info
    from uisbench.store.engine import open_engine

    engine = open_engine(db, create=False)
    with engine.connect() as conn:
        if bank_name:
            get_bank_id(conn, bank_name)  # an unknown bank is named as such, with the known ones
        df = info(conn, bank_name)
        splits = split_accuracy(conn, bank_name)
    if df.empty:
        raise UisbenchError("the database holds no samples")
    print_bank_info(df, splits)


@bank.command("record")
@click.option("--task", "task_name", required=True, help="Registered task (`uisbench list tasks`).")
@click.option("--pool", required=True, help="Pool name (`uisbench list pools`) or pool file.")
@click.option("--k", type=int, default=4, show_default=True, help="Samples per query and model.")
@click.option("--limit", type=int, default=None, help="First N queries of each split.")
@click.option(
    "--split",
    "splits",
    default="test",
    show_default=True,
    help="Comma-separated splits to record (train,test).",
)
@click.option("--models", default=None, help="Comma-separated subset of the pool.")
@click.option("--batch-size", type=int, default=8, show_default=True, help="Prompts per call.")
@click.option("--device", default=None, help="cpu, cuda, cuda:1 ... (default: automatic).")
@click.option("--backend", default=None, help="Backend for every model (default: the pool's).")
@click.option(
    "--endpoint",
    "endpoints",
    multiple=True,
    metavar="URL",
    help="OpenAI-compatible server for --backend openai, e.g. http://host:8000/v1 (repeatable: "
    "replicas share the load).",
)
@click.option("--max-tokens", type=int, default=None, help="Override the task's generation length.")
@click.option("--temperature", type=float, default=None, help="Override the task's temperature.")
@click.option(
    "--task-arg",
    "task_args",
    multiple=True,
    metavar="KEY=VALUE",
    help="Task option, e.g. levels=add1,mul1 or n_per_level=40 (repeatable).",
)
@unsafe_exec_option
@db_option
def bank_record(
    task_name: str,
    pool: str,
    k: int,
    limit: int | None,
    splits: str,
    models: str | None,
    batch_size: int,
    device: str | None,
    backend: str | None,
    endpoints: tuple[str, ...],
    max_tokens: int | None,
    temperature: float | None,
    task_args: tuple[str, ...],
    db: str | None,
) -> None:
    """Generate k samples per query and model with a live backend into the bank (resumable)."""
    from uisbench.live import RecordRequest, record
    from uisbench.progress import progress_bar, rate_ticker
    from uisbench.store.engine import open_engine
    from uisbench.tasks import pair_data_files

    overrides = {"max_tokens": max_tokens, "temperature": temperature}
    split_names = tuple(x.strip() for x in splits.split(",") if x.strip())
    req = RecordRequest(
        task_name,
        pool,
        k,
        limit=limit,
        splits=split_names,
        models=models.split(",") if models else None,
        batch_size=batch_size,
        device=device,
        backend=backend,
        endpoints=list(endpoints) or None,
        task_overrides=pair_data_files(parse_task_args(task_args), split_names),
        config_overrides={key: v for key, v in overrides.items() if v is not None},
    )
    with progress_bar(rate=True) as bar:
        tick = rate_ticker(bar, bar.add_task("samples", total=None, rate=""), "samples")
        stats = record(open_engine(db), req, progress=tick)
    click.echo(
        f"bank {stats.bank}: {stats.queries} queries, {stats.generated} samples generated, "
        f"{stats.already} already held ({stats.seconds:.1f} s)"
    )
