"""A tiny Llama trained inside the test with a planted block structure must decompose into it.

Every linear map of the model is trained only inside 4 diagonal blocks after a fixed random
permutation of its inputs and outputs (the gradients are masked), so the off-block weights keep
their initial values exactly. The decomposition against the saved initial weights must recover
exactly the planted blocks of every map, the block model must agree with the masked dense model
to float tolerance, and removing the untouched weights must keep the function:
max |Δlogit| ≤ ``LOGIT_TOL`` against the trained dense model on held-out sequences.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from uisbench.decompose import (  # noqa: E402
    Null,
    Tolerance,
    components,
    decompose,
    linear_maps,
    to_blocks,
)
from uisbench.decompose.blocks import BlockLinear  # noqa: E402

N_BLOCKS = 4
SIGMA = 0.0005  # initializer_range: the untouched weights are this small
LOGIT_TOL = 0.25  # stated tolerance on max |Δlogit| between trained and decomposed models
KL_TOL = 1e-4  # and on the mean token KL(trained ‖ decomposed), nats
VOCAB, SEQ = 64, 16
LEVELS = (1e-1, 1e-3, 1e-6, 1e-9, 1e-12)


def planted_mask(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """``N_BLOCKS`` dense diagonal blocks after random row and column permutations."""
    n_out, n_in = shape
    out_block = rng.permutation(np.arange(n_out) * N_BLOCKS // n_out)
    in_block = rng.permutation(np.arange(n_in) * N_BLOCKS // n_in)
    return out_block[:, None] == in_block[None, :]


def sequences(rng: np.random.Generator, n: int) -> torch.Tensor:
    """Token t+1 = token t + step (mod vocabulary), a step drawn per sequence from {1, 2, 3}."""
    start = rng.integers(VOCAB, size=(n, 1))
    step = rng.integers(1, 4, size=(n, 1))
    return torch.as_tensor((start + step * np.arange(SEQ)) % VOCAB)


def train(masks: dict[str, np.ndarray] | None, seed: int = 0, steps: int = 200):
    """The model, its initial linear weights, and the planted masks it was trained under."""
    cfg = transformers.LlamaConfig(
        vocab_size=VOCAB,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=SEQ,
        initializer_range=SIGMA,
        tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    model = transformers.LlamaForCausalLM(cfg)
    maps = linear_maps(model)
    init = {n: lin.weight.detach().clone() for n, lin in maps.items()}
    hooks = []
    for name, lin in maps.items():
        if masks is not None:
            m = torch.as_tensor(masks[name], dtype=torch.float32)
            hooks.append(lin.weight.register_hook(lambda g, m=m: g * m))
    opt = torch.optim.Adam(model.parameters(), lr=2e-2, weight_decay=0.0)
    rng = np.random.default_rng(seed)
    loss = torch.tensor(float("nan"))
    for _ in range(steps):
        ids = sequences(rng, 32)
        loss = model(input_ids=ids, labels=ids).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    for h in hooks:
        h.remove()
    model.eval()
    return model, init, float(loss.detach())


@pytest.fixture(scope="module")
def planted():
    cfg_model, _, _ = train(None, steps=0)  # shapes only
    rng = np.random.default_rng(42)
    shapes = {n: tuple(lin.weight.shape) for n, lin in linear_maps(cfg_model).items()}
    masks = {n: planted_mask(shape, rng) for n, shape in shapes.items()}
    model, init, loss = train(masks)
    return model, init, masks, loss


def held_out() -> dict[str, torch.Tensor]:
    ids = sequences(np.random.default_rng(7), 16)
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}


def test_training_learned_and_kept_off_block_weights(planted) -> None:
    model, init, masks, loss = planted
    assert loss < 1.0  # the task was learned (chance level is log 64 ≈ 4.16)
    for name, lin in linear_maps(model).items():
        moved = (lin.weight.detach() != init[name]).numpy()
        assert not moved[~masks[name]].any()  # off-block weights exactly at init
        assert moved[masks[name]].mean() > 0.99


@pytest.mark.parametrize("null", ["saved-init", "init-distribution"])
def test_recovers_planted_blocks_and_keeps_function(planted, null: str) -> None:
    """Saved init: the test is exact (unchanged weights have p = 1). Init distribution
    N(0, SIGMA²): off-block weights are false discoveries at loose levels and merge blocks;
    annealing to stricter levels must reach the planted partition."""
    model, init, masks, _ = planted
    model = copy.deepcopy(model)
    batch = held_out()
    with torch.inference_mode():
        dense = model(**batch).logits
    tolerance = Tolerance(kl=KL_TOL, max_logit=LOGIT_TOL)
    h0 = Null(init=init) if null == "saved-init" else Null(sigma=SIGMA)
    dec = decompose(model, h0, batch, LEVELS, tolerance)
    assert dec.result.level is not None
    for name, mask in masks.items():
        truth = components(mask)
        assert truth.n_blocks == N_BLOCKS
        assert dec.maps[name].same_partition(truth), name
        kept = linear_maps(model)[name].weight.detach().numpy() != 0
        assert not kept[~mask].any(), name  # every off-block weight removed
        if null == "saved-init":
            assert np.array_equal(kept, mask), name
    with torch.inference_mode():
        masked = model(**batch).logits
        to_blocks(model, dec.maps)
        assert len([m for m in model.modules() if isinstance(m, BlockLinear)]) == len(masks)
        blocked = model(**batch).logits
    torch.testing.assert_close(blocked, masked, atol=1e-5, rtol=1e-5)
    assert float((blocked - dense).abs().max()) <= LOGIT_TOL
    # the block form executes 1/N_BLOCKS of every map's weights
    if null == "init-distribution":  # the loosest level merged blocks: annealing was needed
        loose = dec.result.levels[0].maps
        assert not all(loose[n].same_partition(components(masks[n])) for n in masks)
    for name, mask in masks.items():
        assert dec.maps[name].block_params() == int(mask.sum()) < mask.size / (N_BLOCKS - 1)


def test_a_wrong_structure_is_not_recovered(planted) -> None:
    """The comparison can fail: another permutation of the same block sizes is not a match."""
    _, _, masks, _ = planted
    rng = np.random.default_rng(1)
    for name, mask in masks.items():
        wrong = planted_mask(mask.shape, rng)
        assert not components(wrong).same_partition(components(mask)), name


def test_unmasked_training_removes_nothing() -> None:
    """Without planted structure Adam moves every weight by a similar step, so no weight stands
    out from its map's spread of deviations: every level removes (nearly) everything, breaks
    the function, and the decomposition keeps the model whole."""
    model, init, _ = train(None, steps=40)
    before = {n: lin.weight.detach().clone() for n, lin in linear_maps(model).items()}
    dec = decompose(model, Null(init=init), held_out(), LEVELS, Tolerance(kl=KL_TOL))
    assert dec.result.level is None and dec.maps == {}
    assert not any(lv.within for lv in dec.result.levels)
    for name, lin in linear_maps(model).items():
        assert torch.equal(lin.weight, before[name])


def word_tokenizer() -> transformers.PreTrainedTokenizerFast:
    """A 64-entry word-level tokenizer covering arith-smoke prompts (numbers 0..41)."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    words = ["<unk>", "<pad>", "<s>", "</s>", "Q", "A", ":", "+", "-", "*", "=", "?"]
    vocab = {w: i for i, w in enumerate(words + [str(n) for n in range(VOCAB - len(words))])}
    core = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    return transformers.PreTrainedTokenizerFast(
        tokenizer_object=core, unk_token="<unk>", pad_token="<pad>", eos_token="</s>"
    )


def test_cli_saves_a_decomposition_the_backend_runs_as_blocks(planted, tmp_path) -> None:
    """``uisbench decompose`` on a pool entry → report, masked checkpoint, variant pool file;
    the ``decomposed`` backend loads it as blocks and samples from it."""
    import json

    import yaml

    from uisbench.cli.main import main
    from uisbench.live.backends import GenerationConfig, get_backend
    from uisbench.live.pools import load_pool

    model, init, masks, _ = planted
    tok = word_tokenizer()
    model.save_pretrained(tmp_path / "trained")
    tok.save_pretrained(tmp_path / "trained")
    start = copy.deepcopy(model)
    with torch.no_grad():
        for name, lin in linear_maps(start).items():
            lin.weight.copy_(init[name])
    start.save_pretrained(tmp_path / "init")
    total = sum(p.numel() for p in model.parameters())
    entry = {"name": "tiny", "backend": "transformers", "identifier": str(tmp_path / "trained")}
    entry.update(params_total=total, params_active=total)
    (tmp_path / "pool.yaml").write_text(yaml.safe_dump({"name": "t", "models": [entry]}))
    out = tmp_path / "out"
    pool, init_dir = str(tmp_path / "pool.yaml"), str(tmp_path / "init")
    args = ["--prompts", "4", "--levels", "0.1,1e-6", "--kl-tol", "0.01"]
    main(["decompose", "tiny", "--pool", pool, "--init", init_dir, "--out", str(out), *args])
    report = json.loads((out / "decomposition.json").read_text())
    assert report["chosen_q"] == 1e-6 and report["null"] == "saved-init"
    assert all(m["blocks"] == N_BLOCKS for m in report["maps"].values())
    dense_maps = sum(m.size for m in masks.values())
    variant = load_pool(out / "pool.yaml")[0]
    assert variant.name == "tiny@decomposed" and variant.backend == "decomposed"
    assert variant.params_active == total - dense_maps + sum(int(m.sum()) for m in masks.values())
    backend = get_backend(variant, device="cpu")
    assert sum(isinstance(m, BlockLinear) for m in backend.model.modules()) == len(masks)
    masked = transformers.AutoModelForCausalLM.from_pretrained(out)
    batch = held_out()
    with torch.inference_mode():
        torch.testing.assert_close(
            backend.model(**batch).logits, masked(**batch).logits, atol=1e-5, rtol=1e-5
        )
    gens = backend.generate(["Q: 3 + 5 = ?\nA:"], 2, GenerationConfig(max_tokens=3))
    assert len(gens[0]) == 2 and all(g.output_tokens >= 1 for g in gens[0])
