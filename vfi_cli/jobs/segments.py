"""A long conversion cut into segments of the output's timeline, each converted on its own.

Segment k holds the output frames at times [k·S, (k+1)·S) from the input's first frame (S: the
segment length; the last runs to the end). Each output frame depends only on the two input frames
around it, and scene cuts and still pairs only on the two frames of a pair, so a segment that
decodes from the last input frame before its start to the first after its end makes exactly the
frames a whole run makes there (:class:`~vfi_cli.engine.schedule.Schedule` with a ``span``). Held
drawings (``dedup``) look back over any number of frames: such conversions are not cut.

A :class:`SegmentPlan` is plain data (picklable): any process can call :func:`run_segment` on it
for any segment, which records the finished segment in the journal of the work folder
(:mod:`.manifest`); :func:`join` makes the output from the segments once all are done.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vfi_cli.config import ConvertOptions, EngineOptions
from vfi_cli.engine.schedule import Schedule
from vfi_cli.jobs.manifest import Journal, input_fingerprint
from vfi_cli.results import Summary
from vfi_cli.video.concat import join_segments, segment_suffix
from vfi_cli.video.images import is_folder_output
from vfi_cli.video.reader import VideoInfo

if TYPE_CHECKING:
    from vfi_cli.engine.runner import FrameInterpolator

log = logging.getLogger(__name__)
_COUNTS = ("frames_in", "frames_out", "synthesized", "cuts", "static_pairs", "frames_lost")


@dataclass(frozen=True)
class SegmentPlan:
    """What every segment of one conversion needs: the input, the output, the options, the weights
    and the segment length (``seconds``) of ``count`` segments, their files kept in a hidden work
    folder beside the output (``.OUT.vfi-work``) in the container ``suffix``."""

    info: VideoInfo
    destination: Path
    options: ConvertOptions
    engine: EngineOptions
    weights: Path | None
    seconds: Fraction
    count: int
    suffix: str

    @property
    def work(self) -> Path:
        return self.destination.with_name(f".{self.destination.name}.vfi-work")

    def span(self, index: int) -> tuple[Fraction, Fraction | None]:
        """The output times of segment ``index``: [begin, end), end None for the last (to the end)."""
        if not 0 <= index < self.count:
            raise IndexError(f"segment {index} of {self.count}")
        return index * self.seconds, None if index == self.count - 1 else (index + 1) * self.seconds

    def segment_path(self, index: int) -> Path:
        return self.work / f"segment-{index:05d}{self.suffix}"

    def journal_key(self, weights_digest: str) -> dict[str, Any]:
        """What the journal of an interrupted run must have been written for to be resumed: the same
        input (:func:`input_fingerprint`) and everything that changes the output, the weights too."""
        described = repr((self.options, self.engine, weights_digest, self.seconds, self.suffix))
        return {"input": input_fingerprint(self.info.path), "options": hashlib.sha256(described.encode()).hexdigest()}

    def time_base(self) -> Fraction:
        """The encoder's tick: the one a whole run uses."""
        rate_out = self.options.output_rate(self.info.rate)
        return Schedule(self.info.rate, rate_out, factor=self.options.factor).output_time_base(self.info.time_base)


def plan_segments(info: VideoInfo, destination: Path, options: ConvertOptions, engine: EngineOptions,
                  weights: Path | None, seconds: Fraction | float | None) -> SegmentPlan | None:
    """The segments of a conversion, or None when it runs in one piece: ``seconds`` None or 0, an
    output not longer than one segment, a preview, a folder of images in or out; with ``dedup`` or an
    encoder that MP4 and MOV cannot hold, a warning says that the conversion cannot be resumed."""
    if not seconds or options.is_part or is_folder_output(destination) or info.path.is_dir():
        return None
    seconds = Fraction(seconds)
    count = math.ceil(Fraction(info.frame_count) / info.rate / seconds)
    if count <= 1:
        return None
    if options.dedup is not None:
        log.warning("--dedup looks back over held frames across any segment boundary: converting in one piece, "
                    "which cannot be resumed if interrupted")
        return None
    suffix = segment_suffix(options.encode.codec)
    if suffix is None:
        log.warning("segments of %s cannot be stored in MP4 or MOV: converting in one piece, which cannot be resumed "
                    "if interrupted", options.encode.codec)
        return None
    return SegmentPlan(info, Path(destination), options, engine, weights, seconds, count, suffix)


def run_segment(plan: SegmentPlan, index: int, interpolator: FrameInterpolator | None = None,
                on_frame: Callable[[int], None] | None = None) -> Path | None:
    """Convert segment ``index`` of ``plan`` into its file in the work folder and record it in the journal.

    ``interpolator`` is a :class:`~vfi_cli.engine.runner.FrameInterpolator` for the plan's input
    (None: one is set up from the plan's weights and engine options, as a worker process does);
    ``on_frame(n)`` hears of each frame written. Returns the segment's file, None when it holds no
    frame (the input ended before it). A file an earlier run left unrecorded is made again.
    """
    from vfi_cli.engine.pipeline import convert_video

    if interpolator is None:
        from vfi_cli.backends.eager import load_model
        from vfi_cli.engine.runner import FrameInterpolator

        interpolator = FrameInterpolator.from_options(load_model(plan.weights, plan.engine), plan.info.height,
                                                      plan.info.width, plan.engine)
    path = plan.segment_path(index)
    path.unlink(missing_ok=True)
    summary = convert_video(plan.info, path, interpolator, plan.options, batch_size=plan.engine.batch_size,
                            on_frame=on_frame, span=plan.span(index))
    made = summary.frames_out > 0
    entry: dict[str, Any] = {name: getattr(summary, name) for name in _COUNTS}
    entry |= {"file": path.name if made else None, "start": str(summary.start), "seconds": summary.seconds,
              "duration_in": str(summary.duration_in), "duration_out": str(summary.duration_out),
              "decode_error": summary.decode_error, "busy_seconds": summary.busy_seconds,
              "worker": f"{socket.gethostname()}:{os.getpid()}"}  # which machine and process made it (a cluster's)
    Journal(plan.work).record(index, entry)
    return path if made else None


def join(plan: SegmentPlan, done: dict[int, dict[str, Any]], overwrite: bool = False) -> None:
    """Join the segments (all of them done, as :meth:`Journal.done` lists them) into the plan's output."""
    missing = [index for index in range(plan.count) if index not in done]
    if missing:
        raise ValueError(f"segments {missing} are not done")
    parts = [(plan.work / entry["file"], plan.info.start_time + Fraction(entry["start"]))
             for _, entry in sorted(done.items()) if entry["file"] is not None]
    join_segments(parts, plan.destination, plan.info, plan.time_base(), overwrite=overwrite)


def summarize(plan: SegmentPlan, done: dict[int, dict[str, Any]], seconds: float, busy: dict[str, float]) -> Summary:
    """The summary of the whole conversion from its segments' (all done): what one uninterrupted run reports."""
    entries = [entry for _, entry in sorted(done.items())]
    totals = {name: sum(entry[name] for entry in entries) for name in _COUNTS}
    errors = [entry["decode_error"] for entry in entries if entry["decode_error"]]
    return Summary(
        **totals, rate_in=plan.info.rate, rate_out=plan.options.output_rate(plan.info.rate),
        duration_in=Fraction(entries[-1]["duration_in"]), duration_out=Fraction(entries[-1]["duration_out"]),
        seconds=seconds, output=plan.destination, busy_seconds=busy, decode_error=errors[0] if errors else None,
    )
