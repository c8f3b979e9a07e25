"""Importers for the field's formats: each reads a file made by the real tool where the tool runs
here (lm-eval: a committed --log_samples folder, re-made by tests/importers/data/lm-eval/make.sh;
inspect_ai: a log written in the test by inspect's own mockllm provider), else a file written
from the format's public code (named in each test), and imports the same bank a flat file gives.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from pathlib import Path

import pandas as pd
import pytest

from tests.fakes import cli as run_cli
from uisbench.errors import UisbenchError
from uisbench.importers import FORMATS, convert, detect_format
from uisbench.store.engine import open_engine

DATA = Path(__file__).parent / "data"
LM_EVAL = DATA / "lm-eval"
#: lm-eval's output is scored by its own task, run with lm-eval and datasets (the live extra).
needs_lm_eval = pytest.mark.skipif(
    not all(importlib.util.find_spec(m) for m in ("lm_eval", "datasets")),
    reason="scoring lm-eval's output runs its task with lm-eval: the 'live' extra",
)


def cli(args: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str, str]:
    return run_cli(capsys, *args)


# ---------------------------------------------------------------------------- lm-eval
def _logged(path: Path) -> dict[str, float]:
    """lm-eval's own per-document metric (its filter keeps the first response: take_first)."""
    (samples,) = path.rglob("samples_sums_*.jsonl")
    return {
        json.loads(ln)["doc_hash"][:16]: json.loads(ln)["exact_match"]
        for ln in samples.read_text().splitlines()
    }


@needs_lm_eval
def test_lm_eval_every_response_is_a_sample_scored_by_the_task_itself():
    conv = convert(LM_EVAL / "out", "auto")
    assert detect_format(LM_EVAL / "out") == "lm-eval"
    by_query: dict[str, list] = {}
    for r in conv.rows:
        by_query.setdefault(r.query_id, []).append(r)
    assert len(by_query) == 40 and {len(v) for v in by_query.values()} == {5}  # repeats: 5
    assert {r.model for r in conv.rows} == {"SmolLM2-135M-Instruct"}
    assert conv.models["SmolLM2-135M-Instruct"]["params_b"] == pytest.approx(0.134515008)
    # Sample 0 is the response lm-eval scored (take_first): same verdict as lm-eval's own.
    logged = _logged(LM_EVAL / "out")
    for qid, rows in by_query.items():
        first = min(rows, key=lambda r: r.sample)
        assert first.correct == bool(logged[qid]), qid
    # The other responses are scored on their own: correct exactly when the regex's first
    # number equals the target (the task's filter and exact_match, recomputed here by hand).
    import re

    for r in conv.rows:
        found = re.search(r"(-?\d+)", r.text or "")
        assert r.answer == (found.group(1) if found else None)
        assert r.correct == (r.answer == r.reference)
    assert len({r.correct for r in conv.rows}) == 2  # both outcomes occur


@needs_lm_eval
def test_lm_eval_import_runs_majority_and_best_of_k_on_the_board(tmp_path, capsys):
    db = str(tmp_path / "r.db")
    rc, out, err = cli(
        ["bank", "import", str(LM_EVAL / "out"), "--name", "sums", "--db", db], capsys
    )
    assert rc == 0, err
    assert "200 new samples" in out
    model = "SmolLM2-135M-Instruct"
    rc, out, err = cli(
        [
            "run",
            "--bank",
            "sums",
            "--strategy",
            f"majority:model={model},k=5",
            "--strategy",
            f"best-of-k:model={model},k=5",
            "--strategy",
            f"single:model={model}",
            "--seed",
            "0",
            "--db",
            db,
        ],
        capsys,
    )
    assert rc == 0, err
    site = tmp_path / "site"
    rc, _, err = cli(["site", "build", "--out", str(site), "--db", db], capsys)
    assert rc == 0, err
    pages = " ".join(p.read_text() for p in site.rglob("*.html"))
    assert "majority:model=SmolLM2-135M-Instruct,k=5" in pages
    assert "best-of-k:model=SmolLM2-135M-Instruct,k=5" in pages


@needs_lm_eval
def test_lm_eval_config_with_python_functions_is_refused(tmp_path):
    out = tmp_path / "out"
    shutil.copytree(LM_EVAL / "out", out)
    (results,) = out.rglob("results_*.json")
    data = json.loads(results.read_text())
    data["configs"]["sums"]["process_results"] = "def process_results(doc, results):\n    1/0\n"
    results.write_text(json.dumps(data))
    with pytest.raises(UisbenchError, match="Python functions"):
        convert(out, "lm-eval")


def test_lm_eval_output_without_the_live_extra_is_one_line_naming_it(monkeypatch, tmp_path, capsys):
    """Re-scoring lm-eval's output runs its task with lm-eval and datasets: without them, the
    command says which extra to install (it raised ModuleNotFoundError: datasets)."""
    monkeypatch.setitem(sys.modules, "datasets", None)  # as if not installed
    monkeypatch.setitem(sys.modules, "lm_eval", None)
    db = tmp_path / "x.db"
    args = ["bank", "import", str(LM_EVAL / "out"), "--format", "lm-eval", "--db", str(db)]
    rc, _, err = cli(args, capsys)
    err = err.strip()
    assert rc == 2 and "\n" not in err
    assert "'live' extra (lm_eval, datasets not installed)" in err
    assert "bash scripts/setup.sh --full" in err


# ---------------------------------------------------------------------------- inspect_ai
def _inspect_log(tmp_path: Path) -> Path:
    """A real inspect_ai log: 4 samples × 3 epochs by inspect's mockllm provider, scored by
    ``match``; sample i in epoch e answers right when (i + e) is even."""
    inspect_ai = pytest.importorskip("inspect_ai")
    from inspect_ai.dataset import Sample
    from inspect_ai.model import ModelOutput, ModelUsage, get_model
    from inspect_ai.scorer import match
    from inspect_ai.solver import generate

    samples = [Sample(id=f"q{i}", input=f"What is {i} + {i}?", target=str(2 * i)) for i in range(4)]
    outs = []
    for e in range(3):
        for i in range(4):
            o = ModelOutput.from_content("mockllm/model", str(2 * i if (i + e) % 2 == 0 else 99))
            o.usage = ModelUsage(input_tokens=7 + i, output_tokens=2, total_tokens=9 + i)
            outs.append(o)
    task = inspect_ai.Task(dataset=samples, solver=generate(), scorer=match())
    logs = inspect_ai.eval(
        task,
        model=get_model("mockllm/model", custom_outputs=outs),
        epochs=3,
        log_dir=str(tmp_path / "logs"),
        display="none",
        max_samples=1,  # one sample at a time: the custom outputs are served in order
    )
    assert logs[0].status == "success"
    return Path(logs[0].location)


def test_inspect_log_epochs_become_samples(tmp_path):
    log = _inspect_log(tmp_path)
    assert detect_format(log) == "inspect"
    conv = convert(log, "auto")
    assert len(conv.rows) == 12
    assert {r.sample for r in conv.rows} == {0, 1, 2}
    for r in conv.rows:
        assert r.correct == (r.answer == r.reference)  # match() on the completion
        assert r.output_tokens == 2 and r.input_tokens is not None
    assert sum(r.correct for r in conv.rows) == 6


# ---------------------------------------------------------------------------- RouterBench
def _routerbench(path: Path) -> Path:
    """The wide table of withmartian/routerbench (README, "Dataset": routerbench_0shot.pkl with
    columns sample_id, prompt, eval_name, and per model MODEL, MODEL|model_response,
    MODEL|total_cost)."""
    df = pd.DataFrame(
        {
            "sample_id": ["mmlu.1", "mmlu.2", "gsm8k.1"],
            "prompt": ["Q1", "Q2", "Q3"],
            "eval_name": ["mmlu", "mmlu", "gsm8k"],
            "gpt-4-1106-preview": [1.0, 1.0, 0.0],
            "gpt-4-1106-preview|model_response": ["A", "B", "7"],
            "gpt-4-1106-preview|total_cost": [0.003, 0.004, 0.01],
            "mistralai/mistral-7b-chat": [0.0, 1.0, 0.0],
            "mistralai/mistral-7b-chat|model_response": ["C", "B", "8"],
            "mistralai/mistral-7b-chat|total_cost": [0.0001, 0.0001, 0.0002],
            "oracle_model_to_route_to": ["mistralai/mistral-7b-chat"] * 3,
        }
    )
    if path.suffix == ".parquet":
        df.to_parquet(path)
    else:
        df.to_pickle(path)
    return path


def test_routerbench_parquet(tmp_path):
    path = _routerbench(tmp_path / "routerbench_0shot.parquet")
    assert detect_format(path) == "routerbench"
    conv = convert(path, "auto")
    assert len(conv.rows) == 6
    row = next(r for r in conv.rows if r.model == "gpt-4-1106-preview" and r.query_id == "mmlu.2")
    assert (row.task, row.correct, row.cost_usd, row.text) == ("mmlu", True, 0.004, "B")
    assert row.score is None  # the verdict is never handed to strategies as a score


def test_routerbench_pickle_only_when_trusted(tmp_path):
    path = _routerbench(tmp_path / "routerbench_0shot.pkl")
    with pytest.raises(UisbenchError, match="pickle"):
        convert(path, "routerbench")
    assert len(convert(path, "routerbench", trust_pickle=True).rows) == 6


# ---------------------------------------------------------------------------- OpenRouterBench
def _orb_file(root: Path, model: str, stamp: str, score: float, demo: bool = False) -> None:
    """A record file as ynulihao/OpenRouterBench's baselines/data_loader.py reads them."""
    folder = root / "results" / "bench" / "aime" / "test" / model
    folder.mkdir(parents=True, exist_ok=True)
    data = {
        "dataset_name": "aime",
        "split": "test",
        "model_name": model,
        "demo": demo,
        "records": [
            {
                "index": i,
                "origin_query": f"q{i}",
                "prompt": f"Solve {i}",
                "prediction": str(i),
                "raw_output": f"... {i}",
                "ground_truth": str(i),
                "score": score if i % 2 else 1.0,
                "prompt_tokens": 10 + i,
                "completion_tokens": 100,
                "cost": 0.001,
            }
            for i in range(4)
        ],
    }
    (folder / f"{model}-aime-test-{stamp}.json").write_text(json.dumps(data))


def test_openrouterbench_newest_file_per_model_and_no_demo(tmp_path):
    _orb_file(tmp_path, "qwen3-8b", "20250101_000000", 0.0)
    _orb_file(tmp_path, "qwen3-8b", "20250301_000000", 1.0)  # newest: every record right
    _orb_file(tmp_path, "gpt-5", "20250101_000000", 0.0)
    _orb_file(tmp_path, "demo-model", "20250101_000000", 1.0, demo=True)
    assert detect_format(tmp_path / "results") == "openrouterbench"
    conv = convert(tmp_path / "results", "auto")
    assert {r.model for r in conv.rows} == {"qwen3-8b", "gpt-5"}
    assert all(r.correct for r in conv.rows if r.model == "qwen3-8b")
    assert sum(r.correct for r in conv.rows if r.model == "gpt-5") == 2
    r = conv.rows[0]
    assert (r.input_tokens, r.output_tokens, r.cost_usd) == (10 + int(r.query_id), 100, 0.001)


# ---------------------------------------------------------------------------- matrix
def test_correctness_matrix_imports_outcomes_and_names_the_missing_cost_unit(tmp_path, capsys):
    path = tmp_path / "matrix.csv"
    pd.DataFrame(
        {
            "prompt_id": [f"p{i}" for i in range(40)],
            "prompt": [f"question {i}" for i in range(40)],
            "llama-7b": [i % 3 == 0 for i in range(40)],
            "llama-70b": [int(i % 3 != 1) for i in range(40)],
        }
    ).to_csv(path, index=False)
    assert detect_format(path) == "correctness-matrix"
    db = str(tmp_path / "r.db")
    rc, out, err = cli(["bank", "import", str(path), "--db", db], capsys)
    assert rc == 0, err
    assert "80 new samples" in out
    (note,) = [ln for ln in err.splitlines() if ln.startswith("note: no cost unit")]
    assert "llama-70b, llama-7b" in note and "--models" in note
    with open_engine(db).connect() as conn:
        n = conn.exec_driver_sql("SELECT count(*) FROM samples WHERE correct").scalar()
    assert n == 14 + 27
    # With parameter counts the note is gone.
    models = tmp_path / "m.json"
    models.write_text(json.dumps({"llama-7b": {"params_b": 7}, "llama-70b": {"params_b": 70}}))
    rc, out, err = cli(
        ["bank", "import", str(path), "--models", str(models), "--db", str(tmp_path / "b.db")],
        capsys,
    )
    assert rc == 0 and "no cost unit" not in err


def test_convert_writes_the_flat_format_that_imports_to_the_same_bank(tmp_path, capsys):
    path = _routerbench(tmp_path / "routerbench_0shot.parquet")
    flat = tmp_path / "rb.jsonl.gz"
    rc, out, err = cli(["bank", "convert", str(path), "--out", str(flat)], capsys)
    assert rc == 0, err
    assert (tmp_path / "rb.bank.json").is_file()
    a, b = str(tmp_path / "a.db"), str(tmp_path / "b.db")
    assert cli(["bank", "import", str(flat), "--db", a], capsys)[0] == 0
    assert cli(["bank", "import", str(path), "--name", "rb", "--db", b], capsys)[0] == 0
    q = "SELECT answer, correct, cost_usd, text FROM samples ORDER BY query_id, model_id"
    rows = [open_engine(d).connect().exec_driver_sql(q).all() for d in (a, b)]
    assert rows[0] == rows[1] and len(rows[0]) == 6


def test_unrecognised_input_is_one_line(tmp_path, capsys):
    path = tmp_path / "x.csv"
    path.write_text("a,b\n1,2\n")
    rc, _, err = cli(["bank", "import", str(path), "--db", str(tmp_path / "r.db")], capsys)
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "format not recognised" in err
    assert set(FORMATS) == {
        "lm-eval",
        "inspect",
        "routerbench",
        "openrouterbench",
        "correctness-matrix",
    }
