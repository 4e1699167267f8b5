"""Decoding with PyAV: stream facts up front, then frames one at a time (never the whole video)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from vfi_cli.errors import VideoError
from vfi_cli.video import ffmpeg_message
from vfi_cli.video.color import ColorInfo, to_rgb


@dataclass(frozen=True)
class VideoInfo:
    """What the rest of the pipeline needs to know about an input before decoding it."""

    path: Path
    width: int
    height: int
    rate: Fraction  # nominal frames per second
    frame_count: int  # from the header or duration; an estimate for progress only
    duration: Fraction | None  # seconds, from the header
    start_time: Fraction  # presentation time of the first frame, seconds
    pix_fmt: str
    codec: str
    color: ColorInfo
    audio_streams: int


@dataclass
class DecodedFrame:
    """One input frame: the decoded picture (kept for exact copies) and its RGB conversion."""

    index: int
    time: Fraction | None  # presentation time relative to the first frame, seconds
    picture: av.VideoFrame
    rgb: np.ndarray


def _open(path: Path) -> av.container.InputContainer:
    try:
        return av.open(str(path), mode="r")
    except av.FFmpegError as exc:
        raise VideoError(f"cannot read {path} as a video: {ffmpeg_message(exc)}") from exc


def probe(path: Path) -> VideoInfo:
    """Read the header and the first frame; raises :class:`VideoError` for anything that is not a video."""
    path = Path(path)
    with _open(path) as container:
        if not container.streams.video:
            raise VideoError(f"{path} has no video stream")
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        if not rate or rate <= 0:
            raise VideoError(f"{path} does not state a frame rate")
        try:
            first = next(container.decode(stream), None)
        except av.FFmpegError as exc:
            raise VideoError(f"cannot decode the video in {path}: {ffmpeg_message(exc)}") from exc
        if first is None:
            raise VideoError(f"{path} holds no decodable video frame")
        time_base = stream.time_base
        duration = None
        if stream.duration and time_base:
            duration = Fraction(stream.duration) * time_base
        elif container.duration:
            duration = Fraction(container.duration, av.time_base)
        frame_count = stream.frames or (round(duration * rate) if duration else 0)
        # Output timing starts at the first frame shown, which need not be the stream's start_time.
        if first.pts is not None and first.time_base is not None:
            start = Fraction(first.pts) * first.time_base
        elif stream.start_time is not None and time_base:
            start = Fraction(stream.start_time) * time_base
        else:
            start = Fraction(0)
        return VideoInfo(
            path=path,
            width=first.width,
            height=first.height,
            rate=Fraction(rate),
            frame_count=int(frame_count),
            duration=duration,
            start_time=start,
            pix_fmt=first.format.name,
            codec=stream.codec_context.name,
            color=ColorInfo.of_frame(first),
            audio_streams=len(container.streams.audio),
        )


def read_frames(info: VideoInfo) -> Iterator[DecodedFrame]:
    """Decode the first video stream in presentation order, converting each frame to RGB once."""
    with _open(info.path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        index = 0
        try:
            for picture in container.decode(stream):
                time = None
                if picture.pts is not None and picture.time_base is not None:
                    time = Fraction(picture.pts) * picture.time_base - info.start_time
                yield DecodedFrame(index=index, time=time, picture=picture, rgb=to_rgb(picture, info.color))
                index += 1
        except av.FFmpegError as exc:
            raise VideoError(f"decoding {info.path} failed after {index} frames: {ffmpeg_message(exc)}") from exc
