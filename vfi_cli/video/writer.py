"""Encoding with PyAV into a temporary file that is renamed into place only when complete."""

from __future__ import annotations

import logging
import os
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from vfi_cli.config import EncodeSettings
from vfi_cli.errors import VideoError
from vfi_cli.files import commit_output, hold, identity, release, remove_stale_partials
from vfi_cli.video import ffmpeg_message
from vfi_cli.video.color import ColorInfo, bit_depth, convert_format, from_rgb, has_alpha
from vfi_cli.video.encoders import encoder_options, ffmpeg_call, quiet_library, refused_options, with_user_options
from vfi_cli.video.hdr import HDR_ENCODERS
from vfi_cli.video.pyav import rational
from vfi_cli.video.reader import Part, VideoInfo, local_url
from vfi_cli.video.streams import OtherStreams, check_output_streams, codec_name

log = logging.getLogger(__name__)

_AVFMT_NOTIMESTAMPS = 0x80
_AVFMT_VARIABLE_FPS = 0x400


def temporary_path(destination: Path) -> Path:
    """A hidden name beside the destination (same filesystem, so the final rename is atomic)."""
    return destination.with_name(f"{_partial_prefix(destination)}{os.getpid()}{destination.suffix}")


def _partial_prefix(destination: Path) -> str:
    return f".{destination.stem}.vfi-partial-"


def remove_stale_temporaries(destination: Path) -> None:
    """Remove what runs for the same OUT that were killed (SIGKILL, power loss) left, and say so."""
    removed = remove_stale_partials(destination.parent, _partial_prefix(destination), destination.suffix)
    for name in removed:
        log.warning("removed %s, the partial output of an earlier run for %s that was killed", name, destination.name)


def _producible(pix_fmt: str, source: VideoInfo) -> str | None:
    """None when vfi can make frames of ``pix_fmt`` (synthesised from RGB, copied from the input's
    format); else why not. Palette, bitstream and Bayer formats, for one, cannot be."""
    try:
        described = av.VideoFormat(pix_fmt)
    except ValueError:
        return "not a pixel format"
    if described.has_palette or described.is_bit_stream or described.is_bayer or not described.components:
        return "a palette, bitstream, Bayer or hardware format"
    try:
        color = ColorInfo()
        from_rgb(np.zeros((2, 2, 3), np.uint8), pix_fmt, color)
        if source.pix_fmt:
            convert_format(av.VideoFrame(2, 2, source.pix_fmt), pix_fmt, color)
    except (av.FFmpegError, ValueError, TypeError) as exc:
        return f"conversion to it fails: {ffmpeg_message(exc)}"
    return None


# Named when an encoder is missing: those of them this FFmpeg build has.
COMMON_ENCODERS = ("libx264", "libx265", "libsvtav1", "libaom-av1", "libvpx-vp9", "ffv1", "prores_ks", "mpeg4")


def _available(names: tuple[str, ...]) -> list[str]:
    found = []
    for name in names:
        try:
            av.codec.Codec(name, "w")
        except (av.FFmpegError, ValueError):
            continue
        found.append(name)
    return found


def choose_pix_fmt(settings: EncodeSettings, source: VideoInfo) -> str:
    try:
        codec = av.codec.Codec(settings.codec, "w")
    except (av.FFmpegError, ValueError) as exc:
        raise VideoError(f"the FFmpeg that PyAV {av.__version__} brings has no video encoder {settings.codec!r}; "
                         f"it has {', '.join(_available(COMMON_ENCODERS))}") from exc
    if codec.type != "video":
        raise VideoError(f"{settings.codec!r} is not a video encoder")
    supported = [f.name for f in codec.video_formats or []]
    if settings.pix_fmt:
        if supported and settings.pix_fmt not in supported:
            raise VideoError(f"{settings.codec} cannot encode {settings.pix_fmt}; it takes {', '.join(supported)}")
        reason = _producible(settings.pix_fmt, source)
        if reason is not None:
            raise VideoError(f"--pix-fmt {settings.pix_fmt} cannot be written by vfi ({reason}); choose e.g. yuv420p or yuv444p")
        if has_alpha(settings.pix_fmt) and has_alpha(source.pix_fmt):
            raise VideoError(
                f"--pix-fmt {settings.pix_fmt} would keep the input's transparency on copied frames only (synthesised "
                "frames are opaque, so it would flicker); choose a format without alpha"
            )
        return settings.pix_fmt
    # The input's own format first; else one of the same bit depth; 4:4:4 where odd sizes rule out 4:2:0.
    # Never one with alpha: synthesised frames have none, so transparency would flicker.
    odd = bool(source.width % 2 or source.height % 2)
    deep = ["yuv420p10le", "yuv444p10le"] if bit_depth(source.pix_fmt) > 8 else []
    for name in [source.pix_fmt, *deep, "yuv420p", "yuv444p"]:
        if (not supported or name in supported) and not (odd and needs_even_size(name)) and not has_alpha(name):
            if _producible(name, source) is None:
                return name
    for name in supported:
        if not has_alpha(name) and not (odd and needs_even_size(name)) and _producible(name, source) is None:
            return name
    if odd and any(needs_even_size(name) for name in supported):  # the size, not the picture, is what it cannot store
        raise VideoError(f"{settings.codec} stores only even sizes and {source.path.name} is {source.width}x{source.height}; "
                         "libx264 (4:4:4), ffv1 or prores_ks keep it")
    raise VideoError(f"{settings.codec} takes no pixel format vfi can write for this input; choose another --codec")


def needs_even_size(pix_fmt: str) -> bool:
    """Chroma subsampled (4:2:0, 4:2:2 ...): the encoders take only even widths (and heights)."""
    chroma = av.VideoFormat(pix_fmt, 2, 2)
    return chroma.chroma_width() < 2 or chroma.chroma_height() < 2


class VideoWriter:
    """Writes the converted video stream and copies the input's audio, interleaved by time.

    Use as a context manager and call :meth:`commit` on success: leaving the block without it
    (an error, Ctrl-C) removes the temporary file, so the destination is either complete or absent.
    The final rename never replaces a file that appeared at the destination meanwhile, and replaces
    one that was there before only with ``overwrite``.
    """

    def __init__(self, destination: Path, source: VideoInfo, rate: Fraction, settings: EncodeSettings,
                 time_base: Fraction | None = None, overwrite: bool = False, part: Part | None = None,
                 segment: bool = False) -> None:
        """``rate`` is the nominal output rate; ``time_base`` (default 1/rate) the tick on which every
        output time given to :meth:`write` falls (finer for variable-rate output). With a ``part`` (a
        preview), times given to :meth:`write` count from the part's start, the output starts at 0
        and the other streams are cut to the part. A ``segment`` of a longer conversion holds the video
        alone, its times counted from its first frame, which lies at :attr:`offset` on the output's
        clock (:mod:`vfi_cli.video.concat` joins segments): a file's own start would be kept only to
        the millisecond of an MP4 edit list."""
        self.destination = Path(destination)
        self.part = part
        self.segment = segment
        self.offset: Fraction | None = None  # a segment's: where its first frame lies on the output's clock
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
        self._replaces = identity(self.destination)
        if self._replaces is not None and not overwrite:
            raise VideoError(f"output exists: {self.destination} (pass --overwrite to replace it)")
        self.options = self._encoder_options()
        if has_alpha(source.pix_fmt):
            log.warning("the input's transparency (%s) is dropped: synthesised frames have none, so every output "
                        "frame is opaque", source.pix_fmt)
        self.frames_written = 0
        self._container: av.container.OutputContainer | None = None
        self._stream: av.video.stream.VideoStream | None = None
        self._others: OtherStreams | None = None  # the input's audio, subtitles, data, chapters, tags
        self._committed = False
        self._last_pts: int | None = None
        self._tick = self.time_base  # the file's own clock: set by _start() from what the muxer chose
        self._held: int | None = None

    def __enter__(self) -> VideoWriter:
        remove_stale_temporaries(self.destination)
        try:
            self._container = av.open(local_url(self.temporary), mode="w")
        except (av.FFmpegError, ValueError) as exc:
            self._remove_temporary()
            raise VideoError(
                f"cannot write {self.destination.name}: {ffmpeg_message(exc)} "
                "(name it with a video extension such as .mp4 or .mkv)"
            ) from exc
        try:
            self._check_format()
            self._add_video_stream()
            if self.source.path.is_file() and not self.segment:  # not a folder of images; a segment is joined with them
                assert self._stream is not None
                window = None
                if self.part is not None:
                    window = (self.origin, None if self.part.end is None else self.origin + self.part.end - self.part.start)
                self._others = OtherStreams(self.source.path, self._container, self._stream, self.destination.suffix, window)
            self._start()
            self._held = hold(self.temporary)  # until the end: the next run for this OUT leaves the file alone
        except BaseException:
            self._close_quietly()
            self._remove_temporary()
            release(self._held)
            raise
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if not self._committed:
            self._close_quietly()
            self._remove_temporary()
        release(self._held)

    def _check_format(self) -> None:
        """Refuse muxers that write no single file (numbered images, playlists, segments)."""
        assert self._container is not None
        container_format = self._container.format
        if container_format.no_file:
            raise VideoError(
                f"cannot write {self.destination.name}: the {container_format.name} format writes many files or none, not "
                "one video; name OUT with a video extension (.mp4, .mkv) or without one for a folder of PNGs"
            )
        if container_format.flags & _AVFMT_NOTIMESTAMPS and not container_format.name.startswith("mxf"):
            raise VideoError(
                f"cannot write {self.destination.name}: {self.destination.suffix or container_format.name} files are a bare "
                "stream without timestamps or frame rate (players assume 25 fps); use .mp4 or .mkv"
            )
        if not container_format.flags & _AVFMT_VARIABLE_FPS:
            # AVI, MPEG-PS, raw streams: the time base is the frame rate stated in the header, one tick per frame.
            self.time_base = 1 / self.rate

    def _start(self) -> None:
        """Open the encoders and write the header now, so that a stream the container cannot hold
        is reported before any frame is decoded."""
        assert self._container is not None and self._stream is not None
        complaints: list[str] = []
        reason = ffmpeg_call(self._stream.codec_context.open, self.settings.codec, complaints)
        given = self.settings.options
        if reason is not None:
            own = " ".join(f"{key}={value}" for key, value in self.options.items() if key not in dict(given)) or "no options"
            settings = f"({self.pix_fmt}, {self.source.width}x{self.source.height}, {float(self.rate):g} fps, {own})"
            if given:
                shown = " ".join(f"{key}={value}" for key, value in given)
                raise VideoError(f"{self.settings.codec} refused the encoder options ({shown}) with vfi's settings {settings}: {reason}")
            raise VideoError(f"the {self.settings.codec} encoder refused its settings {settings}: {reason}")
        if given and complaints:
            raise VideoError(f"{self.settings.codec} did not take the encoder options: {' '.join(complaints)}")
        unused = refused_options(given, self._stream.codec_context.options)
        if unused:
            raise VideoError(f"{self.settings.codec} does not take the encoder option(s) {', '.join(unused)}; "
                             f"see `ffmpeg -h encoder={self.settings.codec}`")
        reason = ffmpeg_call(self._container.start_encoding)
        if reason is not None:
            streams = ", ".join(f"{s.codec_context.name} {s.type}" for s in self._container.streams)
            other = "" if self._container.format.name == "matroska" else "; try .mkv"
            raise VideoError(
                f"cannot write {self.destination.name}: the {self.destination.suffix or 'chosen'} container refused "
                f"the streams ({streams}): {reason}{other}"
            )
        self._tick = rational(self._stream.time_base) or self.time_base  # the file's own clock, as the muxer set it
        if self._tick > 1 / self.rate:
            raise VideoError(
                f"{self.destination.suffix or 'these'} files store times in ticks of {self._tick} s, too coarse for "
                f"{float(self.rate):g} fps (frames would share timestamps); use .mp4 or .mov"
            )

    def _encoder_options(self) -> dict[str, str]:
        """What the encoder is told: vfi's quality and speed (the preset mapped to the encoder's own),
        quiet library logs and the input's HDR10 metadata (parameter lists merged), and the user's
        ``--encoder-opt`` options over all of them."""
        s = self.settings
        options = encoder_options(s.codec, s.crf, s.preset)
        hdr = self.source.hdr
        params = None if hdr is None else hdr.encoder_params(s.codec)
        if hdr is not None and params is None:
            log.warning("the HDR10 metadata of %s (mastering display, content light level) cannot be written by %s and is "
                        "left out; %s keep it", self.source.path.name, s.codec, ", ".join(HDR_ENCODERS))
        for extra in (quiet_library(s.codec), params or {}):
            options = with_user_options(options, tuple(extra.items()))
        return with_user_options(options, s.options)

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
        stream.options = dict(self.options)
        self._stream = stream

    def write(self, frame: av.VideoFrame, time: Fraction | None = None) -> None:
        """Encode the next output frame at ``time`` (seconds from the first frame; default: the frame
        count over the rate). The video starts where the input's did (a part's at 0), so audio stays aligned."""
        assert self._container is not None and self._stream is not None
        if time is None:
            time = Fraction(self.frames_written) / self.rate
        time = self.origin + time - self.shift  # on the output's clock
        frame.pts = round(time / self.time_base)
        if self.segment:
            if self.offset is None:
                self.offset = frame.pts * self.time_base
            frame.pts -= round(self.offset / self.time_base)
        frame.time_base = self.time_base
        frame.pict_type = av.video.frame.PictureType.NONE
        tick = self._tick
        stored = round(time / tick)
        if self._last_pts is not None and stored <= self._last_pts:
            raise VideoError(
                f"two output frames fall on one tick ({tick} s) of the {self.destination.suffix or 'output'} file's "
                f"clock at {float(time):.6f} s; use .mp4, .mov or .mkv"
            )
        self._last_pts = stored
        try:
            packets = self._stream.encode(frame)
            if self._others is not None:
                self._others.mux_until(time)
            self._container.mux(packets)
        except av.FFmpegError as exc:
            raise VideoError(f"writing {self.destination.name} failed: {ffmpeg_message(exc)}") from exc
        self.frames_written += 1

    def commit(self) -> None:
        """Flush, close, check and move the finished file into place (a segment without frames: no file)."""
        assert self._container is not None and self._stream is not None
        if self.segment and self.frames_written == 0:  # the input ended before the segment: nothing to join
            self._close_quietly()
            self._remove_temporary()
            self._committed = True
            return
        expected = [("video", codec_name(self._stream))]
        try:
            self._container.mux(self._stream.encode(None))
            if self._others is not None:
                self._others.mux_until(None)
                expected += self._others.expected()
            self._container.close()
        except av.FFmpegError as exc:
            raise VideoError(f"writing {self.destination.name} failed: {ffmpeg_message(exc)}") from exc
        finally:
            if self._others is not None:
                self._others.close()
        check_output_streams(self.temporary, expected, self.destination.suffix or self._container.format.name)
        commit_output(self.temporary, self.destination, self._replaces)
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

