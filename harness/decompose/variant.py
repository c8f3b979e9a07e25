"""Decompose a pool model end to end: load it, build calibration prompts from a task, anneal,
save the decomposition and a pool file whose one entry is the decomposed variant.

The variant's ``params_active`` is what a token multiplies by in the block form (embeddings,
norms and the head unchanged; each decomposed map counted as ``Σ_b outs_b·ins_b``), so the meter
charges the block execution's FLOPs; its latency is measured when it is recorded.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
import yaml

from uisbench.decompose.annealing import DEFAULT_LEVELS, Tolerance, linear_maps
from uisbench.decompose.criterion import Null
from uisbench.decompose.pipeline import Decomposition, decompose, save
from uisbench.errors import UisbenchError
from uisbench.live.pools import ModelSpec, load_pool

POOL_FILE = "pool.yaml"


def pool_model(pool: str, name: str) -> ModelSpec:
    specs = {m.name: m for m in load_pool(pool)}
    if name not in specs:
        raise UisbenchError(f"unknown model {name!r} in pool {pool!r} (models: {', '.join(specs)})")
    return specs[name]


def calibration_batch(
    backend: Any, task: Any, split: str, n: int, chat: bool
) -> dict[str, torch.Tensor]:
    """The first ``n`` prompts of ``task``'s ``split``, rendered as a recording renders them
    (chat messages for chat models), tokenized and left-padded."""
    docs = task.docs(split)[:n]
    if not docs:
        raise UisbenchError(f"task has no documents in split {split!r}")
    prompts = [(chat and task.chat_messages(d)) or task.prompt(d) for d in docs]
    ids = backend.prompt_ids(prompts)
    return dict(backend.tokenizer.pad({"input_ids": ids}, return_tensors="pt", padding=True))


def null_for(model: Any, init_dir: Path | None, sigma: float | None) -> Null:
    """Saved initial weights when given, else N(0, σ²) with σ from the config (or ``sigma``)."""
    if init_dir is not None:
        from transformers import AutoModelForCausalLM

        init_model = AutoModelForCausalLM.from_pretrained(init_dir, dtype=torch.float32)
        init = {n: lin.weight.detach() for n, lin in linear_maps(init_model).items()}
        return Null(init=init)
    sigma = sigma or getattr(model.config, "initializer_range", None)
    if not sigma:
        raise UisbenchError("the model config declares no initializer_range: give --sigma")
    return Null(sigma=float(sigma))


def write_variant_pool(spec: ModelSpec, dec: Decomposition, out: Path, variant: str) -> dict:
    """``out/pool.yaml``: the decomposed variant of ``spec``, loaded by the decomposed backend."""
    out.mkdir(parents=True, exist_ok=True)
    entry = {k: v for k, v in asdict(spec).items() if k not in ("gguf", "extra")}
    entry.update(
        name=variant,
        backend="decomposed",
        identifier=str(out.resolve()),
        params_active=int(dec.executed_params(spec.params_total)),
    )
    q = dec.result.level.q if dec.result.level is not None else None
    about = f"{spec.name} decomposed by uisbench decompose (level q={q})"
    pool = {"name": f"{spec.name}-decomposed", "description": about, "models": [entry]}
    (out / POOL_FILE).write_text(yaml.safe_dump(pool, sort_keys=False))
    return entry


def decompose_pool_model(
    spec: ModelSpec,
    out: Path,
    variant: str,
    *,
    task: Any,
    split: str = "train",
    n_prompts: int = 16,
    init_dir: Path | None = None,
    sigma: float | None = None,
    levels: tuple[float, ...] = DEFAULT_LEVELS,
    tolerance: Tolerance | None = None,
    progress: Any = None,
    force: float | None = None,
) -> dict:
    """Decompose ``spec`` on CPU and write ``out``; returns the report."""
    from uisbench.live.backends.transformers import TransformersBackend, load_model_and_tokenizer

    model, tokenizer = load_model_and_tokenizer(spec, torch.device("cpu"))
    backend = TransformersBackend(spec, device="cpu", model=model, tokenizer=tokenizer)
    batch = calibration_batch(backend, task, split, n_prompts, spec.chat_template)
    null = null_for(model, init_dir, sigma)
    dec = decompose(model, null, batch, levels, tolerance, progress, force)
    entry = write_variant_pool(spec, dec, out, variant)
    calibration = {"task": task.name, "split": split, "prompts": int(batch["input_ids"].shape[0])}
    return save(
        model, tokenizer, dec, out, model_name=spec.name, variant=entry, calibration=calibration
    )
