"""Backends produce n samples per prompt; discovered through entry points ``uisbench.backends``.

A backend returns, per sample, the text (cut at the first stop string), token counts, the
sequence log-prob and the latency, so the meter can charge tokens, FLOPs and time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Protocol, Union, runtime_checkable

from uisbench.errors import UisbenchError
from uisbench.registry import Registry

if TYPE_CHECKING:
    from uisbench.live.pools import ModelSpec

ENTRY_POINT_GROUP = "uisbench.backends"

# A prompt is plain text, or chat messages ([{"role": ..., "content": ...}]) that the backend
# renders with the model's chat template.
Prompt = Union[str, list]  # noqa: UP007 (runtime alias, Python 3.10)


@dataclass(frozen=True)
class GenerationConfig:
    temperature: float = 0.7
    top_p: float = 0.95
    max_tokens: int = 256
    stop: tuple[str, ...] = ()
    seed: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "stop", tuple(self.stop))

    def key(self) -> dict:
        """Canonical JSON-able dict (sorted keys, stop as a list) for the bank key."""
        d = asdict(self)
        d["stop"] = list(self.stop)
        d["temperature"] = float(self.temperature)
        d["top_p"] = float(self.top_p)
        return dict(sorted(d.items()))


@dataclass
class Generation:
    text: str
    input_tokens: int
    output_tokens: int
    logprob: float | None
    latency_s: float
    #: Prompt tokens a server read from its prefix cache (``usage.prompt_tokens_details``).
    cached_tokens: int = 0


@runtime_checkable
class Backend(Protocol):
    name: str

    def generate(
        self, prompts: list[Prompt], n: int, config: GenerationConfig
    ) -> list[list[Generation]]: ...


class TokenizingBackend:
    """Prompt handling shared by backends that hold a Hugging Face tokenizer."""

    name: str
    tokenizer: Any

    def render(self, prompt: Prompt) -> str:
        """Text as is; chat messages through the tokenizer's chat template."""
        if isinstance(prompt, str):
            return prompt
        if getattr(self.tokenizer, "chat_template", None):
            return self.tokenizer.apply_chat_template(
                prompt, tokenize=False, add_generation_prompt=True
            )
        raise UisbenchError(f"model {self.name} has no chat template; give it a text prompt")

    def prompt_ids(self, prompts: list[Prompt]) -> list[list[int]]:
        """Token ids per prompt. Plain text gets the tokenizer's special tokens (Gemma needs its
        <bos>: without it the base model only copies the few-shot answers); a rendered chat
        template has them already."""
        return [
            self.tokenizer(self.render(p), add_special_tokens=isinstance(p, str))["input_ids"]
            for p in prompts
        ]


BACKENDS: Registry[Callable[..., Backend]] = Registry(ENTRY_POINT_GROUP, "backend")


def get_backend(spec: ModelSpec, device: str | None = None) -> Backend:
    """Instantiate the backend named by ``spec.backend`` for this model."""
    return BACKENDS.get(spec.backend)(spec, device=device)
