"""Logging for the command line: the one place it is configured (library code only logs).

Records go to the command's stderr console through rich's handler, so that a warning never tears a
progress bar: one unwrapped line each, ``Warning: ...`` (info and debug lines without a prefix).
Python's ``warnings`` take the same path.
"""

from __future__ import annotations

import logging
from typing import Any

from rich.console import Console
from rich.logging import RichHandler
from rich.text import Text

_PREFIX = {logging.WARNING: "Warning: ", logging.ERROR: "Error: ", logging.CRITICAL: "Error: "}


class _LineHandler(RichHandler):
    """A log record as one unwrapped line, ``Warning: message`` (info lines without a prefix)."""

    def __init__(self, console: Console) -> None:
        super().__init__(console=console, show_time=False, show_level=False, show_path=False, markup=False)

    def render_message(self, record: logging.LogRecord, message: str) -> Any:
        if record.name == "py.warnings":  # "file:line: Category: text" and then the source line: keep the first
            message = message.strip().splitlines()[0]
        return Text(_PREFIX.get(record.levelno, "") + message)

    def render(self, *, record: logging.LogRecord, traceback: Any, message_renderable: Any) -> Any:
        return message_renderable


def setup_logging(console: Console, verbose: int) -> None:
    """Send log records to ``console``: warnings and errors always, info with ``verbose`` 1, debug with 2."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, _LineHandler)]:
        root.removeHandler(handler)  # an earlier command in this process (tests invoke many)
    root.addHandler(_LineHandler(console))
    logging.getLogger("vfi_cli").setLevel(logging.DEBUG if verbose > 1 else logging.INFO if verbose else logging.WARNING)
    logging.captureWarnings(False)  # let go of what an earlier command in this process captured ...
    logging.captureWarnings(True)  # ... and route Python's warnings to this handler too
