"""Termination signals handled like Ctrl-C, for the command line only (never installed on import).

SIGTERM (``timeout``, ``kill``, job schedulers), SIGHUP (a closed terminal) and SIGQUIT (Ctrl-\\)
raise :class:`~vfi_cli.errors.Interrupted`, a :class:`KeyboardInterrupt`, in the main thread:
everything that cleans up after Ctrl-C (the temporary output removed, the training checkpoint
written) runs for them too. The process then exits with 128 + the signal's number, as a shell
reports a process killed by it: 130 for Ctrl-C, 143 for SIGTERM, 129 for SIGHUP, 131 for SIGQUIT.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from types import FrameType

from vfi_cli.errors import Interrupted

HANDLED = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT") if hasattr(signal, name))

_pending: list[int] = []
_deferring = False


def _handler(signum: int, frame: FrameType | None) -> None:
    if _deferring:
        _pending.append(signum)
        return
    raise Interrupted(signum=signum)


def install() -> None:
    """Handle :data:`HANDLED` signals in this process (main thread only; a no-op elsewhere).

    A signal the process was started with ignored (``nohup`` ignores SIGHUP; shells start
    background jobs with SIGINT ignored) stays ignored.
    """
    for signum in HANDLED:
        try:
            if signal.getsignal(signum) is signal.SIG_IGN:
                continue
            signal.signal(signum, _handler)
        except (ValueError, OSError):  # not the main thread, or a platform without it
            return


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Hold signals back during code that must not be interrupted half-way (importing torch runs
    Python code under C++, where an exception aborts the process); raised when the block ends."""
    global _deferring
    outer, _deferring = _deferring, True
    try:
        yield
    finally:
        _deferring = outer
        if not outer and _pending:
            signum = _pending[0]
            _pending.clear()
            raise Interrupted(signum=signum)


def exit_status(exc: BaseException) -> int:
    """The exit status for an interruption: 128 + the signal's number (130 for Ctrl-C)."""
    return 128 + int(getattr(exc, "signum", signal.SIGINT))
