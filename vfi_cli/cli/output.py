"""Everything the command line writes to stderr goes through one console: status lines, the one
progress component, and log records (:mod:`.logs`). Warnings (also Python's ``warnings``) appear
once, as ``Warning: ...``; ``-v`` adds the info lines, ``-vv`` the debug lines. rich is imported
when a command runs, not when the command line is loaded.

On a terminal a task is a rich progress bar; when stderr is not a terminal (a log file, a job
scheduler, ``nohup``) it is a plain line every :data:`PROGRESS_INTERVAL` seconds (done/total, rate,
elapsed, ETA) and one at its end, so that an unattended run's log shows how far it got.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import click

PROGRESS_INTERVAL = 10.0  # seconds between progress lines when stderr is not a terminal
INTERVAL_VARIABLE = "VFI_PROGRESS_INTERVAL"  # the environment variable that sets another interval (seconds)

STDOUT = Path("-")


def json_target(ctx: click.Context, param: click.Parameter, value: Path | None) -> Path | None:
    """``--json PATH``, where ``-`` means stdout (kept as :data:`STDOUT`, never a file named '-')."""
    return STDOUT if value is not None and str(value) == "-" else value


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
        """A bar: label, bar, done/total, rate, elapsed, ETA, and the latest values (losses); plain lines off a terminal."""
        if self.quiet:  # no bar at all: a disabled rich Progress still ends with a blank line (rich 13 and 14)
            yield lambda done, values=None: None
            return
        if not self.console.is_terminal:
            with self._lines(label, total, done, unit) as update:
                yield update
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        bar = Progress(
            TextColumn(label), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[rate]}"), TimeElapsedColumn(),
            TextColumn("ETA"), TimeRemainingColumn(), TextColumn("{task.fields[values]}"),
            console=self.console,
        )
        task = bar.add_task(label, total=total or None, completed=done, rate="", values="")

        def update(done: int, values: Mapping[str, float] | None = None) -> None:
            speed = bar.tasks[0].speed
            shown = " ".join(f"{k[:5]} {v:.3g}" for k, v in (values or {}).items() if k != "lr")
            bar.update(task, completed=done, rate=f"{speed:.2f} {unit}/s" if speed else "", values=shown)

        with bar:
            yield update

    @contextlib.contextmanager
    def _lines(self, label: str, total: int | None, done: int, unit: str) -> Iterator[Any]:
        """The task as a plain line every interval (checked as the count moves) and one when it ends."""
        interval = float(os.environ.get(INTERVAL_VARIABLE, PROGRESS_INTERVAL))
        started = time.monotonic()
        state: dict[str, Any] = {"done": done, "printed": started, "values": ""}

        def line() -> None:
            elapsed = time.monotonic() - started
            count = state["done"]
            speed = (count - done) / elapsed if elapsed > 0 else 0.0
            eta = f", ETA {_clock((total - count) / speed)}" if total and speed > 0 and count < total else ""
            self.console.print(f"{label}: {count}/{total or '?'} {unit}, {speed:.2f} {unit}/s, {_clock(elapsed)} elapsed{eta}"
                               + (f", {state['values']}" if state["values"] else ""))

        def update(count: int, values: Mapping[str, float] | None = None) -> None:
            state["done"] = count
            state["values"] = " ".join(f"{k} {v:.4g}" for k, v in (values or {}).items())
            if time.monotonic() - state["printed"] >= interval:
                state["printed"] = time.monotonic()
                line()

        yield update
        line()


def _clock(seconds: float) -> str:
    """'0:42', '12:05', '1:02:03'."""
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
