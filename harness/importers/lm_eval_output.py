"""lm-evaluation-harness output folders (``--output_path`` with ``--log_samples``).

lm-eval writes ``results_<stamp>.json`` (the task configs, the model's arguments) and one
``samples_<task>_<stamp>.jsonl`` per task: per document its ``doc``, the request ``arguments``
(the prompt), ``target`` and ``resps`` — every raw response, several when the task has
``repeats``. Each raw response becomes one sample, scored on its own by the task's own filter
pipeline and metric through lm-eval (:class:`uisbench.tasks.LmEvalTask`), not by the aggregated
``filtered_resps`` lm-eval logged (with ``repeats`` those score one answer per document). The
task is rebuilt from the logged config with the logged documents as its dataset, so nothing
is downloaded; a config holding Python functions (``!function`` in the YAML, logged as source
text) is refused, since uisbench does not run code read from a results file. Token counts come
from the model's tokenizer when it loads locally, else stay unknown.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

from uisbench.errors import UisbenchError
from uisbench.importers.base import Converted, Format, as_text, read_json, read_jsonl
from uisbench.store.bankfile import FlatRow
from uisbench.tasks.requirements import require_live_extra

_RESULTS = re.compile(r"^results_(?P<stamp>.+)\.json$")
_CODE = re.compile(r"^\s*(def |lambda\b|<function |async def )")
#: Config keys that lm-eval serialises from Python callables when the YAML used ``!function``.
_CALLABLE_KEYS = (
    "doc_to_text",
    "doc_to_target",
    "doc_to_choice",
    "process_docs",
    "process_results",
    "custom_dataset",
    "doc_to_decontamination_query",
)


def detect(path: Path) -> bool:
    if path.is_file():
        return bool(_RESULTS.match(path.name))
    return path.is_dir() and any(_runs(path))


def _runs(path: Path) -> list[tuple[Path, dict[str, Path]]]:
    """(results file, {task: samples file}) for each lm-eval run under ``path``."""
    results = [path] if path.is_file() else sorted(path.rglob("results_*.json"))
    runs = []
    for res in results:
        m = _RESULTS.match(res.name)
        if not m:
            continue
        stamp = m["stamp"]
        samples = {}
        for f in res.parent.glob(f"samples_*_{glob_escape(stamp)}.jsonl"):
            samples[f.name[len("samples_") : -len(f"_{stamp}.jsonl")]] = f
        if samples:
            runs.append((res, samples))
    return runs


def glob_escape(text: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", text)


def read(
    path: Path, model: str | None = None, score_filter: str | None = None, **_: Any
) -> Converted:
    runs = _runs(path)
    if not runs:
        raise UisbenchError(
            f"{path.name}: no lm-eval results_*.json with samples_*.jsonl beside it "
            "(run lm_eval with --output_path and --log_samples)"
        )
    conv = Converted(rows=[], source="lm-evaluation-harness --log_samples output")
    for results_path, samples in runs:
        results = read_json(results_path)
        name = model or model_name(results)
        tokenizer = _tokenizer(results, conv.notes)
        params = (results.get("config") or {}).get("model_num_parameters")
        conv.models.setdefault(name, {"params_b": params / 1e9 if _positive(params) else None})
        for task, samples_path in sorted(samples.items()):
            config = (results.get("configs") or {}).get(task)
            if config is None:
                raise UisbenchError(f"{results_path.name}: no config for task {task!r}")
            conv.rows += _task_rows(task, config, samples_path, name, tokenizer, score_filter)
    return conv


def _positive(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0


def model_name(results: dict) -> str:
    """The model's name from the run's arguments: a GGUF file's stem, a local folder's name, or
    the hub id (``org/name``) as given."""
    args = (results.get("config") or {}).get("model_args") or {}
    if isinstance(args, str):
        args = dict(kv.split("=", 1) for kv in args.split(",") if "=" in kv)
    if gguf := args.get("gguf_file"):
        return Path(str(gguf)).name.split(".")[0]
    ident = str(args.get("pretrained") or args.get("model") or results.get("model_name") or "")
    if not ident:
        raise UisbenchError("lm-eval results name no model; pass --model NAME")
    if ident.startswith(("/", ".", "~")) or Path(ident).exists():
        return Path(ident).name
    return ident


def _tokenizer(results: dict, notes: list[str]) -> Any:
    """The model's tokenizer when it loads from local files, else None (tokens unknown)."""
    args = (results.get("config") or {}).get("model_args") or {}
    if isinstance(args, str):
        args = dict(kv.split("=", 1) for kv in args.split(",") if "=" in kv)
    ident = args.get("tokenizer") or args.get("pretrained")
    try:
        from transformers import AutoTokenizer

        logging.getLogger("transformers").setLevel(logging.ERROR)
        kwargs = {"gguf_file": args["gguf_file"]} if args.get("gguf_file") else {}
        return AutoTokenizer.from_pretrained(str(ident), local_files_only=True, **kwargs)
    except Exception:  # noqa: BLE001 - any failure means "not available here"
        notes.append(f"tokenizer of {ident!r} not available locally: token counts left unknown")
        return None


def _refuse_code(task: str, config: dict) -> None:
    found = [k for k in _CALLABLE_KEYS if isinstance(config.get(k), str) and _CODE.match(config[k])]
    for flt in config.get("filter_list") or []:
        for fn in flt.get("filter") or []:
            if isinstance(fn.get("function"), str) and _CODE.match(fn["function"]):
                found.append(f"filter {flt.get('name')}")
    if found:
        raise UisbenchError(
            f"lm-eval task {task}: its logged config holds Python functions ({', '.join(found)}); "
            "uisbench does not run code read from a results file — export the samples as a flat "
            "bank scored by the task itself (docs/BANK_FORMAT.md)"
        )


def _scorer(task: str, config: dict, docs: list[dict], score_filter: str | None) -> Any:
    """An :class:`uisbench.tasks.LmEvalTask` over the logged config, its dataset the logged docs."""
    require_live_extra("re-scoring lm-eval's output with its own task")
    import datasets
    from lm_eval.api.task import ConfigurableTask

    from uisbench.tasks import LmEvalTask

    _refuse_code(task, config)
    config = {k: v for k, v in config.items() if k not in ("dataset_kwargs", "custom_dataset")}
    splits = {config.get(k) for k in ("test_split", "validation_split", "training_split")}
    splits |= {config.get("fewshot_split")} | {(config.get("fewshot_config") or {}).get("split")}
    try:
        dataset = datasets.Dataset.from_list(docs)
    except Exception as exc:  # noqa: BLE001 - pyarrow's many type errors
        raise UisbenchError(
            f"lm-eval task {task}: its logged docs do not form a table ({exc})"
        ) from None

    class LoggedDocs(ConfigurableTask):
        def download(self, dataset_kwargs: dict | None = None, **kwargs: Any) -> None:
            self.dataset = datasets.DatasetDict({s: dataset for s in splits if s})

    try:
        return LmEvalTask(task, task, config, {"score_filter": score_filter}, None, LoggedDocs)
    except UisbenchError:
        raise
    except Exception as exc:  # noqa: BLE001 - lm-eval's config errors are of many types
        raise UisbenchError(
            f"lm-eval task {task}: cannot rebuild it from its config ({exc})"
        ) from None


def _prompt(arguments: Any) -> str:
    """The request's context: ``{"gen_args_0": {"arg_0": ctx, ...}}`` (lm-eval ≥ 0.4.5) or
    ``[[ctx, ...], ...]`` (older)."""
    if isinstance(arguments, dict) and arguments:
        first = arguments[sorted(arguments)[0]]
        return as_text(first.get("arg_0") if isinstance(first, dict) else first)
    if isinstance(arguments, list) and arguments:
        first = arguments[0]
        return as_text(first[0] if isinstance(first, list) and first else first)
    return ""


def _task_rows(
    task: str,
    config: dict,
    samples_path: Path,
    model: str,
    tokenizer: Any,
    score_filter: str | None,
) -> list[FlatRow]:
    lines = read_jsonl(samples_path)
    if not lines:
        return []
    scorer = _scorer(task, config, [ln["doc"] for ln in lines], score_filter)
    generate = config.get("output_type", "generate_until") == "generate_until"
    rows: list[FlatRow] = []
    for ln in lines:
        qid = str(ln.get("doc_hash") or ln.get("doc_id"))[:16]
        prompt, doc = _prompt(ln.get("arguments")), ln["doc"]
        target = as_text(ln.get("target"))
        if generate:
            texts = [str(r) for inst in ln.get("resps") or [] for r in inst]
            scored = scorer.score(doc, texts)
        else:
            texts, scored = [None], [_choice_outcome(scorer, doc, ln.get("resps") or [])]
        n_in = _tokens(tokenizer, prompt, True)
        for i, (text, (answer, correct)) in enumerate(zip(texts, scored)):
            rows.append(
                FlatRow(
                    task=task,
                    query_id=qid,
                    split=None,
                    prompt=prompt,
                    reference=target,
                    model=model,
                    sample=i,
                    answer=answer,
                    correct=bool(correct),
                    input_tokens=n_in,
                    output_tokens=_tokens(tokenizer, text, False) if text is not None else None,
                    cost_usd=None,
                    latency_s=None,
                    logprob=None,
                    text=text,
                )
            )
    return rows


def _choice_outcome(scorer: Any, doc: dict, resps: list) -> tuple[str | None, bool]:
    """A log-likelihood task: one outcome per document, the choice with the highest
    log-likelihood and lm-eval's own first metric (``acc``)."""
    lls = [tuple(inst[0]) for inst in resps if inst]
    if not lls:
        return None, False
    task = scorer._task
    metrics = task.process_results(doc, lls)
    first = next(iter(metrics.values()))
    choices = task.doc_to_choice(doc) if task.config.doc_to_choice is not None else None
    best = max(range(len(lls)), key=lambda i: lls[i][0])
    answer = str(choices[best]) if choices and best < len(choices) else str(best)
    return answer, bool(first[0] if isinstance(first, (list, tuple)) else first)


def _tokens(tokenizer: Any, text: str, special: bool) -> int | None:
    if tokenizer is None:
        return None
    return len(tokenizer(text, add_special_tokens=special)["input_ids"])


FORMAT = Format(
    "lm-eval",
    "lm-evaluation-harness --output_path folder written with --log_samples",
    detect,
    read,
)
