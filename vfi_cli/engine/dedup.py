"""Held drawings in animation: repeated frames dropped and their span re-timed evenly (after ffmpeg's
mpdecimate and Flowframes' de-duplication).

Cartoons hold each drawing for two or three frames ("on twos", "on threes"). Interpolating such a
video frame by frame makes nothing move across a held pair and everything move across the next:
the motion still stutters at the output rate. With duplicates dropped, the output frames of the
whole span from one drawing to the next are made between those two drawings, at times t spread
evenly over the span (:meth:`Schedule.hold`), so a drawing held for two frames becomes smooth motion.

A frame repeats the last drawing when :func:`~vfi_cli.engine.scenes.is_duplicate` says so (bit for
bit, or within a tolerance for compressed video). Spans are re-timed only between two drawings of
one shot: a held drawing before a hard cut, and holds longer than ``max_hold`` frames (a still
shot, a pause), are passed on as they are, so they stay still and the cut stays where it was.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TypeVar

from vfi_cli.config import DEDUP_MAX_HOLD
from vfi_cli.engine.scenes import SceneDetector, is_duplicate
from vfi_cli.engine.schedule import Schedule

Frame = TypeVar("Frame")  # anything with ``rgb`` (an RGB array) and ``time``


class Deduplicator:
    """Filters a frame stream for :func:`~vfi_cli.engine.runner.interpolate_stream`, telling ``schedule``
    of each repeat it drops (call it in the thread that consumes the frames: the schedule must hear of
    a repeat before the next frame passed on reaches it). :attr:`dropped` counts the repeats re-timed."""

    def __init__(self, schedule: Schedule, tolerance: float, detector: SceneDetector | None = None,
                 max_hold: int = DEDUP_MAX_HOLD) -> None:
        if tolerance < 0 or max_hold < 2:
            raise ValueError("tolerance must be at least 0 and max_hold at least 2")
        self.schedule = schedule
        self.tolerance = tolerance
        self.detector = detector
        self.max_hold = max_hold
        self.dropped = 0

    def __call__(self, frames: Iterable[Frame]) -> Iterator[Frame]:
        drawing = None  # the last frame passed on that was not a repeat
        held: list = []  # its repeats since, waiting for the next drawing
        still = False  # the drawing is held longer than max_hold frames: its repeats pass as they are
        for frame in frames:
            if drawing is not None and is_duplicate(drawing.rgb, frame.rgb, self.tolerance):  # type: ignore[attr-defined]
                if still:
                    yield frame
                elif len(held) + 2 > self.max_hold:
                    still = True
                    yield from held
                    yield frame
                    held = []
                else:
                    held.append(frame)
                continue
            if held and self.detector is not None and self.detector.is_cut(drawing.rgb, frame.rgb):  # type: ignore[attr-defined]
                yield from held  # the cut stays where it was: the held frames keep their own places
            else:
                self._drop(held)
            drawing, held, still = frame, [], False
            yield frame
        self._drop(held)  # a drawing held at the very end: its frames repeat it anyway

    def _drop(self, held: list) -> None:
        for frame in held:
            self.schedule.hold(frame.time)
        self.dropped += len(held)
