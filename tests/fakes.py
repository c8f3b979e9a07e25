"""The test fakes: one seeded bank builder and one live backend (after inspect_ai's ``mockllm``).

:class:`FakeBank` (with :class:`FakeModel` and :func:`write_jsonl`) lives in the public
:mod:`uisbench.testing`, for plugin authors' tests too; it is re-exported here.

:class:`FakeBackend` implements the live ``Backend`` protocol with text, token counts and
log-probs that depend only on the prompt, the seed and the sample's index, so recording runs
(and tops up) without a model. The ``fake_backend`` fixture in ``conftest.py`` registers it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from uisbench.live.backends import Generation, GenerationConfig, Prompt
from uisbench.testing import FakeBank, FakeModel, write_jsonl

__all__ = [
    "FakeBackend",
    "FakeBank",
    "FakeModel",
    "cli",
    "cli_code",
    "served_pool",
    "words",
    "write_jsonl",
]


# ----- the live backend ---------------------------------------------------------------------

VOCAB = np.array("the answer is so we get then 0 1 2 3 4 5 6 7 8 9".split(), dtype=object)


def _digest(prompt: Prompt) -> int:
    text = prompt if isinstance(prompt, str) else json.dumps(prompt, sort_keys=True)
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")


class FakeBackend:
    """A live backend without a model: words drawn from a generator seeded by (seed, sample
    index, prompt), so equal requests give equal text and a new seed gives new text, however
    the prompts are batched. Token counts are word counts; the log-prob is the sum of one
    draw per output token."""

    name = "fake"

    def __init__(self, spec: Any = None, device: str | None = None) -> None:
        self.spec = spec
        self.device = device
        self.prompts_seen = 0

    def generate(
        self, prompts: list[Prompt], n: int, config: GenerationConfig
    ) -> list[list[Generation]]:
        self.prompts_seen += len(prompts)
        return [[self._one(p, j, config) for j in range(n)] for p in prompts]

    def _one(self, prompt: Prompt, j: int, config: GenerationConfig) -> Generation:
        rng = np.random.default_rng([config.seed, j, _digest(prompt)])
        n_tokens = int(rng.integers(1, config.max_tokens + 1))
        text = " ".join(rng.choice(VOCAB, n_tokens))
        for stop in config.stop:
            text = text.split(stop)[0]
        n_out = max(len(text.split()), 1)
        rendered = prompt if isinstance(prompt, str) else json.dumps(prompt)
        logprob = float(np.log(rng.uniform(0.05, 1.0, n_out)).sum())
        return Generation(text, len(rendered.split()), n_out, logprob, 0.001 * n_out)


def served_pool(
    folder: Path, url: str, *, name: str = "served", cached_price: bool = False, **openai: Any
) -> Path:
    """``NAME.yaml``: a one-model pool (``served-model``) behind the OpenAI-compatible ``url``,
    with fast retries (``openai`` overrides the client settings)."""
    settings = {"backoff_s": 0.01, "backoff_max_s": 0.05, "max_attempts": 2, **openai}
    cached = "    price_cached_in_per_mtok: 0.25\n" if cached_price else ""
    path = folder / f"{name}.yaml"
    path.write_text(
        f"name: {name}\n"
        "models:\n"
        "  - name: served-model\n"
        "    backend: openai\n"
        "    identifier: org/served\n"
        "    params_total: 1000000\n"
        "    params_active: 1000000\n"
        "    price_in_per_mtok: 1.0\n"
        "    price_out_per_mtok: 4.0\n"
        f"{cached}"
        f"    endpoints: [{url}]\n"
        f"    openai: {json.dumps(settings)}\n"
    )
    return path


def cli_code(*args: str) -> int:
    """Exit code of one in-process ``uisbench`` call."""
    from uisbench.cli import main

    try:
        main(list(args))
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def cli(capsys: Any, *args: str) -> tuple[int, str, str]:
    """Exit code, standard output and standard error of one in-process ``uisbench`` call
    (``capsys``: pytest's fixture)."""
    code = cli_code(*args)
    out = capsys.readouterr()
    return code, out.out, out.err


def words(text: str) -> str:
    """``text`` with every run of white space one space: a table or path wrapped at any width
    reads the same."""
    return " ".join(text.split())
