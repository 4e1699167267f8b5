"""Everything the command line writes to stderr goes through one console: status lines, the one
progress component, and log records (:mod:`.logs`). Warnings (also Python's ``warnings``) appear
once, as ``Warning: ...``; ``-v`` adds the info lines, ``-vv`` the debug lines. rich is imported
when a command runs, not when the command line is loaded.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

class Output:
    """The :class:`vfi_cli.progress.Progress` of the command line, and its log handler.

    ``quiet`` hides the status lines and progress bars (warnings and errors still show).
    """

    def __init__(self, verbose: int = 0, quiet: bool = False) -> None:
        from rich.console import Console

        from vfi_cli.cli.logs import setup_logging

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
