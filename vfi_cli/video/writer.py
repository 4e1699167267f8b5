"""Encoding with PyAV into a temporary file that is renamed into place only when complete."""

from __future__ import annotations

import logging
import os
from fractions import Fraction
from pathlib import Path

import av

from vfi_cli.config import EncodeSettings
from vfi_cli.errors import VideoError
from vfi_cli.video import ffmpeg_message
from vfi_cli.video.color import bit_depth
from vfi_cli.video.encoding import encoder_complaints, encoder_options, quiet_library, refused_options
from vfi_cli.video.hdr import HDR_ENCODERS
from vfi_cli.video.reader import Part, VideoInfo, local_url
from vfi_cli.video.streams import OtherStreams

log = logging.getLogger(__name__)

# Encoders whose quality is set by CRF and speed by a named preset.
_CRF_ENCODERS = {"libx264", "libx265", "libvpx-vp9", "libsvtav1", "libaom-av1"}
_PRESET_ENCODERS = {"libx264", "libx265", "libsvtav1"}


def temporary_path(destination: Path) -> Path:
    """A hidden name beside the destination (same filesystem, so the final rename is atomic)."""
    return destination.with_name(f".{destination.stem}.vfi-partial-{os.getpid()}{destination.suffix}")


def choose_pix_fmt(settings: EncodeSettings, source: VideoInfo) -> str:
    try:
        codec = av.codec.Codec(settings.codec, "w")
    except (av.FFmpegError, ValueError) as exc:
        raise VideoError(f"unknown video encoder {settings.codec!r}") from exc
    if codec.type != "video":
        raise VideoError(f"{settings.codec!r} is not a video encoder")
    supported = [f.name for f in codec.video_formats or []]
    if settings.pix_fmt:
        if supported and settings.pix_fmt not in supported:
            raise VideoError(f"{settings.codec} cannot encode {settings.pix_fmt}; it takes {', '.join(supported)}")
        return settings.pix_fmt
    # The input's own format first; else one of the same bit depth; 4:4:4 where odd sizes rule out 4:2:0.
    odd = bool(source.width % 2 or source.height % 2)
    deep = ["yuv420p10le", "yuv444p10le"] if bit_depth(source.pix_fmt) > 8 else []
    for name in [source.pix_fmt, *deep, "yuv420p", "yuv444p"]:
        if (not supported or name in supported) and not (odd and needs_even_size(name)):
            return name
    return supported[0]


def needs_even_size(pix_fmt: str) -> bool:
    """Chroma subsampled (4:2:0, 4:2:2 ...): the encoders take only even widths (and heights)."""
    chroma = av.VideoFormat(pix_fmt, 2, 2)
    return chroma.chroma_width() < 2 or chroma.chroma_height() < 2


class VideoWriter:
    """Writes the converted video stream and copies the input's audio, interleaved by time.

    Use as a context manager and call :meth:`commit` on success: leaving the block without it
    (an error, Ctrl-C) removes the temporary file, so the destination is either complete or absent.
    """

    def __init__(self, destination: Path, source: VideoInfo, rate: Fraction, settings: EncodeSettings,
                 time_base: Fraction | None = None, part: Part | None = None) -> None:
        """``rate`` is the nominal output rate; ``time_base`` (default 1/rate) the tick on which every
        output time given to :meth:`write` falls (finer for variable-rate output). With a ``part`` (a
        preview), times given to :meth:`write` count from the part's start, the output starts at 0
        and the other streams are cut to the part."""
        self.destination = Path(destination)
        self.part = part
        # The input time (seconds, as its timestamps say) of an output time of 0, and what is taken off
        # every input time in the output: nothing for a whole input (its own clock is kept, so that
        # copied audio stays where it was), the part's start for a part (the output starts at 0).
        self.origin = source.start_time + (part.start if part is not None else 0)
        self.shift = self.origin if part is not None else Fraction(0)
        self.temporary = temporary_path(self.destination)
        self.source = source
        self.rate = Fraction(rate)
        self.time_base = Fraction(time_base) if time_base is not None else 1 / self.rate
        self.pix_fmt = choose_pix_fmt(settings, source)
        if needs_even_size(self.pix_fmt) and (source.width % 2 or source.height % 2):
            raise VideoError(
                f"{self.pix_fmt} needs an even width and height and the input is {source.width}x{source.height}; "
                "pass --pix-fmt yuv444p"
            )
        self.settings = settings
        self.frames_written = 0
        self._container: av.container.OutputContainer | None = None
        self._stream: av.video.stream.VideoStream | None = None
        self._others: OtherStreams | None = None  # the input's audio, subtitles, data, chapters, tags
        self._committed = False

    def __enter__(self) -> VideoWriter:
        try:
            self._container = av.open(local_url(self.temporary), mode="w")
        except (av.FFmpegError, ValueError) as exc:
            self._remove_temporary()
            raise VideoError(
                f"cannot write {self.destination.name}: {ffmpeg_message(exc)} "
                "(name it with a video extension such as .mp4 or .mkv)"
            ) from exc
        try:
            self._add_video_stream()
            if self.source.path.is_file():  # not a folder of images
                assert self._stream is not None
                window = None
                if self.part is not None:
                    window = (self.origin, None if self.part.end is None else self.origin + self.part.end - self.part.start)
                self._others = OtherStreams(self.source.path, self._container, self._stream, self.destination.suffix, window)
            self._start()
        except BaseException:
            self._close_quietly()
            self._remove_temporary()
            raise
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if not self._committed:
            self._close_quietly()
            self._remove_temporary()

    def _start(self) -> None:
        """Open the encoders and write the header now, so that a stream the container cannot hold
        is reported before any frame is decoded."""
        assert self._container is not None
        try:
            with encoder_complaints(self.settings.codec) as complaints:
                self._container.start_encoding()
        except (av.FFmpegError, ValueError) as exc:
            streams = ", ".join(f"{s.codec_context.name} {s.type}" for s in self._container.streams)
            if self.settings.options and self._stream is not None and not self._stream.codec_context.is_open:
                given = " ".join(f"{k}={v}" for k, v in self.settings.options)
                raise VideoError(f"{self.settings.codec} refused the encoder options ({given}): {ffmpeg_message(exc)}") from exc
            raise VideoError(
                f"cannot write {self.destination.name}: the {self.destination.suffix or 'chosen'} container refused "
                f"the streams ({streams}): {ffmpeg_message(exc)}; try .mkv"
            ) from exc
        assert self._stream is not None
        if self.settings.options and complaints:
            raise VideoError(f"{self.settings.codec} did not take the encoder options: {' '.join(complaints)}")
        unused = refused_options(self.settings.options, self._stream.codec_context.options)
        if unused:
            raise VideoError(f"{self.settings.codec} does not take the encoder option(s) {', '.join(unused)}; "
                             f"see `ffmpeg -h encoder={self.settings.codec}`")

    def _add_video_stream(self) -> None:
        assert self._container is not None
        s = self.settings
        try:
            stream = self._container.add_stream(s.codec, rate=self.rate)
        except (av.FFmpegError, ValueError) as exc:
            raise VideoError(f"cannot use encoder {s.codec!r} for {self.destination.suffix or 'this'} files: {exc}") from exc
        stream.width = self.source.width
        stream.height = self.source.height
        stream.pix_fmt = self.pix_fmt
        stream.codec_context.time_base = self.time_base
        color = self.source.color
        stream.codec_context.colorspace = color.colorspace
        stream.codec_context.color_range = int(color.range_for(self.pix_fmt)) if color.color_range else 0
        stream.codec_context.color_primaries = color.color_primaries
        stream.codec_context.color_trc = color.color_trc
        options = {}
        if s.crf is not None and s.codec in _CRF_ENCODERS:
            options["crf"] = str(s.crf)
            if s.codec == "libvpx-vp9":
                options["b"] = "0"
        if s.preset is not None and s.codec in _PRESET_ENCODERS:
            options["preset"] = s.preset
        hdr = self.source.hdr
        params = None if hdr is None else hdr.encoder_params(s.codec)
        if hdr is not None and params is None:
            log.warning("the HDR10 metadata of %s (mastering display, content light level) cannot be written by %s and is "
                        "left out; %s keep it", self.source.path.name, s.codec, ", ".join(HDR_ENCODERS))
        for extra in (quiet_library(s.codec), params or {}):  # parameter lists merged; the user's options go over all
            options = encoder_options(options, tuple(extra.items()))
        stream.options = encoder_options(options, s.options)
        self._stream = stream

    def write(self, frame: av.VideoFrame, time: Fraction | None = None) -> None:
        """Encode the next output frame at ``time`` (seconds from the first frame; default: the frame
        count over the rate). The video starts where the input's did, so audio stays aligned."""
        assert self._container is not None and self._stream is not None
        if time is None:
            time = Fraction(self.frames_written) / self.rate
        time = self.origin + time
        frame.pts = round((time - self.shift) / self.time_base)
        frame.time_base = self.time_base
        frame.pict_type = av.video.frame.PictureType.NONE
        try:
            packets = self._stream.encode(frame)
            if self._others is not None:
                self._others.mux_until(time - self.shift)
            self._container.mux(packets)
        except av.FFmpegError as exc:
            raise VideoError(f"writing {self.destination.name} failed: {ffmpeg_message(exc)}") from exc
        self.frames_written += 1

    def commit(self) -> None:
        """Flush, close and move the finished file into place."""
        assert self._container is not None and self._stream is not None
        try:
            self._container.mux(self._stream.encode(None))
            if self._others is not None:
                self._others.mux_until(None)
            self._container.close()
        except av.FFmpegError as exc:
            raise VideoError(f"writing {self.destination.name} failed: {ffmpeg_message(exc)}") from exc
        finally:
            if self._others is not None:
                self._others.close()
        os.replace(self.temporary, self.destination)
        self._committed = True

    def _close_quietly(self) -> None:
        for resource in (self._container, self._others):
            if resource is None:
                continue
            try:
                resource.close()
            except Exception:  # noqa: BLE001 - already failing; the temporary file is removed next
                pass

    def _remove_temporary(self) -> None:
        try:
            self.temporary.unlink()
        except FileNotFoundError:
            pass
