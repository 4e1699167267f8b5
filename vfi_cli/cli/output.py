"""Everything the command line writes to stderr goes through one console: status lines, the one
progress component, and log records (rich's handler, so that a warning never tears a progress bar).

Library code only logs (``logging.getLogger(__name__)``); :func:`setup_logging` is the one place
where logging is configured. Warnings (also Python's ``warnings``) appear once, as
``Warning: ...``; ``-v`` adds the info lines, ``-vv`` the debug lines.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping
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


class Output:
    """The :class:`vfi_cli.progress.Progress` of the command line, and its log handler.

    ``quiet`` hides the status lines and progress bars (warnings and errors still show).
    """

    def __init__(self, verbose: int = 0, quiet: bool = False) -> None:
        self.console = Console(stderr=True, soft_wrap=True)
        self.quiet = quiet
        setup_logging(self.console, verbose)

    def status(self, line: str) -> None:
        if not self.quiet:
            self.console.print(line)

    @contextlib.contextmanager
    def task(self, label: str, total: int | None, done: int = 0, unit: str = "items") -> Iterator[Any]:
        """A bar: label, bar, done/total, rate, elapsed, ETA, and the latest values (losses)."""
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        bar = Progress(
            TextColumn(label), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[rate]}"), TimeElapsedColumn(),
            TextColumn("ETA"), TimeRemainingColumn(), TextColumn("{task.fields[values]}"),
            console=self.console, disable=self.quiet,
        )
        task = bar.add_task(label, total=total or None, completed=done, rate="", values="")

        def update(done: int, values: Mapping[str, float] | None = None) -> None:
            speed = bar.tasks[0].speed
            shown = " ".join(f"{k[:5]} {v:.3g}" for k, v in (values or {}).items() if k != "lr")
            bar.update(task, completed=done, rate=f"{speed:.2f} {unit}/s" if speed else "", values=shown)

        with bar:
            yield update
