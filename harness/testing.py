"""What a plugin's own tests need: a seeded fake bank and a conformance check.

:class:`FakeBank` describes a small bank (models with sizes, prices and accuracies; queries;
samples per query; splits; token counts) and gives it in the three forms tests need: sample
rows as dicts, a flat JSONL(.gz) file with its ``NAME.models.json`` (what ``bank import`` and the
CLI read), and the in-memory :class:`~uisbench.store.arrays.BankArrays` a strategy or the meter
replays without a database. All three come from the same seeded draw, so they agree cell for
cell.

:func:`check_strategy` runs a strategy class the way ``uisbench run`` runs a third-party plugin
(in its own process, behind the meter) on a fake bank and checks the contract: it builds with its
defaults and every default-sweep setting within their declared bounds and choices, its labels are
stable and tell settings apart, the same seed gives the same decisions, and it reads no test
correctness unless it declares itself an upper bound. ``docs/PLUGINS.md`` shows its use.
"""

from __future__ import annotations

import gzip
import inspect
import json
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from uisbench.store.arrays import BankArrays, ModelArrays

__all__ = [
    "CHECK_BANK",
    "ConformanceError",
    "FakeBank",
    "FakeModel",
    "StrategyCheck",
    "check_strategy",
    "write_jsonl",
]


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


# ----- the conformance check ----------------------------------------------------------------

FAMILIES = ("reference", "routing", "tts", "uniscale", "t2", "decomposed")


def _check_models() -> tuple[FakeModel, ...]:
    """Three priced models of growing size and accuracy, 8 samples each."""
    return tuple(
        FakeModel(n, acc, samples=8, params_b=p, price_in_per_mtok=p / 10, price_out_per_mtok=p / 5)
        for n, acc, p in (("small", 0.3, 1.0), ("mid", 0.55, 8.0), ("big", 0.8, 70.0))
    )


#: The bank :func:`check_strategy` runs on unless given one: 3 models, 80 queries, 40 to train.
CHECK_BANK = FakeBank(models=_check_models(), queries=80, train=40, task="check", seed=7)


@dataclass
class StrategyCheck:
    """What :func:`check_strategy` ran: each setting's label and accuracy on the fake bank."""

    strategy: str
    reference: str
    accuracy: dict[str, float]


class ConformanceError(AssertionError):
    """A strategy class that breaks the plugin contract (every problem, one a line)."""


def reference_of(cls: type) -> str:
    """``module:Class`` (or ``FILE.py:Class`` for a script) naming ``cls`` for its own process."""
    qual = cls.__qualname__
    if "<locals>" in qual or "." in qual:
        raise ConformanceError(
            f"{qual}: define the strategy at a module's top level (its own process imports it)"
        )
    if cls.__module__ == "__main__":
        return f"{inspect.getfile(cls)}:{qual}"
    return f"{cls.__module__}:{qual}"


def check_strategy(
    cls: type,
    *,
    bank: FakeBank | None = None,
    settings: Sequence[dict[str, Any]] | None = None,
    max_settings: int = 3,
    seed: int = 0,
) -> StrategyCheck:
    """Check that ``cls`` keeps the strategy contract; raises :class:`ConformanceError` listing
    every problem found.

    1. It declares ``name``, ``family`` and ``description``, and builds with its defaults and
       with each setting (``settings``, else its default ``sweep`` on ``bank``) within the
       bounds and choices its ``Params`` declare (``bounded()``, ``choice()``).
    2. Its labels are stable (the same setting gives the same label, before and after a run)
       and tell its settings apart.
    3. It runs isolated, as ``uisbench run`` runs every third-party plugin: in its own process,
       drawing through the meter, named by reference (``module:Class``), so it need not be
       installed; it decides every test query.
    4. The same seed gives the same decisions (sample drawn, answer, cost), query by query.
    5. It reads no test correctness: a run that asked the meter's ``oracle`` or ``peek`` (the
       only way to the truth from its process) must come from a class declaring
       ``upper_bound = True``.

    ``bank`` (default :data:`CHECK_BANK`: three priced models, a train split) and at most
    ``max_settings`` settings keep it to seconds.
    """
    from uisbench.errors import UisbenchError
    from uisbench.strategies.base import Strategy

    problems: list[str] = []
    if not (isinstance(cls, type) and issubclass(cls, Strategy)):
        raise ConformanceError(f"{cls!r} is not a subclass of uisbench.strategies.Strategy")
    for attr in ("name", "family", "description"):
        if not isinstance(getattr(cls, attr, None), str) or not getattr(cls, attr):
            problems.append(f"declares no {attr} (a non-empty class attribute)")
    if getattr(cls, "family", None) not in FAMILIES:
        problems.append(f"family {getattr(cls, 'family', None)!r} is not one of {FAMILIES}")
    if problems:
        raise ConformanceError("\n".join(f"{cls.__qualname__}: {p}" for p in problems))
    bank = bank or CHECK_BANK
    models = [m.name for m in bank.models]
    if settings is None:
        try:
            settings = cls.sweep(models, {m.name: m.samples for m in bank.models}) or [{}]
        except Exception as exc:
            raise ConformanceError(f"{cls.name}: sweep() failed: {exc}") from None
    settings = list(settings)[:max_settings] or [{}]
    labels: dict[str, dict[str, Any]] = {}
    for cfg in [{}, *settings]:
        try:
            a, b = cls(**cfg).label(), cls(**cfg).label()
        except UisbenchError as exc:
            problems.append(f"setting {cfg}: refused: {exc}")
            continue
        if a != b:
            problems.append(f"setting {cfg}: two labels for one setting ({a!r}, {b!r})")
        if cfg in settings:
            if a in labels and labels[a] != cfg:
                problems.append(f"settings {labels[a]} and {cfg} share the label {a!r}")
            labels[a] = cfg
    if problems:
        raise ConformanceError("\n".join(f"{cls.name}: {p}" for p in problems))
    ref = reference_of(cls)
    accuracy = _run_isolated(cls, ref, bank, settings, seed, problems)
    if problems:
        raise ConformanceError("\n".join(f"{cls.name}: {p}" for p in problems))
    return StrategyCheck(cls.name, ref, accuracy)


def _run_isolated(
    cls: type, ref: str, bank: FakeBank, settings: list, seed: int, problems: list[str]
) -> dict[str, float]:
    """Run each setting twice with ``seed`` in the strategy's own process; record problems."""
    from uisbench.errors import UisbenchError
    from uisbench.runner import Runner
    from uisbench.store.bank import import_file
    from uisbench.store.engine import open_engine
    from uisbench.store.runs import decision_rows, run_summary

    columns = ("query_id", "answer", "correct", "samples_used", "arms", "dollars", "flops")
    accuracy: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="uisbench-check-") as tmp:
        folder = Path(tmp)
        engine = open_engine(str(folder / "check.db"))
        import_file(engine, bank.write(folder), folder / f"{bank.task}.models.json")
        runner = Runner(engine, bank.task, bank.task, isolation="process")
        try:
            for cfg in settings:
                expected = cls(**cfg).label()
                rows = []
                for attempt in range(2):  # the second replaces the first (force)
                    try:
                        res = runner.run((ref, cfg), seed, force=attempt > 0)
                    except UisbenchError as exc:
                        problems.append(f"setting {cfg}: the isolated run failed: {exc}")
                        return accuracy
                    rows.append(decision_rows(engine, res.run_id, columns))
                    summary = run_summary(engine, res.run_id)
                    if res.label != expected:
                        problems.append(f"label {expected!r} became {res.label!r} in its run")
                if rows[0] != rows[1]:
                    problems.append(f"setting {cfg}: seed {seed} gave other decisions on a rerun")
                if summary.get("upper_bound") and not cls.upper_bound:
                    problems.append(
                        f"setting {cfg}: read test correctness (meter.oracle or peek) without "
                        "declaring upper_bound = True"
                    )
                accuracy[res.label] = res.accuracy
        finally:
            runner.close()
            engine.dispose()
    return accuracy
