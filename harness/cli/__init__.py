"""The ``uisbench`` command line: one module per command group, ``main`` is the entry point."""

from uisbench.cli.main import cli, main

__all__ = ["cli", "main"]
