"""``vfi interpolate`` end to end: decode thread -> model (this thread) -> encode thread.

Bounded queues between the stages keep memory flat whatever the video's length, and let decoding
and encoding overlap the model. An error in any stage, or Ctrl-C, stops all three and leaves no
output file behind (see :class:`~vfi_cli.video.writer.VideoWriter`).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from vfi_cli.config import ConvertOptions
from vfi_cli.engine.dedup import Deduplicator
from vfi_cli.engine.color import YuvLayout
from vfi_cli.engine.runner import FrameInterpolator, PairCounts, interpolate_stream
from vfi_cli.engine.scenes import SceneDetector
from vfi_cli.engine.schedule import DEFAULT_TOLERANCE, OutputFrame, Schedule, round_half_up
from vfi_cli.engine.transfer import Download
from vfi_cli.results import Summary
from vfi_cli.video.color import convert_format, frame_from_planes, from_rgb, is_planar_yuv
from vfi_cli.video.images import PngFolderWriter, is_folder_output, read_images
from vfi_cli.video.parts import locate_part
from vfi_cli.video.reader import DecodedFrame, FrameReader, Part, VideoInfo
from vfi_cli.video.writer import VideoWriter

_END = object()
_DEVICE_COLOUR = {"cuda"}  # device types whose model converts colour (see _colour_on_device)
log = logging.getLogger(__name__)


class _Stopped(Exception):
    """Raised inside a stage when another stage has failed or the user interrupted."""


class _Channel:
    """A bounded queue whose blocking calls give up once ``stop`` is set.

    It also adds up the seconds each side spent blocked, which tells which stage limits throughput.
    """

    def __init__(self, maxsize: int, stop: threading.Event) -> None:
        self._queue: queue.Queue[Any] = queue.Queue(maxsize)
        self._stop = stop
        self.put_wait = 0.0
        self.get_wait = 0.0

    def put(self, item: Any) -> None:
        waited_from = time.perf_counter()
        try:
            while not self._stop.is_set():
                try:
                    self._queue.put(item, timeout=0.1)
                    return
                except queue.Full:
                    continue
            raise _Stopped
        finally:
            self.put_wait += time.perf_counter() - waited_from

    def __iter__(self) -> Iterator[Any]:
        while True:
            waited_from = time.perf_counter()
            while True:
                if self._stop.is_set():
                    raise _Stopped
                try:
                    item = self._queue.get(timeout=0.1)
                    break
                except queue.Empty:
                    continue
            self.get_wait += time.perf_counter() - waited_from
            if item is _END:
                return
            yield item


class _Stage(threading.Thread):
    def __init__(self, name: str, work: Callable[[], None], stop: threading.Event) -> None:
        super().__init__(name=name, daemon=True)
        self._work = work
        self._stop_event = stop
        self.error: BaseException | None = None
        self.seconds = 0.0

    def run(self) -> None:
        started = time.perf_counter()
        try:
            self._work()
        except _Stopped:
            pass
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread, which re-raises it
            self.error = exc
            self._stop_event.set()
        finally:
            self.seconds = time.perf_counter() - started


def convert_video(
    info: VideoInfo,
    destination: Path,
    interpolator: FrameInterpolator,
    options: ConvertOptions,
    *,
    batch_size: int = 4,
    on_frame: Callable[[int], None] | None = None,
    overwrite: bool = False,
    span: tuple[Fraction, Fraction | None] | None = None,
) -> Summary:
    """Convert ``info.path`` to ``destination`` at the options' frame rate.

    Up to ``batch_size`` frames are synthesised per call of ``interpolator``. ``on_frame(n)`` is
    called from the encoder thread after each output frame is written. Input frames that could not
    be decoded are counted in the summary and named in one logged warning. With a part asked for
    (``options.start``, ``end``, ``duration``) only that part is converted, the output starting at 0.
    ``overwrite`` lets the output replace what was at ``destination`` when the run started, never
    what appears meanwhile. With a ``span`` (begin, end: output times from the input's first frame;
    end None: to the end) only that segment of the whole conversion is made, frame for frame what a
    whole run makes there, into a file of video alone (see :class:`VideoWriter`; its summary's
    ``start`` says where its first frame lies).
    """
    started = time.perf_counter()
    rate_out = options.output_rate(info.rate)
    part = locate_part(info, options.start, options.end, options.duration) if options.is_part else None
    # --factor follows the input's own timestamps (variable rate stays variable); --fps gives constant rate.
    tolerance = min(info.time_base, DEFAULT_TOLERANCE) if info.time_base else DEFAULT_TOLERANCE
    end = None if part is None or part.end is None else part.end - part.start
    schedule = Schedule(info.rate, rate_out, factor=options.factor, tolerance=tolerance, end=end, span=span)
    if span is not None:
        if options.dedup is not None or part is not None:
            raise ValueError("a segment cannot be deduplicated (held drawings reach back over it) or be part of a preview")
        # From the last frame that is surely before the span (once snapped to the grid) to the first surely after it.
        margin = schedule.tolerance
        part = Part(span[0] - margin, None if span[1] is None else span[1] + margin, segment=True)
    # Repeats are dropped in this (the model's) thread, so that the schedule hears of each before the next frame.
    dedup = None if options.dedup is None else Deduplicator(schedule, options.dedup, None if options.scene_threshold is None
                                                            else SceneDetector(options.scene_threshold))
    stop = threading.Event()
    queue_size = 2 * batch_size + 2
    decoded = _Channel(queue_size, stop)
    produced = _Channel(queue_size, stop)
    synthesized = 0
    counts = PairCounts(span=span)

    if is_folder_output(destination):
        output: VideoWriter | PngFolderWriter = PngFolderWriter(destination, info, overwrite=overwrite)
    else:
        output = VideoWriter(destination, info, rate_out, options.encode, schedule.output_time_base(info.time_base),
                             overwrite=overwrite, part=None if span is not None else part, segment=span is not None)
    on_device = _colour_on_device(interpolator, info, output)
    # Cut and duplicate detection still look at RGB, converted on the decode thread as on the CPU.
    reader = FrameReader(info, keep_depth=True, part=part,
                         rgb=not on_device or options.scene_threshold is not None or options.dedup is not None)
    colour_encode = 0.0

    def decode() -> None:
        frames = read_images(info, part) if info.path.is_dir() else iter(reader)
        try:
            for frame in frames:
                decoded.put(frame)
            decoded.put(_END)
        finally:
            frames.close()

    with output as writer:

        def encode() -> None:
            nonlocal colour_encode
            for job, payload in produced:
                if isinstance(payload, Download):
                    payload = payload.result()  # waits for the device, not colour conversion
                converting_from = time.perf_counter()
                frame = _to_output_frame(job, payload, writer, info)
                colour_encode += time.perf_counter() - converting_from
                writer.write(frame, job.time)
                if on_frame is not None:
                    on_frame(writer.frames_written)

        stages = [_Stage("vfi-decode", decode, stop), _Stage("vfi-encode", encode, stop)]
        for stage in stages:
            stage.start()
        try:
            model_started = time.perf_counter()
            detector = None if options.scene_threshold is None else SceneDetector(options.scene_threshold)
            frames = decoded if dedup is None else dedup(decoded)
            for job, payload in interpolate_stream(frames, schedule, interpolator, batch_size, detector, counts):
                synthesized += isinstance(payload, (np.ndarray, Download))
                produced.put((job, payload))
            produced.put(_END)
            model_seconds = time.perf_counter() - model_started
            stages[1].join()
        except BaseException:
            stop.set()
            raise
        finally:
            for stage in stages:
                stage.join()
            for stage in stages:
                if stage.error is not None:
                    raise stage.error
        writer.commit()

    seconds = time.perf_counter() - started
    if reader.frames_lost:
        log.warning("%d input frame(s) could not be decoded and were skipped (%s); the frames around them were "
                    "interpolated across the gap.", reader.frames_lost, reader.first_error)
    return Summary(
        frames_in=schedule.used,
        frames_out=output.frames_written,
        synthesized=synthesized,
        cuts=counts.cuts,
        static_pairs=counts.static,
        duplicates=0 if dedup is None else dedup.dropped,
        rate_in=info.rate,
        rate_out=rate_out,
        duration_in=schedule.input_duration,
        duration_out=schedule.output_duration,
        seconds=seconds,
        output=destination,
        start=_start(part, output, info),
        frames_lost=reader.frames_lost,
        decode_error=reader.first_error if reader.frames_lost else None,
        busy_seconds={
            "decode": stages[0].seconds - decoded.put_wait,
            "model": model_seconds - decoded.get_wait - produced.put_wait,
            "encode": stages[1].seconds - produced.get_wait,
        },
        colour_seconds={"decode": reader.colour_seconds, "encode": colour_encode},
    )


def _start(part: Part | None, output: VideoWriter | PngFolderWriter, info: VideoInfo) -> Fraction:
    """Where the output begins, from the input's first frame: a preview's first frame, a segment's first output frame."""
    if isinstance(output, VideoWriter) and output.segment:
        return Fraction(0) if output.offset is None else output.offset - info.start_time
    return Fraction(0) if part is None else part.start


def expected_output_frames(info: VideoInfo, options: ConvertOptions) -> int:
    """Output frame count predicted from the header (exact when the header's frame count is; for a part,
    from the times asked for)."""
    length = Fraction(info.frame_count) / info.rate
    if options.is_part:
        start = options.start or Fraction(0)
        stop = start + options.duration if options.duration is not None else options.end
        length = max(Fraction(0), (length if stop is None else min(length, stop)) - start)
    return round_half_up(length * options.output_rate(info.rate))


def _colour_on_device(interpolator: FrameInterpolator, info: VideoInfo, output: VideoWriter | PngFolderWriter) -> bool:
    """On CUDA, with planar YUV in and out, the model's device converts colour: the reader hands planes
    over (1.5 bytes a pixel at 8-bit 4:2:0, not 12 of float RGB) and the writer gets planes back.

    On the CPU numpy and swscale stay: the torch conversion measured about 25 times slower there
    (1080p 8-bit 4:2:0, one frame, two threads: to_rgb 13 ms and from_rgb 25 ms, torch 380 and 360 ms).
    """
    on_device = (isinstance(interpolator, FrameInterpolator) and interpolator.device.type in _DEVICE_COLOUR
                 and not info.path.is_dir() and is_planar_yuv(info.pix_fmt)
                 and isinstance(output, VideoWriter) and is_planar_yuv(output.pix_fmt))
    if isinstance(interpolator, FrameInterpolator):
        interpolator.planes_in = YuvLayout(info.pix_fmt, info.color) if on_device else None
        interpolator.planes_out = YuvLayout(output.pix_fmt, info.color) if on_device else None  # type: ignore[union-attr]
    return on_device


def _to_output_frame(job: OutputFrame, payload: DecodedFrame | np.ndarray | list[np.ndarray],
                     writer: VideoWriter | PngFolderWriter, info: VideoInfo):
    """What the writer takes: RGB for a PNG folder; else the frame in the output's pixel format, where a
    copied input frame is its decoded picture itself (no RGB round trip) when the formats match, and
    planes made on the device are copied into a frame."""
    if isinstance(payload, list):
        return frame_from_planes(payload, writer.pix_fmt)  # type: ignore[union-attr]
    if isinstance(writer, PngFolderWriter):
        return payload if isinstance(payload, np.ndarray) else payload.rgb
    if isinstance(payload, np.ndarray):
        return from_rgb(payload, writer.pix_fmt, info.color)
    return convert_format(payload.picture, writer.pix_fmt, info.color)
