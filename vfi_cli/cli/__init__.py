"""The ``vfi`` command: Click only.

Each command parses its options into the dataclasses of :mod:`vfi_cli.config`, calls one function
of :mod:`vfi_cli.api` through :func:`.options.call` (one-line errors, exit statuses), and prints
what it returns. Status lines, progress bars and log records share one stderr console
(:mod:`.output`); tables and plain results go to stdout. Nothing in the package imports this one.
"""

from vfi_cli.cli.main import main

__all__ = ["main"]
