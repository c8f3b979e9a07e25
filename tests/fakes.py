"""The test fakes: one seeded bank builder and one live backend (after inspect_ai's ``mockllm``).

:class:`FakeBank` describes a small bank (models with sizes, prices and accuracies; queries;
samples per query; splits; token counts) and gives it in the three forms the tests need: sample
rows as dicts, a flat JSONL(.gz) file with its ``NAME.models.json`` (what ``bank import`` and the
CLI read), and the in-memory :class:`~uisbench.store.arrays.BankArrays` a strategy or the meter
replays without a database. All three come from the same seeded draw, so they agree cell for cell.

:class:`FakeBackend` implements the live ``Backend`` protocol with text, token counts and
log-probs that depend only on the prompt, the seed and the sample's index, so recording runs
(and tops up) without a model. The ``fake_backend`` fixture in ``conftest.py`` registers it.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from uisbench.live.backends import Generation, GenerationConfig, Prompt
from uisbench.store.arrays import BankArrays, ModelArrays


@dataclass(frozen=True)
class FakeModel:
    """One model of a fake bank; sizes in billions and trillions as ``NAME.models.json`` has them.

    ``accuracy`` is the chance that a sample is correct: one figure, or one per query.
    ``cost_usd`` is a recorded cost per sample (what an API log gives) for models without prices.
    """

    name: str
    accuracy: float | Sequence[float] = 0.5
    samples: int = 4
    params_b: float | None = 1.0
    train_tokens_t: float | None = 1.0
    price_in_per_mtok: float | None = None
    price_out_per_mtok: float | None = None
    cost_usd: float | None = None
    family: str = "fake"

    def models_json(self) -> dict[str, Any]:
        """This model's entry in ``NAME.models.json`` (billions, trillions, $/M tokens)."""
        d = {
            "family": self.family,
            "params_b": self.params_b,
            "train_tokens_t": self.train_tokens_t,
        }
        for f in ("price_in_per_mtok", "price_out_per_mtok"):
            if getattr(self, f) is not None:
                d[f] = getattr(self, f)
        return d

    def meta(self) -> dict[str, Any]:
        """The same metadata in plain units, as ``read_models_file`` gives it to the meter."""
        p, t = self.params_b, self.train_tokens_t
        return {
            "family": self.family,
            "params_total": p * 1e9 if p is not None else None,
            "params_active": p * 1e9 if p is not None else None,
            "train_tokens": t * 1e12 if t is not None else None,
            "price_in_per_mtok": self.price_in_per_mtok,
            "price_out_per_mtok": self.price_out_per_mtok,
        }


@dataclass
class _Cells:
    """One model's drawn samples as ``(queries, samples)`` arrays."""

    correct: np.ndarray  # bool
    answer: np.ndarray  # object: text, or None where no answer was extracted
    output_tokens: np.ndarray  # int
    logprob: np.ndarray  # float, nan where the backend gave none


def _default_models() -> tuple[FakeModel, ...]:
    return (
        FakeModel("small", 0.3, params_b=1.0, price_in_per_mtok=0.1, price_out_per_mtok=0.2),
        FakeModel("big", 0.8, params_b=8.0, price_in_per_mtok=1.0, price_out_per_mtok=2.0),
    )


@dataclass
class FakeBank:
    """A seeded bank of ``queries`` queries answered by ``models``.

    A sample is correct with its model's accuracy, independently (one ``numpy`` generator seeded
    with ``seed`` draws every model in order). A correct sample answers the reference, a wrong
    one one of ``wrong_answers``, so votes can split; with chance ``missing`` a sample has
    neither an extracted answer (it counts as wrong) nor a log-prob. Log-probs are higher for
    correct samples (-0.2 against -1.5, plus noise of sd 0.3) so that best-of-k and cascades
    have a signal. Every request reads ``input_tokens`` prompt tokens; output tokens are drawn
    uniformly from ``output_tokens`` (low, high exclusive); latency is 0.01 s per output token.
    ``train``: the first ``train`` queries form the train split, the rest the test split; None
    leaves the split to the runner's seeded draw.
    """

    models: Sequence[FakeModel] = field(default_factory=_default_models)
    queries: int = 20
    task: str = "toy"
    seed: int = 0
    train: int | None = None
    input_tokens: int = 20
    output_tokens: tuple[int, int] = (5, 30)
    missing: float = 0.0
    wrong_answers: Sequence[str] = ("w1", "w2", "w3")
    query_id: Callable[[int], str] = lambda q: f"q{q:03d}"
    prompt: Callable[[int], str] = lambda q: f"What is {q} mod 10?"
    reference: Callable[[int], str] = lambda q: str(q % 10)

    # ----- the draw -------------------------------------------------------------------------

    def _cells(self) -> dict[str, _Cells]:
        rng = np.random.default_rng(self.seed)
        refs = np.array([self.reference(q) for q in range(self.queries)], dtype=object)
        wrong = np.array(self.wrong_answers, dtype=object)
        lo, hi = self.output_tokens
        out = {}
        for m in self.models:
            shape = (self.queries, m.samples)
            acc = np.broadcast_to(np.asarray(m.accuracy, dtype=float), (self.queries,))
            correct = rng.random(shape) < acc[:, None]
            answer = np.where(correct, refs[:, None], wrong[rng.integers(len(wrong), size=shape)])
            noisy = np.where(correct, -0.2, -1.5) + 0.3 * rng.standard_normal(shape)
            logprob = np.minimum(noisy, 0.0)  # a log-probability is never above 0
            gap = rng.random(shape) < self.missing
            correct &= ~gap
            answer[gap] = None
            logprob[gap] = np.nan
            tokens = rng.integers(lo, hi, size=shape)
            out[m.name] = _Cells(correct, answer, tokens, logprob)
        return out

    def split(self, q: int) -> str | None:
        if self.train is None:
            return None
        return "train" if q < self.train else "test"

    # ----- flat rows and files --------------------------------------------------------------

    def rows(self) -> list[dict[str, Any]]:
        """The bank as flat-file rows (query by query, then model, then sample)."""
        cells = self._cells()
        rows = []
        for q in range(self.queries):
            base = {
                "task": self.task,
                "query_id": self.query_id(q),
                "split": self.split(q),
                "prompt": self.prompt(q),
                "reference": self.reference(q),
            }
            for m in self.models:
                c = cells[m.name]
                for k in range(m.samples):
                    out_tok = int(c.output_tokens[q, k])
                    lp = float(c.logprob[q, k])
                    rows.append(
                        {
                            **base,
                            "model": m.name,
                            "sample": k,
                            "answer": c.answer[q, k],
                            "correct": bool(c.correct[q, k]),
                            "input_tokens": self.input_tokens,
                            "output_tokens": out_tok,
                            "cost_usd": m.cost_usd,
                            "latency_s": round(0.01 * out_tok, 6),
                            "logprob": None if np.isnan(lp) else round(lp, 6),
                        }
                    )
        return rows

    def models_json(self) -> dict[str, dict[str, Any]]:
        return {m.name: m.models_json() for m in self.models}

    def write(self, folder: Path, name: str | None = None, gz: bool = False) -> Path:
        """Write ``NAME.jsonl[.gz]`` and ``NAME.models.json`` into ``folder``; the bank's path.

        ``NAME`` (the bank's name on import) defaults to the task.
        """
        name = name or self.task
        path = folder / f"{name}.jsonl{'.gz' if gz else ''}"
        write_jsonl(path, self.rows())
        models = json.dumps(self.models_json(), ensure_ascii=False)
        (folder / f"{name}.models.json").write_text(models, encoding="utf-8")
        return path

    # ----- in memory ------------------------------------------------------------------------

    def arrays(self) -> BankArrays:
        """The bank as the dense arrays replay works on, answer codes shared across models."""
        cells = self._cells()
        answers = np.concatenate([cells[m.name].answer.ravel() for m in self.models])
        codes, labels = pd.factorize(pd.Series(answers, dtype=object), use_na_sentinel=True)
        models, start = {}, 0
        for m in self.models:
            c = cells[m.name]
            shape, n = c.correct.shape, c.correct.size
            tokens = c.output_tokens.astype(float)
            models[m.name] = ModelArrays(
                n_avail=np.full(self.queries, m.samples),
                answer=codes[start : start + n].reshape(shape).astype(np.int32),
                correct=c.correct,
                input_tokens=np.full(shape, float(self.input_tokens)),
                output_tokens=tokens,
                cost_usd=np.full(shape, np.nan if m.cost_usd is None else m.cost_usd),
                latency_s=0.01 * tokens,
                logprob=c.logprob,
                score=np.full(shape, np.nan),
                sample_id=start + np.arange(n).reshape(shape),
            )
            start += n
        return BankArrays(
            bank=self.task,
            bank_id=1,
            synthetic=True,
            query_ids=np.arange(self.queries, dtype=np.int64),
            query_keys=[self.query_id(q) for q in range(self.queries)],
            splits=np.array([self.split(q) for q in range(self.queries)], dtype=object),
            models=models,
            model_meta={m.name: m.meta() for m in self.models},
            answer_labels=np.asarray(labels, dtype=object),
            prompts=[self.prompt(q) for q in range(self.queries)],
        )


def write_jsonl(path: Path, rows: Sequence[dict[str, Any]], compact: bool = False) -> Path:
    """Rows as one JSON object a line, gzip-compressed when the name ends in ``.gz``; spaced
    as ``json.dumps`` (and ``bank export``) writes them, or ``compact``."""
    seps = (",", ":") if compact else (", ", ": ")
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wt", encoding="utf-8") as fh:
        fh.writelines(json.dumps(r, separators=seps) + "\n" for r in rows)
    return path


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
