"""Errors a user can act on: the CLI prints their message as one line, without a traceback."""


class VfiError(Exception):
    """A failure whose message alone tells the user what went wrong and what to do."""


class MissingWeightsError(VfiError):
    """No trained weights were given and none ship with this installation."""


class VideoError(VfiError):
    """The input cannot be read as a video, or the output cannot be written."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C, caught where something was kept: the message says what, and how to go on."""
