"""The example CI workflows in docs/workflows: valid YAML, and every ``uisbench ...`` command
they run exists in the CLI with options it accepts (parsed by click itself)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest
import yaml

from uisbench.cli.main import cli

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted((ROOT / "docs" / "workflows").glob("*.yml"))
SEPARATORS = {";", "&&", "||", "|", "&"}
#: What each example workflow runs on, as its header comment says.
TRIGGERS = {
    "uisbench-gate.yml": {"pull_request"},
    "uisbench-site.yml": {"push", "workflow_dispatch"},
    "uisbench-gate-comment.yml": {"workflow_run"},
    "uisbench-submission.yml": {"pull_request", "push"},
}


def run_scripts(workflow: dict) -> list[str]:
    return [
        step["run"]
        for job in workflow["jobs"].values()
        for step in job.get("steps", [])
        if "run" in step
    ]


def uisbench_commands(script: str) -> list[list[str]]:
    """Argument lists after each ``uisbench`` word of a shell script (``${{ }}`` expressions
    stand in as one word; line continuations joined; ; && || | end a command)."""
    script = re.sub(r"\$\{\{[^}]*\}\}", "EXPR", script).replace("\\\n", " ")
    lexer = shlex.shlex(script.replace("\n", " ; "), posix=True, punctuation_chars=";&|")
    lexer.whitespace_split = True
    commands, current = [], None
    for token in lexer:
        if token in SEPARATORS or token == "do" or token == "done":
            current = None
        elif current is not None:
            current.append(token)
        elif token == "uisbench":
            current = []
            commands.append(current)
    return commands


def resolve(args: list[str]) -> tuple[click.Command, list[str], str]:
    """Walk click's command tree: the command the words name, and its remaining arguments."""
    command: click.Command = cli
    path = "uisbench"
    while isinstance(command, click.Group) and args and not args[0].startswith("-"):
        name, args = args[0], args[1:]
        sub = command.get_command(click.Context(command), name)
        assert sub is not None, f"`{path} {name}` is not a uisbench command"
        command, path = sub, f"{path} {name}"
    return command, args, path


def test_the_example_workflows() -> None:
    names = {p.name for p in WORKFLOWS}
    assert names == {
        "uisbench-gate.yml",
        "uisbench-gate-comment.yml",
        "uisbench-site.yml",
        "uisbench-submission.yml",
    }


def _load(name: str) -> dict:
    workflow = yaml.safe_load((ROOT / "docs" / "workflows" / name).read_text())
    workflow["on"] = workflow.pop(True, workflow.get("on"))  # YAML 1.1 reads `on` as True
    return workflow


def _permissions(workflow: dict) -> dict:
    perms = dict(workflow.get("permissions") or {})
    for job in workflow["jobs"].values():
        perms.update(job.get("permissions") or {})
    return perms


def test_gate_workflow_is_fork_safe() -> None:
    """The job that runs the pull request's code holds no write permission and posts nothing
    (a fork's token is read-only): it uploads the comparison with the pull request's number."""
    gate = _load("uisbench-gate.yml")
    assert set(gate["on"]) == {"pull_request"}
    assert "write" not in _permissions(gate).values()
    scripts = "\n".join(run_scripts(gate))
    assert "gh pr comment" not in scripts and "gh api" not in scripts
    uploads = [
        step
        for job in gate["jobs"].values()
        for step in job["steps"]
        if str(step.get("uses", "")).startswith("actions/upload-artifact")
    ]
    assert uploads and all(step.get("if") == "always()" for step in uploads)
    assert {"gate.md", "pr-number.txt"} <= set(uploads[0]["with"]["path"].split())


def test_gate_comment_is_one_sticky_comment_posted_outside_the_fork() -> None:
    """The comment workflow runs on the gate's completion in the base repository, checks out
    nothing, and edits the comment its marker finds instead of adding one per push."""
    gate, comment = _load("uisbench-gate.yml"), _load("uisbench-gate-comment.yml")
    trigger = comment["on"]["workflow_run"]
    assert trigger["workflows"] == [gate["name"]] and trigger["types"] == ["completed"]
    assert _permissions(comment)["pull-requests"] == "write"
    steps = [step for job in comment["jobs"].values() for step in job["steps"]]
    assert not any(str(s.get("uses", "")).startswith("actions/checkout") for s in steps)
    script = "\n".join(run_scripts(comment))
    assert "gh pr comment" not in script  # would add a comment on every push
    marker = re.search(r"marker='([^']+)'", script).group(1)
    assert 'startswith(\\"$marker\\")' in script
    assert "--method PATCH" in script and "--method POST" in script
    assert script.index("PATCH") < script.index("POST")  # edit when found, else create
    assert marker.startswith("<!--")  # invisible in the rendered comment


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_commands_exist(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # paths in the workflows are relative to the repository
    workflow = yaml.safe_load(path.read_text())
    assert workflow["jobs"]
    triggers = workflow.get(True, workflow.get("on"))  # YAML 1.1 reads the key `on` as True
    assert set(triggers or ()) == TRIGGERS[path.name], triggers
    commands = [c for s in run_scripts(workflow) for c in uisbench_commands(s)]
    assert commands or "comment" in path.name, f"{path.name} runs no uisbench command"
    for args in commands:
        command, rest, where = resolve(args)
        assert not isinstance(command, click.Group), f"`{where}` needs a subcommand"
        # click parses and validates the options exactly as the CLI would (types, choices,
        # required options, files that must exist); an unknown option raises.
        command.make_context(where, list(rest))


def test_the_checker_catches_a_wrong_command() -> None:
    with pytest.raises(AssertionError, match="not a uisbench command"):
        resolve(["sitee", "build"])
    command, rest, where = resolve(["site", "build", "--no-such-option"])
    with pytest.raises(click.NoSuchOption):
        command.make_context(where, rest)
    (args,) = uisbench_commands('for f in a; do uisbench run --bank "$f" --seed 0; done')
    assert args == ["run", "--bank", "$f", "--seed", "0"]
