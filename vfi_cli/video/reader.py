"""Decoding with PyAV: stream facts up front, then frames one at a time (never the whole video)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from time import perf_counter

import av
import numpy as np

from vfi_cli.errors import VideoError
from vfi_cli.video import ffmpeg_message
from vfi_cli.video.color import ColorInfo, to_rgb
from vfi_cli.video.hdr import HdrMetadata
from vfi_cli.video.pyav import rational, seconds


@dataclass(frozen=True)
class VideoInfo:
    """What the rest of the pipeline needs to know about an input before decoding it."""

    path: Path
    width: int
    height: int
    rate: Fraction  # nominal frames per second (the average rate of variable-rate video)
    frame_count: int  # from the header or duration; an estimate for progress only
    duration: Fraction | None  # seconds, from the header
    start_time: Fraction  # presentation time of the first frame, seconds
    pix_fmt: str
    codec: str
    color: ColorInfo
    audio_streams: int
    time_base: Fraction | None = None  # tick of the input's timestamps: how precisely frame times are known
    hdr: HdrMetadata | None = None  # HDR10 mastering display and content light level, as the first frame carries them


@dataclass
class DecodedFrame:
    """One input frame: the decoded picture (kept for exact copies) and its RGB conversion."""

    index: int
    time: Fraction | None  # presentation time relative to the first frame, seconds
    picture: av.VideoFrame
    rgb: np.ndarray | None  # uint8; uint16 for video of more than 8 bits read with ``keep_depth``; None without ``rgb``


def local_url(path: Path) -> str:
    """The path as FFmpeg's ``file:`` URL, so that a local name such as ``http:/x/y.mp4`` or
    ``concat:a|b`` is read from disk, never fetched or taken for a protocol."""
    return "file:" + os.path.abspath(path)


def holds_frame(packet: av.Packet) -> bool:
    """Whether a demuxed packet carries a frame the decoder will output: not an empty flush packet,
    and not one an MP4 edit list trims (flagged discard; the decoder drops its frame)."""
    return packet.size > 0 and not packet.is_discard


def video_stream(container: av.container.InputContainer) -> av.video.stream.VideoStream | None:
    """The video stream vfi converts: the first that is not an attached picture (the cover art of
    an mp3 or m4a, a poster frame), which demuxers list as a video stream of a single frame."""
    for stream in container.streams.video:
        if not stream.disposition & av.stream.Disposition.attached_pic:
            return stream
    return None


def _open(path: Path) -> av.container.InputContainer:
    try:
        return av.open(local_url(path), mode="r")
    except av.FFmpegError as exc:
        raise VideoError(f"cannot read {path} as a video: {ffmpeg_message(exc)}") from exc


def probe(path: Path) -> VideoInfo:
    """Read the header and the first frame; raises :class:`VideoError` for anything that is not a video."""
    path = Path(path)
    with _open(path) as container:
        stream = video_stream(container)
        if stream is None:
            pictures = " (only a cover picture, which is not video)" if container.streams.video else ""
            raise VideoError(f"{path} has no video stream{pictures}")
        if stream.codec_context is None:  # decoding such a stream crashes FFmpeg (PyAV issue 2344)
            raise VideoError(f"{path} is damaged or cut off: its video stream has no codec parameters")
        rate = rational(stream.average_rate) or rational(stream.guessed_rate) or rational(stream.base_rate)
        if not rate or rate <= 0:
            raise VideoError(f"{path} does not state a frame rate")
        try:
            first = next(container.decode(stream), None)
        except av.FFmpegError as exc:
            raise VideoError(f"cannot decode the video in {path}: {ffmpeg_message(exc)}") from exc
        if first is None:
            raise VideoError(f"{path} holds no decodable video frame")
        time_base = rational(stream.time_base)
        duration = None
        if stream.duration and time_base:
            duration = Fraction(stream.duration) * time_base
        elif container.duration:
            duration = Fraction(container.duration, av.time_base)
        frame_count = stream.frames or (round(duration * rate) if duration else 0)
        # Output timing starts at the first frame shown, which need not be the stream's start_time.
        start = seconds(first.pts, first.time_base)
        if start is None:
            start = seconds(stream.start_time, time_base) or Fraction(0)
        return VideoInfo(
            path=path,
            width=first.width,
            height=first.height,
            rate=rate,
            frame_count=int(frame_count),
            duration=duration,
            start_time=start,
            pix_fmt=first.format.name,
            codec=stream.codec_context.name,
            color=ColorInfo.of_frame(first),
            audio_streams=len(container.streams.audio),
            time_base=time_base,
            hdr=HdrMetadata.of_frame(first),
        )


@dataclass(frozen=True)
class Part:
    """The span of an input a preview converts, in seconds from the input's first frame: from ``start``
    (the time of the part's first frame) to before ``end`` (None: to the end of the input).

    A ``segment``'s part (one piece of a longer conversion) also holds the last frame before ``start``
    (the left neighbour of its first output frame), and its frames keep the input's own times."""

    start: Fraction = Fraction(0)
    end: Fraction | None = None
    segment: bool = False


class FrameReader:
    """Decodes the first video stream in presentation order, converting each frame to RGB once.

    A packet the decoder rejects (corruption in the middle of a file) is skipped rather than ending
    the conversion; :attr:`frames_lost` tells how many frames were lost that way once iteration is over.
    ``keep_depth`` gives uint16 RGB for video of more than 8 bits (the interpolation pipeline);
    consumers that work in 8 bits (training, evaluation) leave it off. Without ``rgb`` the frames
    come as decoded pictures alone (``rgb`` None), for a model that converts colour on its own device;
    :attr:`colour_seconds` adds up the time spent converting.

    With a ``part``, decoding starts from a seek to the keyframe before the part, frames before it
    are dropped unconverted, times count from the part's start, and the first frame at or after
    its end still comes (the right-hand neighbour of the part's last interval) before iteration stops.
    A segment's part also gives the last frame before its start first, and times from the input's first frame.
    """

    def __init__(self, info: VideoInfo, keep_depth: bool = False, part: Part | None = None, rgb: bool = True) -> None:
        self.info = info
        self.keep_depth = keep_depth
        self.rgb = rgb
        self.colour_seconds = 0.0
        self.part = part
        self.frames_read = 0
        self.frames_decoded = 0  # frames_read and those before a part
        self.frames_lost = 0
        self.first_error: str | None = None

    def __iter__(self) -> Iterator[DecodedFrame]:
        info, part = self.info, self.part
        seek = part is not None and part.start > 0
        while True:
            overshot = yield from self._decode(seek)
            if not overshot:
                break
            seek = False  # the container's index put the seek after the part's start: read from the beginning
        if self.frames_read == 0 and self.frames_decoded and part is not None and not part.segment:
            raise VideoError(f"{info.path.name} has no frame at or after {float(part.start):.3f} s")
        if self.frames_read == 0:
            raise VideoError(f"no frame of {info.path} could be decoded: {self.first_error or 'no video data'}")

    def _decode(self, seek: bool) -> Iterator[DecodedFrame]:
        """Decode (from a seek to the part when ``seek``); returns True when the seek landed after the part's start."""
        info, part = self.info, self.part
        last: Fraction | None = None
        before: tuple[av.VideoFrame, Fraction] | None = None  # a segment's last frame before its start, unconverted
        decoded = packets = 0
        with _open(info.path) as container:
            stream = video_stream(container)
            assert stream is not None  # probe() found it
            stream.thread_type = "AUTO"
            tick = rational(stream.time_base)
            if seek and part is not None and tick:
                container.seek(int((info.start_time + part.start) / tick), stream=stream, backward=True)
            try:
                for packet in container.demux(stream):
                    packets += holds_frame(packet)
                    try:
                        pictures = packet.decode()
                    except av.FFmpegError as exc:
                        self.first_error = self.first_error or ffmpeg_message(exc)
                        continue
                    for picture in pictures:
                        decoded += 1
                        self.frames_decoded += 1
                        time = self._time(picture, last)
                        if part is None:
                            yield self._decoded(picture, time)
                            continue
                        if seek and last is None and time is not None and (time > part.start or part.segment and time == part.start):
                            return True  # (a segment needs a frame before its start too)
                        last = time if time is not None else last
                        if time is not None and time < part.start:
                            before = (picture, time) if part.segment else None
                            continue
                        if before is not None:
                            yield self._decoded(*before)
                            before = None
                        shift = 0 if part.segment or time is None else part.start
                        yield self._decoded(picture, None if time is None else time - shift)
                        if part.end is not None and time is not None and time >= part.end:
                            break
                    else:
                        continue
                    try:  # the part has ended: what the decoder still holds was not lost
                        decoded += len(stream.decode(None))
                    except av.error.EOFError:
                        pass  # the part ended at the input's last frame: the decoder was drained already
                    break
                else:
                    if before is not None:  # the input ends before the segment's start: its tail shows this frame
                        yield self._decoded(*before)
            except av.FFmpegError as exc:  # the container itself is broken from here on (a cut-off file)
                self.first_error = self.first_error or ffmpeg_message(exc)
                packets = max(packets, stream.frames)
            # After a seek, frames the decoder drops for want of their references are not damage.
            if not seek or self.first_error is not None:
                self.frames_lost = max(0, packets - decoded)
        return False

    def _time(self, picture: av.VideoFrame, last: Fraction | None) -> Fraction | None:
        """Presentation time from the input's first frame; for a part, a missing one is taken as one frame after the last."""
        time = seconds(picture.pts, picture.time_base)
        if time is not None:
            return time - self.info.start_time
        if self.part is not None and last is not None:
            return last + 1 / self.info.rate
        return None

    def _decoded(self, picture: av.VideoFrame, time: Fraction | None) -> DecodedFrame:
        started = perf_counter()
        rgb = to_rgb(picture, self.info.color) if self.rgb else None
        if rgb is not None and rgb.dtype == np.uint16 and not self.keep_depth:
            rgb = ((rgb.astype(np.uint32) + 128) // 257).astype(np.uint8)
        self.colour_seconds += perf_counter() - started
        frame = DecodedFrame(index=self.frames_read, time=time, picture=picture, rgb=rgb)
        self.frames_read += 1
        return frame


def read_frames(info: VideoInfo, keep_depth: bool = False) -> Iterator[DecodedFrame]:
    """The frames of ``info``'s video, one at a time (see :class:`FrameReader`)."""
    return iter(FrameReader(info, keep_depth))
