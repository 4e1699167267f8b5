"""Joining the segments of a long conversion into one file without re-encoding.

Each segment file (written by :class:`~vfi_cli.video.writer.VideoWriter` with ``segment``) holds
video alone, its times counted from its first frame; its packets are moved by where that frame
lies on the output's clock and muxed in order, so the joined file has the timestamps a whole run
writes (B-frames' decoding times continue from one segment to the next, as an encoder that ran
through would have put them). The input's other streams (audio, subtitles, chapters, metadata) are
muxed in as the writer of a whole run does, and the file appears complete or not at all.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import av

from vfi_cli.errors import VideoError
from vfi_cli.files import commit_output, hold, identity, release
from vfi_cli.video import ffmpeg_message
from vfi_cli.video.pyav import rational
from vfi_cli.video.reader import VideoInfo, local_url
from vfi_cli.video.streams import OtherStreams, check_output_streams, codec_name
from vfi_cli.video.writer import remove_stale_temporaries, temporary_path


def segment_suffix(codec: str) -> str | None:
    """The container segment files of ``codec`` (an encoder's name) are written in: MP4, else MOV, whose
    ticks divide the encoder's so that every time is kept exactly; None when neither holds the codec."""
    try:
        name = av.codec.Codec(codec, "w").canonical_name
    except (av.FFmpegError, ValueError):
        return None
    for format_name in ("mp4", "mov"):
        with av.open(io.BytesIO(), mode="w", format=format_name) as probe:
            if name in probe.supported_codecs:
                return f".{format_name}"
    return None


def join_segments(segments: Sequence[tuple[Path, Fraction]], destination: Path, source: VideoInfo,
                  time_base: Fraction, *, overwrite: bool = False) -> None:
    """Join ``segments`` (file, where its first frame lies on the output's clock, in seconds) into
    ``destination``, with ``source``'s other streams; ``time_base`` is the encoder's tick (that of a
    whole run, which the container's own tick is chosen from).

    Raises:
        VideoError: a segment that cannot be read or does not continue the first one's stream, an
            existing ``destination`` without ``overwrite``, a file that appeared there meanwhile.
    """
    destination = Path(destination)
    replaces = identity(destination)
    if replaces is not None and not overwrite:
        raise VideoError(f"output exists: {destination} (pass --overwrite to replace it)")
    remove_stale_temporaries(destination)
    temporary = temporary_path(destination)
    label = destination.suffix or "output"
    container: av.container.OutputContainer | None = None
    others: OtherStreams | None = None
    held: int | None = None
    try:
        container = av.open(local_url(temporary), mode="w")
        with _open(segments[0][0]) as first:
            template = first.streams.video[0]
            extradata = template.codec_context.extradata
            video = container.add_stream_from_template(template)
        video.codec_context.time_base = time_base
        video.metadata.clear()  # the segment's muxer tags; the input's own are added with the other streams
        if source.path.is_file():
            others = OtherStreams(source.path, container, video, label)
        container.start_encoding()
        held = hold(temporary)
        for path, offset in segments:
            _copy_video(path, offset, extradata, container, video, others)
        expected = [("video", codec_name(video))]
        if others is not None:
            others.mux_until(None)
            expected += others.expected()
        container.close()
    except av.FFmpegError as exc:
        _discard(container, temporary)
        raise VideoError(f"joining the segments of {destination.name} failed: {ffmpeg_message(exc)}") from exc
    except BaseException:
        _discard(container, temporary)
        raise
    finally:
        if others is not None:
            others.close()
        release(held)
    try:
        check_output_streams(temporary, expected, label)
        commit_output(temporary, destination, replaces)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _open(path: Path) -> av.container.InputContainer:
    try:
        return av.open(local_url(path))
    except av.FFmpegError as exc:
        raise VideoError(f"cannot read the segment {path.name}: {ffmpeg_message(exc)}") from exc


def _copy_video(path: Path, offset: Fraction, extradata: bytes | None, container: av.container.OutputContainer,
                video: av.video.stream.VideoStream, others: OtherStreams | None) -> None:
    """Mux the video packets of one segment, moved by ``offset`` seconds, and the other streams up to them."""
    with _open(path) as segment:
        stream = segment.streams.video[0]
        if stream.codec_context.extradata != extradata:
            raise VideoError(f"the segment {path.name} was encoded with other stream headers than the first; "
                             "run again with --no-resume")
        tick = rational(stream.time_base)
        shift = offset / tick
        if shift.denominator != 1:
            raise VideoError(f"the segment {path.name} starts at {offset} s, off its file's tick of {tick} s")
        for packet in segment.demux(stream):
            if not packet.size:
                continue
            packet.pts = None if packet.pts is None else packet.pts + int(shift)
            packet.dts = None if packet.dts is None else packet.dts + int(shift)
            packet.stream = video
            packet.time_base = tick
            stamp = packet.dts if packet.dts is not None else packet.pts
            if others is not None and stamp is not None:
                others.mux_until(stamp * tick)
            container.mux(packet)


def _discard(container: av.container.OutputContainer | None, temporary: Path) -> None:
    if container is not None:
        try:
            container.close()
        except Exception:  # noqa: BLE001 - already failing; the temporary file is removed next
            pass
    temporary.unlink(missing_ok=True)
