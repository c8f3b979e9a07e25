"""The ``uisbench`` command group and its entry point.

Every user-facing failure — unknown task, strategy, model or option, a malformed bank, a missing
or foreign database — ends as one line on stderr and exit code 2, with no traceback.
"""

from __future__ import annotations

import sys

import click
from sqlalchemy.exc import SQLAlchemyError

from uisbench.cli.bank import bank
from uisbench.cli.compare import compare, gate, results
from uisbench.cli.decompose import decompose
from uisbench.cli.listing import list_
from uisbench.cli.run import report, run
from uisbench.cli.site import site
from uisbench.errors import UisbenchError

EXIT_USAGE = 2


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="uisbench")
def cli() -> None:
    """uisbench: benchmark inference-cost strategies on accuracy vs metered cost."""


for command in (bank, decompose, list_, run, report, site, results, compare, gate):
    cli.add_command(command)


def main(argv: list[str] | None = None) -> None:
    """Entry point: turn every expected failure into one line on stderr and exit 2."""
    try:
        code = cli.main(args=argv, prog_name="uisbench", standalone_mode=False)
        if isinstance(code, int) and code:  # a command's own exit status (the gate's 1)
            sys.exit(code)
    except click.exceptions.Abort:
        click.echo("uisbench: aborted", err=True)
        sys.exit(130)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.UsageError as exc:
        hint = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx else ""
        click.echo(f"uisbench: error: {exc.format_message()}{hint}", err=True)
        sys.exit(EXIT_USAGE)
    except click.ClickException as exc:
        click.echo(f"uisbench: error: {exc.format_message()}", err=True)
        sys.exit(EXIT_USAGE)
    except UisbenchError as exc:
        click.echo(f"uisbench: error: {exc}", err=True)
        sys.exit(EXIT_USAGE)
    except SQLAlchemyError as exc:
        msg = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        click.echo(f"uisbench: error: database: {msg}", err=True)
        sys.exit(EXIT_USAGE)
    except OSError as exc:  # a file we were told to read or write: not a bug, one line
        where = f": {exc.filename}" if exc.filename else ""
        click.echo(f"uisbench: error: {exc.strerror or exc}{where}", err=True)
        sys.exit(EXIT_USAGE)
