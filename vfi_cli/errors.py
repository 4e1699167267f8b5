"""Errors a user can act on: the CLI prints their message as one line, without a traceback."""

import signal


class VfiError(Exception):
    """A failure whose message alone tells the user what went wrong and what to do."""


class MissingWeightsError(VfiError):
    """No trained weights were given and none ship with this installation."""


class VideoError(VfiError):
    """The input cannot be read as a video, or the output cannot be written."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C, or a termination signal the command line handles the same way (SIGTERM, SIGHUP,
    SIGQUIT): ``signum`` is the signal; the message, when there is one, says what was kept and how
    to go on."""

    def __init__(self, message: str = "", signum: int = signal.SIGINT) -> None:
        super().__init__(message)
        self.signum = int(signum)


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message, or its type when it has none (EOFError of an empty file)."""
    return (str(exc).splitlines() or [""])[0] or type(exc).__name__
