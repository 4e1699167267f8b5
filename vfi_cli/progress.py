"""How long-running calls report to their caller: status lines and counted tasks.

The public functions take a ``progress`` argument of the :class:`Progress` shape. The command line
passes its rich progress bar; a notebook may pass its own; None means :data:`SILENT`. Lower rooms
only ever call these methods, so they never print and never know which interface is watching.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from typing import Protocol

Update = Callable[..., None]  # update(done: int, values: Mapping[str, float] | None = None)


class Progress(Protocol):
    """Receives what a long call has to say while it runs."""

    def status(self, line: str) -> None:
        """A line that says what is about to happen or has happened (model, plan, data, result)."""

    def task(self, label: str, total: int | None, done: int = 0, unit: str = "items") -> contextlib.AbstractContextManager[Update]:
        """A counted task of ``total`` ``unit`` (None: unknown), ``done`` of them already done. The
        context yields ``update(done, values=None)``; ``values`` are figures worth showing (losses)."""


class _Silent:
    """Hears everything, says nothing."""

    def status(self, line: str) -> None:
        pass

    @contextlib.contextmanager
    def task(self, label: str, total: int | None, done: int = 0, unit: str = "items") -> Iterator[Update]:
        def update(done: int, values: Mapping[str, float] | None = None) -> None:
            pass

        yield update


SILENT: Progress = _Silent()
