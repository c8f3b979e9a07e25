"""Hugging Face transformers backend: n seeded samples per prompt, on CPU or CUDA.

Loads HF hub ids, local directories and GGUF files (``from_pretrained(dir, gguf_file=...)``;
transformers dequantises GGUF weights to float). A pool model with a packaged GGUF is checked
against its SHA-256 first; the dequantised checkpoint is then cached (safetensors, under
``uisbench.live.pools.cache_dir()``) because converting GGUF takes tens of seconds on CPU.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch

from uisbench.errors import UisbenchError
from uisbench.live.backends import Generation, GenerationConfig, Prompt, TokenizingBackend
from uisbench.live.pools import ModelSpec, converted_dir, gguf_path

MAX_SEQUENCES_PER_BATCH = 64


def resolve_device(device: str | None) -> torch.device:
    """``None``/"auto": CUDA when available, else CPU. Asking for CUDA without one is an error."""
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise UisbenchError(f"device {device!r} requested but no CUDA GPU is available here")
    return torch.device(device)


def load_model_and_tokenizer(spec: ModelSpec, device: torch.device) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    dtype = torch.float32 if device.type == "cpu" else torch.bfloat16
    if spec.gguf is not None:
        path = gguf_path(spec.gguf)
        converted = converted_dir(spec)
        if (converted / "config.json").exists():
            source, kwargs = str(converted), {}
        else:
            source, kwargs = str(path.parent), {"gguf_file": path.name}
    else:
        ident = Path(spec.identifier)
        converted = None
        if ident.suffix == ".gguf" and ident.exists():
            source, kwargs = str(ident.parent), {"gguf_file": ident.name}
        else:
            source, kwargs = spec.identifier, {}
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, **kwargs)
        model = AutoModelForCausalLM.from_pretrained(source, dtype=dtype, **kwargs)
    except OSError as exc:
        raise UisbenchError(f"cannot load model {spec.name} from {source}: {exc}") from exc
    if converted is not None and kwargs:  # first GGUF load: keep the float checkpoint
        _save_converted(model, tokenizer, converted)
    model.to(device).eval()
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    return model, tokenizer


class _StopOnStrings:
    """Stops a row once its generated text contains a stop string.

    transformers' own ``stop_strings`` builds tables over the whole vocabulary on every call
    (seconds for a 49k-262k vocabulary), so this decodes the tail of each row instead.
    """

    def __init__(self, tokenizer: Any, stop: tuple[str, ...], prompt_len: int, window: int = 16):
        self.tokenizer, self.stop, self.prompt_len = tokenizer, [s for s in stop if s], prompt_len
        self.window = window + max(len(s) for s in self.stop) if self.stop else window

    def __call__(self, input_ids: torch.Tensor, scores: Any, **kwargs: Any) -> torch.Tensor:
        tails = input_ids[:, self.prompt_len :][:, -self.window :].tolist()
        texts = self.tokenizer.batch_decode(tails, skip_special_tokens=True)
        done = [any(s in t for s in self.stop) for t in texts]
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)


class _ChosenLogprobs:
    """Log-prob of each sampled token under the distribution it was sampled from, kept online.

    Runs last among the logits processors, after temperature and top-p. At step t it sees in
    ``input_ids`` the token chosen at t-1 and reads its log-prob from the scores it kept of
    step t-1. This replaces ``output_scores`` + ``compute_transition_scores``, which keep and
    re-normalise the full (steps × sequences × vocabulary) score tensor: ~9% of generation time
    for a 49k vocabulary on CPU (bench/generation_throughput.py).
    """

    def __init__(self) -> None:
        self.prev: torch.Tensor | None = None
        self.prev_lse: torch.Tensor | None = None
        self.steps: list[torch.Tensor] = []

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        self._take(input_ids[:, -1])
        self.prev, self.prev_lse = scores, torch.logsumexp(scores.float(), dim=-1)
        return scores

    def _take(self, chosen: torch.Tensor) -> None:
        if self.prev is not None:
            picked = self.prev.gather(1, chosen[:, None]).squeeze(1).float()
            self.steps.append(picked - self.prev_lse)
            self.prev = None

    def finish(self, sequences: torch.Tensor) -> torch.Tensor:
        """(sequences × generated steps) log-probs; -inf where a token was impossible (padding)."""
        self._take(sequences[:, -1])
        if not self.steps:
            return torch.zeros((sequences.shape[0], 0))
        return torch.stack(self.steps, dim=1).cpu()


def _save_converted(model: Any, tokenizer: Any, target: Path) -> None:
    """Save the dequantised weights as a plain checkpoint (best effort: skipped on failure)."""
    import shutil

    tmp = target.with_name(target.name + ".tmp")
    try:
        # transformers marks GGUF-loaded models as quantized and refuses to serialise them,
        # although the weights are plain floats by then; drop the marker for the save.
        model.hf_quantizer = None
        model.is_quantized = False
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        tmp.rename(target)
    except (ValueError, OSError, AttributeError):
        shutil.rmtree(tmp, ignore_errors=True)


class TransformersBackend(TokenizingBackend):
    """Samples with ``model.generate``: all prompts of a call in one batch (chunked at
    ``MAX_SEQUENCES_PER_BATCH`` sequences), ``num_return_sequences=n``.

    ``logprob`` is the sum of the chosen tokens' log-probabilities under the *sampling*
    distribution (logits after temperature and top-p, i.e. ``output_scores``), over the counted
    output tokens. ``latency_s`` is the wall time of the batch call, the same for every sample
    of the batch. ``output_tokens`` counts generated tokens up to and including the token that
    completes the first stop string (or EOS); the text is cut before the stop string.
    """

    def __init__(
        self, spec: ModelSpec, device: str | None = None, model: Any = None, tokenizer: Any = None
    ):
        self.spec = spec
        self.name = spec.name
        self.device = resolve_device(device)
        if model is None or tokenizer is None:
            model, tokenizer = load_model_and_tokenizer(spec, self.device)
        self.model, self.tokenizer = model, tokenizer

    def generate(
        self, prompts: list[Prompt], n: int, config: GenerationConfig
    ) -> list[list[Generation]]:
        if n < 1:
            raise UisbenchError("n must be at least 1")
        ids = self.prompt_ids(prompts)
        per_chunk = max(1, MAX_SEQUENCES_PER_BATCH // n)
        out: list[list[Generation]] = []
        for start in range(0, len(ids), per_chunk):
            out.extend(self._generate_chunk(ids[start : start + per_chunk], n, config, start))
        return out

    def _generate_chunk(
        self, ids: list[list[int]], n: int, config: GenerationConfig, offset: int
    ) -> list[list[Generation]]:
        from transformers import set_seed

        enc = self.tokenizer.pad({"input_ids": ids}, return_tensors="pt", padding=True)
        enc = {k: v.to(self.device) for k, v in enc.items()}
        prompt_len = enc["input_ids"].shape[1]
        recorder = _ChosenLogprobs()
        kwargs = self._generate_kwargs(n, config, prompt_len, recorder)
        set_seed(config.seed + offset)
        start = time.perf_counter()
        with torch.inference_mode():
            result = self.model.generate(**enc, **kwargs)
        latency = time.perf_counter() - start
        token_logprobs = recorder.finish(result)
        if config.temperature <= 0 and n > 1:  # greedy decoding: the n samples are the same
            result = result.repeat_interleave(n, dim=0)
            token_logprobs = token_logprobs.repeat_interleave(n, dim=0)
        generated = result[:, prompt_len:].cpu()
        input_counts = enc["attention_mask"].sum(dim=1).tolist()
        return [
            [
                self._generation(
                    generated[i * n + j],
                    token_logprobs[i * n + j],
                    config,
                    latency,
                    int(input_counts[i]),
                )
                for j in range(n)
            ]
            for i in range(len(ids))
        ]

    def _generate_kwargs(
        self, n: int, config: GenerationConfig, prompt_len: int, recorder: _ChosenLogprobs
    ) -> dict[str, Any]:
        """``model.generate`` arguments: sampling warpers of our own, then the log-prob recorder
        (so its log-probs are those of the distribution each token was sampled from), then the
        stop-string criterion."""
        from transformers import (
            LogitsProcessorList,
            StoppingCriteriaList,
            TemperatureLogitsWarper,
            TopPLogitsWarper,
        )

        sampling = config.temperature > 0
        processors: list[Any] = []
        kwargs: dict[str, Any] = dict(
            max_new_tokens=config.max_tokens,
            num_return_sequences=n if sampling else 1,  # greedy: one sequence, copied after
            do_sample=sampling,
            pad_token_id=self.tokenizer.pad_token_id,
        )
        if sampling:
            kwargs.update(temperature=1.0, top_p=1.0, top_k=0)
            if config.temperature != 1.0:
                processors.append(TemperatureLogitsWarper(config.temperature))
            if config.top_p < 1.0:
                processors.append(TopPLogitsWarper(config.top_p))
        kwargs.update(logits_processor=LogitsProcessorList([*processors, recorder]))
        if config.stop:
            stopper = _StopOnStrings(self.tokenizer, config.stop, prompt_len)
            kwargs.update(stopping_criteria=StoppingCriteriaList([stopper]))
        return kwargs

    def _generation(
        self,
        tokens: torch.Tensor,
        token_logprobs: torch.Tensor,
        config: GenerationConfig,
        latency: float,
        input_tokens: int,
    ) -> Generation:
        """One sample: text cut at the stop string, its token count and summed log-prob."""
        text, count = self._cut(tokens.tolist(), config.stop)
        lp = token_logprobs[:count]
        lp = lp[torch.isfinite(lp)]
        return Generation(
            text=text,
            input_tokens=input_tokens,
            output_tokens=count,
            logprob=float(lp.sum()) if count else 0.0,
            latency_s=latency,
        )

    def _cut(self, tokens: list[int], stop: tuple[str, ...]) -> tuple[str, int]:
        """(text cut before the first stop string, generated tokens counted)."""
        eos = self.model.generation_config.eos_token_id
        eos_ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
        pad = self.tokenizer.pad_token_id
        length = len(tokens)
        for idx, tok in enumerate(tokens):
            if tok in eos_ids:
                length = idx + 1
                break
        while length and tokens[length - 1] == pad and pad not in eos_ids:
            length -= 1
        decode = lambda m: self.tokenizer.decode(tokens[:m], skip_special_tokens=True)  # noqa: E731
        text = decode(length)
        hits = [(text.find(s), s) for s in stop if s and s in text]
        if not hits:
            return text, length
        cut_at = min(hits)[0]
        # fewest tokens whose text reaches the end of the first stop string (binary search)
        target = cut_at + len(min(hits)[1])
        lo, hi = 1, length
        while lo < hi:
            mid = (lo + hi) // 2
            if len(decode(mid)) >= target:
                hi = mid
            else:
                lo = mid + 1
        return text[:cut_at], lo
