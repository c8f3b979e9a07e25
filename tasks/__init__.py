"""Tasks: lm-evaluation-harness task configs run through lm-eval's own machinery.

A task spec (``specs/*.yaml``) is an lm-eval task config plus a ``uisbench:`` block (description,
optional ``lm_eval_base`` config from the installed lm-eval to start from, id field, generation
defaults). Prompts (``doc_to_text`` + ``fewshot_context``), answer extraction (``filter_list``) and
scoring (``process_results``) are lm-eval's: we build an ``lm_eval.api.task.ConfigurableTask``
and call those methods. lm-eval's generation loop is not used (the backends generate).

Tasks are discovered through the entry-point group ``uisbench.tasks``; each entry point names an
object with ``description: str`` and ``load(**overrides) -> LiveTask`` (see :class:`YamlSpec`).
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, fields
from importlib import resources
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import yaml

from uisbench.errors import UisbenchError
from uisbench.registry import Registry

ENTRY_POINT_GROUP = "uisbench.tasks"
SPECS = Path(__file__).with_name("specs")
_LOCAL_KEYS = ("data_files", "limit")


@runtime_checkable
class LiveTask(Protocol):
    name: str
    description: str
    generation_defaults: dict

    def docs(self, split: str) -> list[dict]: ...
    def query_id(self, doc: dict) -> str: ...
    def prompt(self, doc: dict) -> str: ...
    def chat_messages(self, doc: dict) -> list[dict] | None: ...
    def reference(self, doc: dict) -> str: ...
    def score(self, doc: dict, completions: list[str]) -> list[tuple[str | None, bool]]: ...


@dataclass(frozen=True)
class YamlSpec:
    """A task spec file shipped in this package (the value behind a ``uisbench.tasks`` entry)."""

    filename: str

    @property
    def path(self) -> Path:
        return Path(str(resources.files("uisbench.tasks").joinpath("specs", self.filename)))

    @property
    def head(self) -> dict:
        """The spec's ``uisbench:`` block, read without importing anything it names."""
        with self.path.open(encoding="utf-8") as f:
            return yaml.load(f, Loader=_DescriptionLoader)["uisbench"]

    @property
    def description(self) -> str:
        return self.head["description"]

    @property
    def smoke(self) -> bool:
        """A smoke task checks the harness end to end; it is not a benchmark of record."""
        return bool(self.head.get("smoke", False))

    def load(self, **overrides: Any) -> LmEvalTask:
        return LmEvalTask.from_yaml(self.path, **overrides)


class _DescriptionLoader(yaml.SafeLoader):
    """Reads a spec without resolving ``!function`` tags (listing tasks imports nothing)."""


_DescriptionLoader.add_constructor("!function", lambda loader, node: None)


@runtime_checkable
class TaskSpec(Protocol):
    """What a ``uisbench.tasks`` entry point names: a description and a loader."""

    description: str

    def load(self, **overrides: Any) -> LiveTask: ...


TASKS: Registry[TaskSpec] = Registry(ENTRY_POINT_GROUP, "task", TaskSpec)


def available_tasks() -> dict[str, str]:
    """Registered task names mapped to their one-line descriptions (smoke tasks say so)."""
    notes = {name: _note(spec) for name, spec in TASKS.all().items()}
    return {
        name: ("[smoke task] " if n.smoke else "") + (n.description or "")
        for name, n in notes.items()
    }


@dataclass(frozen=True)
class TaskNote:
    """What reports and the site say beside a task's name."""

    description: str | None = None
    smoke: bool = False


def task_note(name: str) -> TaskNote:
    """Description and smoke flag of a registered task; an empty note for any other name."""
    return _note(TASKS.get(name)) if name in TASKS else TaskNote()


def task_description(name: str) -> str | None:
    """A registered task's description (what the database stores beside its name)."""
    return task_note(name).description


def _note(spec: Any) -> TaskNote:
    return TaskNote(getattr(spec, "description", None), bool(getattr(spec, "smoke", False)))


def pair_data_files(task_args: dict, splits: tuple[str, ...]) -> dict:
    """``data_files=TRAIN,TEST`` with ``--split train,test``: one file per split, in order
    (lm-eval wants a mapping of split to file). One file alone is the test split's."""
    files = task_args.get("data_files")
    if not isinstance(files, (list, tuple)):
        return task_args
    if len(files) != len(splits):
        raise UisbenchError(
            f"--task-arg data_files gives {len(files)} data files for {len(splits)} split(s) "
            f"({','.join(splits)}); give one file per split, in the order of --split"
        )
    return {**task_args, "data_files": dict(zip(splits, map(str, files)))}


def load_task(name: str, **overrides: Any) -> LiveTask:
    """Load a registered task; overrides: ``data_files``, ``limit``, any lm-eval config key, or
    keys passed to a ``custom_dataset`` recipe (e.g. ``levels`` for arith-smoke)."""
    return TASKS.get(name).load(**overrides)


def _lm_eval_yaml(path: Path) -> dict:
    from lm_eval.tasks._yaml_loader import load_yaml  # resolves `include` and `!function`

    return load_yaml(path)


def _config_dict(spec_path: Path, overrides: dict[str, Any]) -> tuple[dict, dict]:
    """Merge lm-eval base config, the spec's keys and the caller's overrides."""
    spec = _lm_eval_yaml(spec_path)
    uis = dict(spec.pop("uisbench", {}))
    config: dict = {}
    if base := uis.get("lm_eval_base"):
        import lm_eval.tasks

        config.update(_lm_eval_yaml(Path(lm_eval.tasks.__file__).parent / base))
    config.update(spec)
    config.pop("tag", None)
    config.pop("group", None)

    from lm_eval.api.task import TaskConfig

    config_keys = {f.name for f in fields(TaskConfig)}
    data_files = overrides.get("data_files")
    if data_files is None and (recipe := uis.get("default_data_files")):
        module, _, fn = recipe.rpartition(".")
        data_files = {config.get("test_split") or "test": getattr(_import(module), fn)()}
    if data_files is not None:
        if isinstance(data_files, (str, Path)):
            data_files = {config.get("test_split") or "test": str(data_files)}
        if not isinstance(data_files, dict):
            raise UisbenchError(
                "data_files must be one file (the test split's) or a mapping of split to file "
                "(on the command line: data_files=TRAIN,TEST with --split train,test)"
            )
        # uisbench's split names → the config's (lm-eval names its own, e.g. validation).
        data_files = dict(data_files)
        if "train" in data_files and not config.get("training_split"):
            config["training_split"] = "train"
        config["dataset_path"] = "json"
        config["dataset_name"] = None
        kwargs = dict(config.get("dataset_kwargs") or {})
        kwargs["data_files"] = {k: str(v) for k, v in data_files.items()}
        config["dataset_kwargs"] = kwargs
    for key, value in overrides.items():
        if key in _LOCAL_KEYS:
            continue
        if key in config_keys:
            config[key] = value
        else:  # arguments of a custom_dataset recipe travel in metadata, as lm-eval passes them
            config["metadata"] = {**(config.get("metadata") or {}), key: value}
    return config, uis


def _import(module: str) -> Any:
    import importlib

    return importlib.import_module(module)


class LmEvalTask:
    """A :class:`LiveTask` backed by an ``lm_eval.api.task.ConfigurableTask``."""

    def __init__(
        self,
        name: str,
        description: str,
        config: dict,
        uis: dict,
        limit: int | None,
        task_class: type | None = None,
    ):
        """``task_class``: a ``ConfigurableTask`` subclass to build instead (the lm-eval
        importer's, whose dataset is the documents lm-eval logged)."""
        from lm_eval.api.task import ConfigurableTask

        self.name = name
        self.description = description
        self._uis = uis
        self._limit = limit
        logging.getLogger("lm_eval").setLevel(logging.ERROR)
        try:
            self._task = (task_class or ConfigurableTask)(config=config)
        except (ConnectionError, OSError) as exc:
            where = config.get("dataset_path")
            raise UisbenchError(
                f"task {name}: cannot load dataset {where!r} ({type(exc).__name__}); "
                "offline, pass data_files=... (see the spec's comment)"
            ) from exc
        self._filter = self._pick_filter(uis.get("score_filter"))
        gen = dict(uis.get("generation") or {})
        until = list((config.get("generation_kwargs") or {}).get("until") or [])
        gen.setdefault("stop", until)
        self.generation_defaults = gen
        self.num_fewshot = int(config.get("num_fewshot") or 0)
        self.use_chat = bool(uis.get("chat", True))

    @classmethod
    def from_yaml(cls, path: Path, **overrides: Any) -> LmEvalTask:
        config, uis = _config_dict(Path(path), overrides)
        name = config.get("task") or Path(path).stem
        return cls(name, uis.get("description", name), config, uis, overrides.get("limit"))

    def _pick_filter(self, name: str | None) -> Any:
        filters = self._task._filters
        if name is None:
            return filters[0]
        for f in filters:
            if f.name == name:
                return f
        raise UisbenchError(f"task {self.name}: no filter named {name!r} in filter_list")

    # -- docs -------------------------------------------------------------------------------
    def docs(self, split: str) -> list[dict]:
        """``test`` = lm-eval's test split (eval docs); ``train`` = its training split."""
        if split == "test":
            docs = list(self._task.eval_docs)
            return docs[: self._limit] if self._limit is not None else docs
        if split == "train":
            if not self._task.has_training_docs():
                return []
            return list(self._task.training_docs())
        raise UisbenchError(f"unknown split {split!r}; use 'train' or 'test'")

    def query_id(self, doc: dict) -> str:
        """The spec's id field when it has one, else a content hash (stable across orderings)."""
        if (field := self._uis.get("id_field")) and field in doc:
            return str(doc[field])
        blob = json.dumps(doc, sort_keys=True, default=str, ensure_ascii=False)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    # -- prompts ----------------------------------------------------------------------------
    def prompt(self, doc: dict) -> str:
        """lm-eval's ``fewshot_context``: description + few-shot examples + ``doc_to_text``."""
        return self._task.fewshot_context(
            doc, num_fewshot=self.num_fewshot, gen_prefix=self._task.doc_to_prefix(doc)
        )

    def chat_messages(self, doc: dict) -> list[dict] | None:
        """The same context as chat turns (few-shot as multi-turn), for models with a chat
        template; ``None`` when the spec says the task is plain completion (``chat: false``)."""
        if not self.use_chat:
            return None
        captured: list[list[dict]] = []

        def capture(messages: list[dict], add_generation_prompt: bool = True) -> str:
            captured.append(messages)
            return ""

        self._task.fewshot_context(
            doc,
            num_fewshot=self.num_fewshot,
            apply_chat_template=True,
            fewshot_as_multiturn=True,
            chat_template=capture,
            gen_prefix=self._task.doc_to_prefix(doc),
        )
        return captured[0] if captured else None

    def reference(self, doc: dict) -> str:
        target = self._task.doc_to_target(doc)
        if isinstance(target, int) and self._task.config.doc_to_choice is not None:
            return str(self._task.doc_to_choice(doc)[target])
        return str(target[0] if isinstance(target, list) else target)

    # -- scoring ----------------------------------------------------------------------------
    def _filtered(self, doc: dict, completions: list[str]) -> list[Any]:
        """Each completion through the spec's lm-eval filter pipeline, as its own instance."""
        from lm_eval.api.instance import Instance

        instances = [
            Instance(request_type="generate_until", doc=doc, arguments=("", {}), idx=0, resps=[c])
            for c in completions
        ]
        if not instances:
            return []
        self._filter.apply(instances)
        out = []
        for inst in instances:
            value = inst.filtered_resps[self._filter.name]
            out.append(value[0] if isinstance(value, list) and value else value)
        return out

    def score(self, doc: dict, completions: list[str]) -> list[tuple[str | None, bool]]:
        """(extracted answer, correct) per completion: lm-eval filters then ``process_results``
        (correct = the first metric is truthy/positive)."""
        results = []
        for value in self._filtered(doc, completions):
            metrics = self._task.process_results(doc, [value])
            first = next(iter(metrics.values()))
            correct = bool(first[0] if isinstance(first, (list, tuple)) else first)
            answer = None if value in (None, "[invalid]") else str(value)
            results.append((answer, correct and answer is not None))
        return results
