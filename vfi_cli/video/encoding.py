"""What the video encoder is told beyond its codec and size: the user's ``--encoder-opt`` options
over vfi's own (CRF, preset), and which of them it did not take."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping

import av
import av.logging

from vfi_cli.config import merge_params


def encoder_options(base: Mapping[str, str], user: tuple[tuple[str, str], ...]) -> dict[str, str]:
    """``base`` (vfi's options) with the user's on top; parameter lists (``*-params``) are merged key by key."""
    options = dict(base)
    for key, value in user:
        options[key] = merge_params(options[key], value) if key.endswith("-params") and key in options else value
    return options


def quiet_library(codec: str) -> dict[str, str]:
    """Options that keep an encoder library from printing its own lines on stderr (beside FFmpeg's log,
    which vfi turns into its one ``Warning: ...`` form): x265 and SVT-AV1 print progress and notices
    such as "x265 [info]: ..." or "Svt[warn]: ..." by default; only their errors are left. A user's
    ``--encoder-opt x265-params=log-level=info`` (or the environment's ``SVT_LOG``) still wins."""
    if codec == "libsvtav1":
        os.environ.setdefault("SVT_LOG", "1")  # errors only; SVT-AV1 reads it when it first starts in a process
    return {"x265-params": "log-level=error"} if codec == "libx265" else {}


def refused_options(user: tuple[tuple[str, str], ...], left_over: Mapping[str, str]) -> list[str]:
    """The user's option names the encoder left unused when it opened (FFmpeg hands back what no one took)."""
    return [key for key, _ in user if key in left_over]


@contextlib.contextmanager
def encoder_complaints(codec: str) -> Iterator[list[str]]:
    """Collect what the encoder ``codec`` logs about its options while it opens (FFmpeg's wrappers only
    warn about an unknown or bad entry of a parameter list such as ``x265-params``, and go on)."""
    complaints: list[str] = []
    previous = av.logging.get_level()
    av.logging.set_level(av.logging.WARNING)
    try:
        with av.logging.Capture() as logs:
            yield complaints
    finally:
        av.logging.set_level(previous)
    complaints += [message.strip() for level, name, message in logs
                   if name == codec and level <= av.logging.WARNING and "option" in message.lower()]
