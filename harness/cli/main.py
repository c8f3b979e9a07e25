"""The ``uisbench`` command group and its entry point.

Every user-facing failure — unknown task, strategy, model or option, a malformed bank, a missing
or foreign database — ends as one line on stderr and exit code 2, with no traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click
from sqlalchemy.exc import SQLAlchemyError

from uisbench.cli.bank import bank
from uisbench.cli.compare import compare, gate, results
from uisbench.cli.decompose import decompose
from uisbench.cli.listing import list_
from uisbench.cli.run import report, run
from uisbench.cli.site import site
from uisbench.errors import UisbenchError
from uisbench.redact import redact

EXIT_USAGE = 2


@click.group(
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 120},
    invoke_without_command=True,
    epilog="Start with `uisbench run` (the default job on the shipped bank), then open "
    "_site/index.html; `uisbench COMMAND --help` for each command.",
)
@click.version_option(package_name="uisbench")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """uisbench: benchmark inference-cost strategies on accuracy vs metered cost."""
    if ctx.invoked_subcommand is None:  # no command: the help, not an error
        click.echo(ctx.get_help())


for command in (bank, decompose, list_, run, report, site, results, compare, gate):
    cli.add_command(command)


class _NoBidi:
    """A text stream that drops bidi controls: a bank or model named with U+202E must not
    reorder what a terminal shows (tables, messages, errors)."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        from uisbench.site.bidi import BIDI_CONTROLS

        self._stream.write(BIDI_CONTROLS.sub("", text))
        return len(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


@contextmanager
def _filtered_output() -> Iterator[None]:
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = _NoBidi(sys.stdout), _NoBidi(sys.stderr)
    try:
        yield
    finally:
        sys.stdout, sys.stderr = saved


def main(argv: list[str] | None = None) -> None:
    """Entry point: turn every expected failure into one line on stderr and exit 2."""
    with _filtered_output():
        _main(argv)


def _main(argv: list[str] | None) -> None:
    from uisbench.store import engine

    engine.created_databases().clear()  # only files this command creates may be discarded
    try:
        code = cli.main(args=argv, prog_name="uisbench", standalone_mode=False)
        if isinstance(code, int) and code:  # a command's own exit status (the gate's 1)
            sys.exit(code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except Exception as exc:
        engine.discard_new_empty_databases()
        code, line = _one_line(exc)
        if code is None:
            raise  # a bug: keep its traceback
        click.echo(redact(line), err=True)  # no credential in what is printed
        sys.exit(code)


def _one_line(exc: BaseException) -> tuple[int | None, str]:
    """Exit code and message of an expected failure; (None, "") for anything else."""
    if isinstance(exc, click.exceptions.Abort):
        return 130, "uisbench: aborted"
    if isinstance(exc, click.UsageError):
        hint = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx else ""
        return EXIT_USAGE, f"uisbench: error: {exc.format_message()}{hint}"
    if isinstance(exc, click.ClickException):
        return EXIT_USAGE, f"uisbench: error: {exc.format_message()}"
    if isinstance(exc, UisbenchError):
        return EXIT_USAGE, f"uisbench: error: {exc}"
    if isinstance(exc, SQLAlchemyError):
        msg = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        return EXIT_USAGE, f"uisbench: error: database: {msg}"
    if isinstance(exc, OSError):  # a file we were told to read or write: not a bug, one line
        where = f": {exc.filename}" if exc.filename else ""
        return EXIT_USAGE, f"uisbench: error: {exc.strerror or exc}{where}"
    return None, ""
