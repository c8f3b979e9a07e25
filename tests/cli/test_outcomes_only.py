"""A bank that recorded outcomes only (correct flags; no answers, tokens or costs) runs with the
default sweep: the cost unit falls back to parameter-weighted calls, with a note, and the
strategies that need answers are skipped with one line each."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from uisbench.cli import main
from uisbench.store.engine import open_engine
from uisbench.strategies.base import STRATEGIES

MODELS = (("small", 1.0), ("big", 8.0))  # name, params in billions


def outcomes_bank(path: Path, n_queries: int = 40) -> Path:
    """Two models, one sample each; the big model is right more often."""
    lines = []
    for q in range(n_queries):
        for mi, (model, _) in enumerate(MODELS):
            lines.append(
                json.dumps(
                    {
                        "task": "toy",
                        "query_id": f"q{q:03d}",
                        "split": "train" if q < 20 else "test",
                        "prompt": f"question {q}",
                        "reference": None,
                        "model": model,
                        "sample": 0,
                        "answer": None,
                        "correct": (q * 3 + mi * 4) % 7 < 3 + 2 * mi,
                        "input_tokens": None,
                        "output_tokens": None,
                        "cost_usd": None,
                        "latency_s": None,
                        "logprob": None,
                    }
                )
            )
    path.write_text("\n".join(lines) + "\n")
    path.with_name("outcomes.models.json").write_text(
        json.dumps({m: {"family": "toy", "params_b": p, "train_tokens_t": 1.0} for m, p in MODELS})
    )
    return path


def test_outcomes_only_bank_runs_the_default_sweep_in_parameter_calls(tmp_path, capsys):
    bank = outcomes_bank(tmp_path / "outcomes.jsonl")
    db = str(tmp_path / "r.db")
    with pytest.raises(SystemExit) as exc:
        main(["run", "--bank", str(bank), "--db", db])
        raise SystemExit(0)
    out = capsys.readouterr()
    assert exc.value.code in (0, None), out.err
    skipped = [line for line in out.err.splitlines() if line.startswith("skipped: ")]
    # the built-ins (a plugin installed beside them, e.g. examples/strategy-plugin, may vote too)
    names = sorted(
        n
        for n in (line.split()[1] for line in skipped)
        if n in STRATEGIES and STRATEGIES.distribution(n) == "uisbench"
    )
    assert names == [
        "adaptive",
        "best-of-k",
        "cascade",
        "frugal-cascade",
        "majority",
        "t2",
        "uniscale",
    ]
    assert all("recorded outcomes only" in line for line in skipped)
    assert "parameter-weighted calls" in " ".join(out.out.split())
    with open_engine(db).connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT r.config_label, d.param_calls, d.flops, d.input_tokens, d.dollars "
            "FROM decisions d JOIN runs r ON r.id = d.run_id"
        ).all()
    by_label = {}
    for label, calls, flops, tokens, dollars in rows:
        assert flops is None and tokens is None and dollars is None
        by_label.setdefault(label, set()).add(calls)
    assert by_label["single:model=small"] == {1e9}
    assert by_label["single:model=big"] == {8e9}
    assert any(label.startswith("lr-router") for label in by_label)


def test_a_strategy_that_needs_answers_asked_for_by_name_is_refused(tmp_path, capsys):
    bank = outcomes_bank(tmp_path / "outcomes.jsonl")
    with pytest.raises(SystemExit) as exc:
        main(
            [
                "run",
                "--bank",
                str(bank),
                "--db",
                str(tmp_path / "r.db"),
                "--strategy",
                "majority:model=big,k=1",
            ]
        )
    err = capsys.readouterr().err.strip().splitlines()
    assert exc.value.code == 2
    assert len(err) == 1 and "majority needs the samples' answers" in err[0]
