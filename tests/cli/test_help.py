"""What a new user meets first (issue 19): `uisbench` alone prints the help and exits 0, the
commands are described in whole sentences, `run --help` has examples, and `list strategies -v`
shows every option with its default and bounds."""

from __future__ import annotations

import re

from tests.fakes import cli


def test_no_arguments_prints_the_help_and_exits_0(capsys) -> None:
    code, out, err = cli(capsys)
    assert code == 0 and not err
    assert out.startswith("Usage: uisbench") and "Commands:" in out


def test_command_descriptions_are_whole_sentences(capsys, monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    _, out, _ = cli(capsys, "--help")
    listed = out.split("Commands:")[1].strip().split("\n\n")[0].splitlines()
    assert len(listed) >= 9
    for line in listed:
        assert re.fullmatch(r" *[a-z]+ +[A-Z].*\.", line), line  # no "..." cut mid-sentence
        assert not line.endswith("..."), line


def test_run_help_has_examples(capsys) -> None:
    _, out, _ = cli(capsys, "run", "--help")
    assert "Examples:" in out and "uisbench run --seed 0" in out
    assert "--task-arg" in out


def test_list_strategies_verbose_shows_options_defaults_and_bounds(capsys) -> None:
    code, out, _ = cli(capsys, "list", "strategies", "-v")
    text = " ".join(out.split())
    assert code == 0
    assert "confidence=0.95 (>= 0.5, <= 0.999999)" in text
    assert "wtp=20.0 (> 0, inf allowed)" in text
    assert "signal=auto (one of auto, logprob, agreement)" in text
