"""Everything of the input besides the converted video: audio, subtitle and data streams, chapters,
metadata and the rotation, carried into the output.

A stream is copied packet for packet when the output container really holds it: players must read
that codec from that container (:data:`PLAYABLE_AUDIO`; FFmpeg's muxers take PCM into MP4 as ISO
23003-5 'fpcm', which few players read), and a trial mux into memory (header, a few packets,
trailer), read back, must give the same stream again. The trial finds refusals that come only when
the file is closed, and streams a muxer silently turns into something else (PCM into MPEG-TS
becomes an opaque data stream). Audio that fails is re-encoded (AAC where the container takes it)
and the user is told; other streams that fail are left out with a warning. The finished file is
checked the same way (:func:`check_output_streams`). Copied packets keep their timestamps, so audio stays exactly where it was against the
video, which starts at the input's first frame time.
"""

from __future__ import annotations

import io
import logging
import struct
from collections import deque
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av

from vfi_cli.errors import VideoError
from vfi_cli.video import ffmpeg_message
from vfi_cli.video.pyav import rational, seconds, side_data
from vfi_cli.video.reader import local_url, video_stream

log = logging.getLogger(__name__)

# Written by the muxer itself, or statistics of the input file that the output would contradict.
_SKIPPED_METADATA = {"major_brand", "minor_version", "compatible_brands", "encoder", "duration", "DURATION",
                     "NUMBER_OF_FRAMES", "NUMBER_OF_BYTES", "BPS", "_STATISTICS_TAGS", "_STATISTICS_WRITING_APP",
                     "_STATISTICS_WRITING_DATE_UTC"}
_TRIAL_PACKETS = 3  # packets per stream muxed in the trial
_TRIAL_SCAN = 500  # packets read from the input's start to find them
_AUDIO_ENCODERS = ("aac", "libopus", "libvorbis", "mp2")  # first one the container takes re-encodes refused audio
_AUDIO_BITRATE_PER_CHANNEL = 96_000
_INTERLEAVE_SLACK = 5  # seconds: how far a file's streams may run ahead of each other
_USUAL_LAYOUTS = {1: "mono", 2: "stereo", 3: "2.1", 4: "quad", 5: "5.0", 6: "5.1", 7: "6.1", 8: "7.1"}


def kept_metadata(metadata: dict[str, str]) -> dict[str, str]:
    """The input's tags worth keeping: title, language, creation time, timecode ..."""
    return {key: value for key, value in metadata.items() if key not in _SKIPPED_METADATA}


def _describe(stream: av.stream.Stream) -> str:
    codec = stream.codec_context.name if stream.codec_context is not None else (stream.codec_tag or "unknown codec")
    return f"{stream.type} stream #{stream.index} ({codec})"


# Audio codecs that players decode from each container (FFmpeg names). Containers not listed take
# what their muxer accepts and the trial mux gives back (Matroska, MOV, AVI ...).
_MP4_AUDIO = frozenset({"aac", "mp3", "ac3", "eac3", "alac", "flac", "opus"})
PLAYABLE_AUDIO: dict[str, frozenset[str]] = {
    "mp4": _MP4_AUDIO,
    "ipod": _MP4_AUDIO,  # .m4v, .m4a
    "ismv": _MP4_AUDIO,
    "3gp": frozenset({"aac", "amr_nb", "amr_wb"}),
    "mpegts": frozenset({"aac", "mp3", "mp2", "ac3", "eac3", "opus", "dts", "truehd"}),
    "webm": frozenset({"opus", "vorbis"}),
}


def codec_name(stream: av.stream.Stream) -> str:
    """FFmpeg's name of the stream's codec (``mp3``, not the decoder's ``mp3float``); ``none`` if unknown."""
    context = getattr(stream, "codec_context", None)
    if context is None:
        return "none"
    try:
        return context.codec.canonical_name
    except (AttributeError, ValueError):
        return context.name or "none"


def playable_copy(format_name: str, stream: av.stream.Stream, packets: list[av.Packet]) -> str | None:
    """Whether a packet-for-packet copy of ``stream`` in a ``format_name`` file is really playable:
    None when it is, else why not.

    Audio must be a codec players read from that container (:data:`PLAYABLE_AUDIO`); then a copy
    with a few of its ``packets`` is muxed into memory, and read back: the muxer must neither refuse
    it (some refuse only when the file is closed) nor turn it into another kind of stream.
    """
    codec = codec_name(stream)
    allowed = PLAYABLE_AUDIO.get(format_name)
    if stream.type == "audio" and allowed is not None and codec not in allowed:
        return f"few players decode {codec} audio from this container"
    buffer = io.BytesIO()
    try:
        with av.open(buffer, mode="w", format=format_name) as trial:
            copy = trial.add_stream_from_template(stream)
            trial.start_encoding()
            for packet in packets:
                packet.stream = copy
                trial.mux(packet)
    except (av.FFmpegError, ValueError, AttributeError, NotImplementedError) as exc:
        return ffmpeg_message(exc) if isinstance(exc, av.FFmpegError) else str(exc)
    found = _read_back(buffer, format_name)
    if found is None:
        return None  # a format that cannot be read back from memory: the muxer's acceptance stands
    if (stream.type, codec) not in found:
        shown = ", ".join(f"{kind} ({name})" for kind, name in found) or "nothing"
        return f"it would be stored as {shown}"
    return None


def _read_back(buffer: io.BytesIO, format_name: str) -> list[tuple[str, str]] | None:
    """(kind, codec) of the streams in an in-memory file, read with the demuxer of ``format_name``
    (a few packets are too few for FFmpeg to guess the format), or by probing where there is none."""
    for demuxer in (format_name, None):
        buffer.seek(0)
        try:
            with av.open(buffer, mode="r", format=demuxer) as back:
                return [(s.type, codec_name(s)) for s in back.streams]
        except (av.FFmpegError, ValueError):
            continue
    return None


def check_output_streams(path: Path, expected: list[tuple[str, str]], label: str) -> None:
    """The finished file at ``path`` must hold the streams (kind, codec) that were written into it,
    in that order; raises :class:`VideoError` when the muxer turned one into something else."""
    try:
        with av.open(local_url(path)) as written:
            found = [(s.type, codec_name(s)) for s in written.streams]
    except av.FFmpegError as exc:
        raise VideoError(f"the finished {label} file cannot be read back: {ffmpeg_message(exc)}") from exc
    for (kind, codec), got in zip(expected, found):
        if (kind, codec) != got:
            raise VideoError(f"the {label} container stored the {kind} stream ({codec}) as {got[0]} ({got[1]}); try .mkv")
    if len(found) < len(expected):
        raise VideoError(f"the {label} container dropped {len(expected) - len(found)} of the streams written to it; try .mkv")


def _sample_packets(path: Path, indices: set[int]) -> dict[int, list[av.Packet]]:
    """The first few packets of each stream in ``indices``, from the start of the input."""
    found: dict[int, list[av.Packet]] = {index: [] for index in indices}
    if not indices:
        return found
    with av.open(local_url(path)) as source:
        streams = [s for s in source.streams if s.index in indices]
        try:
            for scanned, packet in enumerate(source.demux(*streams)):
                if scanned >= _TRIAL_SCAN or all(len(v) >= _TRIAL_PACKETS for v in found.values()):
                    break
                if packet.size and (packet.dts is not None or packet.pts is not None):
                    if len(found[packet.stream_index]) < _TRIAL_PACKETS:
                        found[packet.stream_index].append(packet)
        except av.FFmpegError:
            pass  # a damaged file: trial with what was read
    return found


def display_matrix(path: Path) -> list[int] | None:
    """The rotation/flip matrix of the input's first video stream (as its first frame carries it), if any."""
    with av.open(local_url(path)) as source:
        stream = video_stream(source)
        if stream is None:
            return None
        try:
            frame = next(source.decode(stream), None)
        except av.FFmpegError:
            return None
        if frame is None:
            return None
        matrix = side_data(frame, av.sidedata.sidedata.Type.DISPLAYMATRIX)
    return None if matrix is None or len(matrix) < 36 else list(struct.unpack("<9i", matrix[:36]))


class _AudioReencoder:
    """Decode one audio stream and encode it with a codec the container takes, timestamps kept
    (with a ``window``: decoded frames outside it left out, the others moved by its start)."""

    def __init__(self, source: av.audio.stream.AudioStream, container: av.container.OutputContainer, codec: str,
                 window: Window | None = None) -> None:
        self.source = source
        self.window = window
        decoder = source.codec_context
        encoder_rates = av.codec.Codec(codec, "w").audio_rates or ()
        rate = decoder.sample_rate
        if encoder_rates and rate not in encoder_rates:
            rate = min(encoder_rates, key=lambda r: abs(r - rate))
        layout = decoder.layout
        if layout.name.endswith("channels"):  # no channel order stated (e.g. PCM from Matroska): the usual one
            layout = av.AudioLayout(_USUAL_LAYOUTS.get(decoder.channels, layout.name))
        self.stream = container.add_stream(codec, rate=rate, layout=layout)
        self.stream.bit_rate = min(640_000, _AUDIO_BITRATE_PER_CHANNEL * decoder.channels)
        self.stream.codec_context.time_base = Fraction(1, rate)
        self.stream.metadata.update(kept_metadata(source.metadata))
        self._resampler: av.AudioResampler | None = None

    def _resampled(self, frame: av.AudioFrame | None) -> list[av.AudioFrame]:
        if self._resampler is None:
            context = self.stream.codec_context
            self._resampler = av.AudioResampler(format=context.format, layout=context.layout, rate=context.sample_rate,
                                                frame_size=context.frame_size or None)
        return self._resampler.resample(frame)

    def packets(self, packet: av.Packet | None) -> list[av.Packet]:
        """Encoded packets for one input packet (None: flush everything at the end)."""
        out: list[av.Packet] = []
        try:
            frames = self.source.codec_context.decode(packet)
        except av.FFmpegError:
            frames = []  # one damaged audio packet: a short gap, as a player would have
        for frame in frames:
            if self.window is not None:
                time = seconds(frame.pts, frame.time_base)
                if time is None or not self.window.keeps(time):
                    continue
                frame.pts -= round(self.window.start / rational(frame.time_base))
            for resampled in self._resampled(frame):
                out.extend(self.stream.encode(resampled))
        if packet is None:
            for resampled in self._resampled(None):
                out.extend(self.stream.encode(resampled))
            out.extend(self.stream.encode(None))
        return out


class Window:
    """A span [start, end) of the input's clock (seconds, as its timestamps say) cut out for a preview:
    packets and chapters starting in it are kept and moved back by ``start``; end None: to the end."""

    def __init__(self, start: Fraction, end: Fraction | None) -> None:
        self.start, self.end = Fraction(start), None if end is None else Fraction(end)

    def keeps(self, time: Fraction) -> bool:
        return time >= self.start and (self.end is None or time < self.end)

    def passed(self, packet: av.Packet) -> bool:
        """Whether ``packet`` lies so far after the end (the interleaving slack of a file, 5 s) that none
        of the window can come after it."""
        stamp = packet.dts if packet.dts is not None else packet.pts
        time = seconds(stamp, packet.time_base)
        return self.end is not None and time is not None and time > self.end + _INTERLEAVE_SLACK

    def chapters(self, chapters: list[dict]) -> list[dict]:
        """The chapters overlapping the window, clipped to it and moved back by its start."""
        kept = []
        for chapter in chapters:
            base = rational(chapter["time_base"])
            begin, finish = chapter["start"] * base, chapter["end"] * base
            if finish <= self.start or (self.end is not None and begin >= self.end):
                continue
            finish = finish if self.end is None else min(finish, self.end)
            kept.append(chapter | {"start": round((max(begin, self.start) - self.start) / base),
                                   "end": round((finish - self.start) / base)})
        return kept


class OtherStreams:
    """Adds the input's non-video streams, chapters, metadata and rotation to ``container`` (before its
    header is written), then hands their packets to the muxer in time with the video.

    With a ``window`` (start, end) of the input's clock (a preview), only packets that start inside it
    are kept (copied streams are cut at packet boundaries: up to one packet, 21 ms of AAC at 48 kHz,
    later at the start), all moved back by its start, so the output starts at 0 in sync.
    """

    def __init__(self, path: Path, container: av.container.OutputContainer, video: av.video.stream.VideoStream,
                 label: str, window: tuple[Fraction, Fraction | None] | None = None) -> None:
        """``label`` names the output's kind in messages (its suffix, such as .mp4)."""
        self.path = Path(path)
        self._window = None if window is None else Window(*window)
        self._container = container
        self._label = label or container.format.name
        self._copies: dict[int, av.stream.Stream] = {}
        self._encoders: dict[int, _AudioReencoder] = {}
        self._input = av.open(local_url(self.path))
        try:
            self._add_streams(video)
        except BaseException:
            self.close()
            raise
        wanted = [s for s in self._input.streams if s.index in self._copies or s.index in self._encoders]
        if self._window is not None and wanted and self._window.start > 0:
            try:  # to the last keyframe before the window (of the video: the other streams follow it in the file)
                self._input.seek(int(self._window.start * av.time_base), backward=True)
            except av.FFmpegError:
                pass  # read from the start; the window still leaves out what precedes it
        self._demux: Iterator[av.Packet] | None = self._input.demux(*wanted) if wanted else None
        self._ready: deque[av.Packet] = deque()

    def _add_streams(self, video: av.video.stream.VideoStream) -> None:
        source, container, suffix = self._input, self._container, self._label
        container.metadata.update(kept_metadata(source.metadata))
        converted = video_stream(source)
        if converted is not None:
            video.metadata.update(kept_metadata(converted.metadata))
        matrix = display_matrix(self.path)
        if matrix is not None:
            video.set_display_matrix(matrix)
        chapters = source.chapters()
        if self._window is not None:
            chapters = self._window.chapters(chapters)
        if chapters:
            container.set_chapters(chapters)
        others = [s for s in source.streams if s.type in ("audio", "subtitle", "data")]
        samples = _sample_packets(self.path, {s.index for s in others})
        for stream in others:
            if stream.type == "data" and "timecode" in stream.metadata:
                continue  # a timecode track: the muxer writes it again from the video's timecode tag
            refusal = playable_copy(container.format.name, stream, samples[stream.index])
            if refusal is None:
                copy = container.add_stream_from_template(stream)
                copy.metadata.update(kept_metadata(stream.metadata))
                copy.disposition = stream.disposition
                self._copies[stream.index] = copy
                log.info("%s copied packet for packet", _describe(stream))
            elif stream.type == "audio" and self._audio_encoder() is None:  # GIF, Y4M, raw H.264: no audio at all
                log.warning("%s is left out: %s files hold no audio; use .mp4 or .mkv to keep it", _describe(stream), suffix)
            elif stream.type == "audio":
                codec = self._audio_encoder()
                assert codec is not None
                try:
                    self._encoders[stream.index] = _AudioReencoder(stream, container, codec, self._window)
                except (av.FFmpegError, ValueError) as exc:
                    raise VideoError(f"cannot re-encode {_describe(stream)} for {suffix} files: {exc}") from exc
                log.warning("%s cannot be copied into %s files (%s); re-encoding it as %s",
                            _describe(stream), suffix, refusal, codec.removeprefix("lib").upper())
            else:
                log.warning("%s cannot go into %s files (%s) and is left out; use .mkv to keep it",
                            _describe(stream), suffix, refusal)
        for stream in source.streams:
            if stream.type == "attachment" or (stream.type == "video" and (converted is None or stream.index != converted.index)):
                log.warning("%s is not carried into the output", _describe(stream))

    def _audio_encoder(self) -> str | None:
        """AAC, or the first audio encoder this container takes (Opus for WebM); None when it takes none."""
        supported = self._container.supported_codecs
        for name in _AUDIO_ENCODERS:
            if name in supported and name in av.codecs_available:
                return name
        return "aac" if not supported else None  # a muxer that does not list its codecs is tried with AAC

    def _refill(self) -> bool:
        """Read input packets until one or more output packets are ready; False at the end."""
        while not self._ready and self._demux is not None:
            try:
                packet = next(self._demux, None)
            except av.FFmpegError as exc:
                log.warning("reading the streams of %s stopped early: %s", self.path.name, ffmpeg_message(exc))
                packet = None
            if packet is not None and self._window is not None and self._window.passed(packet):
                packet = None  # far enough past a preview's end that nothing of the window can follow
            if packet is None:
                self._demux = None
                for encoder in self._encoders.values():
                    self._ready.extend(encoder.packets(None))
                break
            index = packet.stream_index
            if index in self._encoders:
                self._ready.extend(self._encoders[index].packets(packet))
            elif packet.size and (packet.dts is not None or packet.pts is not None):
                if self._window is not None and not self._moved(packet):
                    continue
                packet.stream = self._copies[index]
                self._ready.append(packet)
        return bool(self._ready)

    def expected(self) -> list[tuple[str, str]]:
        """(kind, codec) of each stream added to the output, in the order they were added."""
        added = {copy.index: (copy.type, codec_name(source)) for source, copy in
                 ((self._input.streams[index], copy) for index, copy in self._copies.items())}
        for encoder in self._encoders.values():
            added[encoder.stream.index] = ("audio", codec_name(encoder.stream))
        return [added[index] for index in sorted(added)]

    def _moved(self, packet: av.Packet) -> bool:
        """Move a copied packet back by the window's start; False (unmoved) when it starts outside the window."""
        assert self._window is not None
        stamp = packet.pts if packet.pts is not None else packet.dts
        time = seconds(stamp, packet.time_base)
        if time is None or not self._window.keeps(time):
            return False
        offset = round(self._window.start / rational(packet.time_base))
        packet.pts = None if packet.pts is None else packet.pts - offset
        packet.dts = None if packet.dts is None else packet.dts - offset
        return True

    def mux_until(self, time: Fraction | None) -> None:
        """Mux the packets that start at or before ``time`` (the output's clock; None: all the rest)."""
        while self._refill():
            packet = self._ready[0]
            stamp = packet.pts if packet.pts is not None else packet.dts
            stamped = seconds(stamp, packet.time_base)
            if time is not None and stamped is not None and stamped > time:
                return
            self._ready.popleft()
            self._container.mux(packet)

    def close(self) -> None:
        self._input.close()
