"""Everything besides the video survives conversion: audio (in sync), subtitles, data, chapters, tags, rotation."""

from __future__ import annotations

import logging
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from tests.conftest import BlendInterpolator, smooth_texture
from vfi_cli.config import ConvertOptions, EncodeSettings
from vfi_cli.engine.pipeline import convert_video
from vfi_cli.results import Summary
from vfi_cli.video.reader import probe

FAST = EncodeSettings(codec="libx264", crf=30, preset="ultrafast")
SRT = "1\n00:00:00,100 --> 00:00:00,400\nHello\n\n2\n00:00:00,500 --> 00:00:00,700\nWorld\n\n"


def make_source(path: Path, *, frames: int = 12, rate: Fraction = Fraction(24), size: tuple[int, int] = (48, 64),
                audio: str | None = "aac", audio_start: float = 0.0, subtitles: bool = False, chapters: bool = False,
                rotation: int | None = None, timecode: str | None = None, tags: bool = False) -> Path:
    """A small clip with whichever extra streams and tags a test needs; audio is a 440 Hz tone with
    a click at each whole second, starting ``audio_start`` seconds after the video."""
    seconds = float(frames / rate)
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=rate, options={"preset": "ultrafast", "crf": "30"})
        video.height, video.width = size
        video.pix_fmt = "yuv420p"
        if rotation is not None:
            video.set_display_rotation(rotation)
        if timecode is not None:
            video.metadata["timecode"] = timecode
        if tags:
            container.metadata["title"] = "Évora at night"
            video.metadata["language"] = "por"
        sound = None
        if audio is not None:
            sound = container.add_stream(audio, rate=48000, layout="stereo")
            if tags:
                sound.metadata["language"] = "fra"
                sound.metadata["title"] = "commentary"
        subtitle = None
        if subtitles:
            srt_path = path.with_suffix(".srt")
            srt_path.write_text(SRT)
            srt = av.open(str(srt_path))
            subtitle = container.add_stream_from_template(srt.streams.subtitles[0])
            subtitle.metadata["language"] = "deu"
        if chapters:
            container.set_chapters([
                {"id": 1, "start": 0, "end": 250, "time_base": Fraction(1, 1000), "metadata": {"title": "Opening"}},
                {"id": 2, "start": 250, "end": int(seconds * 1000), "time_base": Fraction(1, 1000), "metadata": {"title": "Rest"}},
            ])
        texture = smooth_texture(*size)
        for index in range(frames):
            rgb = np.roll(texture, index, axis=1)  # a pan that wraps round: cheap for a minute of video
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts, frame.time_base = index, 1 / rate
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
        if sound is not None:
            _write_tone(container, sound, seconds, audio_start)
        if subtitle is not None:
            for packet in srt.demux(srt.streams.subtitles[0]):
                if packet.size:
                    packet.stream = subtitle
                    container.mux(packet)
            srt.close()
    return path


def _write_tone(container: av.container.OutputContainer, stream: av.audio.stream.AudioStream, seconds: float,
                start: float) -> None:
    rate = 48000
    samples = int(rate * seconds)
    t = np.arange(samples) / rate
    tone = 0.2 * np.sin(2 * np.pi * 440 * t)
    tone[(np.arange(samples) % rate) < 48] = 0.9  # a 1 ms click each second
    interleaved = np.repeat(tone, 2).reshape(1, -1)
    offset = round(start * rate)
    fmt = stream.codec_context.format.name
    for begin in range(0, samples, 1024):
        chunk = interleaved[:, 2 * begin : 2 * min(begin + 1024, samples)]
        if fmt == "s16":
            frame = av.AudioFrame.from_ndarray((chunk * 32767).astype(np.int16), format="s16", layout="stereo")
        else:
            frame = av.AudioFrame.from_ndarray(chunk.reshape(-1, 2).T.astype(np.float32).copy(), format="fltp", layout="stereo")
        frame.sample_rate, frame.pts, frame.time_base = rate, offset + begin, Fraction(1, rate)
        container.mux(stream.encode(frame))
    container.mux(stream.encode(None))


def convert(source: Path, destination: Path, fps: Fraction | None = None, encode: EncodeSettings = FAST) -> Summary:
    options = ConvertOptions(factor=None if fps else 2, fps=fps, encode=encode)
    return convert_video(probe(source), destination, BlendInterpolator(), options, batch_size=8)


def _packets(path: Path, kind: str) -> list[bytes]:
    with av.open(str(path)) as container:
        streams = [s for s in container.streams if s.type == kind]
        return [bytes(p) for p in container.demux(*streams) if p.size]


def _timing(path: Path, kind: str) -> tuple[Fraction, Fraction]:
    """(start, end) in seconds of the first stream of ``kind``, from its packets' timestamps and durations."""
    with av.open(str(path)) as container:
        stream = next(s for s in container.streams if s.type == kind)
        spans = [(p.pts, p.pts + (p.duration or 0)) for p in container.demux(stream) if p.size and p.pts is not None]
        base = stream.time_base
        start = Fraction(min(a for a, _ in spans)) * base
        if stream.start_time is not None and kind == "audio":
            start = max(start, Fraction(stream.start_time) * base)  # the edit list hides the encoder's priming
        return start, Fraction(max(b for _, b in spans)) * base


def _click_times(path: Path) -> list[Fraction]:
    """When each click of :func:`_write_tone` is heard in the decoded audio (seconds, as the file states them)."""
    times: list[Fraction] = []
    with av.open(str(path)) as container:
        for frame in container.decode(audio=0):
            samples = frame.to_ndarray()
            left = samples[0] if frame.format.is_planar else samples[0, :: len(frame.layout.channels)]
            level = np.abs(left.astype(np.float64)) / (32768.0 if left.dtype == np.int16 else 1.0)
            for index in np.flatnonzero(level > 0.6):
                time = Fraction(frame.pts) * frame.time_base + Fraction(int(index), frame.sample_rate)
                if not times or time - times[-1] > Fraction(1, 10):
                    times.append(time)
    return times


def test_audio_subtitles_chapters_and_tags_are_copied_into_mkv(tmp_path: Path) -> None:
    source = make_source(tmp_path / "in.mkv", subtitles=True, chapters=True, tags=True)
    out = tmp_path / "out.mkv"
    convert(source, out)
    with av.open(str(source)) as before, av.open(str(out)) as after:
        assert [s.type for s in after.streams] == ["video", "audio", "subtitle"]
        assert after.metadata["title"] == "Évora at night"
        assert after.streams.video[0].metadata.get("language") == "por"
        assert {k: after.streams.audio[0].metadata.get(k) for k in ("language", "title")} == {"language": "fra", "title": "commentary"}
        assert after.streams.subtitles[0].metadata.get("language") == "deu"
        assert after.streams.audio[0].codec_context.name == "aac"
        chapters_before = [(Fraction(c["start"]) * c["time_base"], c["metadata"]["title"]) for c in before.chapters()]
        chapters_after = [(Fraction(c["start"]) * c["time_base"], c["metadata"]["title"]) for c in after.chapters()]
        assert chapters_after == chapters_before and len(chapters_after) == 2
    # Copied, not re-encoded: the very same packets.
    assert _packets(out, "audio") == _packets(source, "audio")
    assert _packets(out, "subtitle") == _packets(source, "subtitle")


def test_pcm_audio_into_mp4_is_reencoded_and_subtitles_dropped_with_a_warning(tmp_path: Path, caplog) -> None:
    source = make_source(tmp_path / "in.mkv", frames=24, audio="pcm_s16le", audio_start=0.25, subtitles=True)
    out = tmp_path / "out.mp4"
    with caplog.at_level(logging.WARNING, logger="vfi_cli"):
        convert(source, out)
    messages = [r.getMessage() for r in caplog.records]
    assert any("pcm_s16le" in m and "re-encoding it as AAC" in m for m in messages), messages
    assert any("subtitle" in m and "left out" in m for m in messages), messages
    assert all("\n" not in m for m in messages)
    with av.open(str(out)) as after:
        assert [(s.type, s.codec_context.name) for s in after.streams] == [("video", "h264"), ("audio", "aac")]
        audio = after.streams.audio[0]
        assert audio.sample_rate == 48000 and audio.channels == 2
    # Each click is heard when it was before (against the video, which starts at 0 in both files).
    clicks_before, clicks_after = _click_times(source), _click_times(out)
    assert clicks_before == [Fraction(1, 4)] and _timing(out, "video")[0] == _timing(source, "video")[0] == 0
    assert len(clicks_after) == 1 and abs(clicks_after[0] - clicks_before[0]) <= Fraction(1, 1000)


def test_webm_gets_opus_when_its_audio_cannot_be_copied(tmp_path: Path, caplog) -> None:
    source = make_source(tmp_path / "in.mp4")
    out = tmp_path / "out.webm"
    with caplog.at_level(logging.WARNING, logger="vfi_cli"):
        convert(source, out, encode=EncodeSettings(codec="libvpx-vp9", crf=40, preset=None))
    assert any("re-encoding it as OPUS" in r.getMessage() for r in caplog.records)
    with av.open(str(out)) as after:
        assert after.streams.audio[0].codec_context.name == "opus"


def test_rotation_and_timecode_are_kept(tmp_path: Path) -> None:
    source = make_source(tmp_path / "in.mov", rotation=90, timecode="01:00:00:00", audio=None)
    out = tmp_path / "out.mov"
    convert(source, out)
    with av.open(str(out)) as after:
        assert after.streams.video[0].metadata.get("timecode") == "01:00:00:00"
        assert [s.type for s in after.streams].count("data") == 1  # one timecode track, not two
        assert next(after.decode(video=0)).rotation == 90


def test_audio_stays_in_sync_over_a_minute_at_23_976_to_60(tmp_path: Path) -> None:
    """A minute of 64x48 video at 24000/1001 fps with audio starting 0.25 s late, converted to 60 fps:
    the audio is the same packets, and its start and end sit where they sat against the video,
    within one audio frame (1024 samples, 21 ms)."""
    rate = Fraction(24000, 1001)
    source = make_source(tmp_path / "in.mp4", frames=1439, rate=rate, audio_start=0.25)
    out = tmp_path / "out.mp4"
    summary = convert(source, out, fps=Fraction(60))
    assert summary.frames_out == round(Fraction(1439) / rate * 60)
    one_aac_frame = Fraction(1024, 48000)
    (vs_in, ve_in), (as_in, ae_in) = _timing(source, "video"), _timing(source, "audio")
    (vs_out, ve_out), (as_out, ae_out) = _timing(out, "video"), _timing(out, "audio")
    assert abs(vs_out - vs_in) <= one_aac_frame and abs(ve_out - ve_in) <= one_aac_frame
    assert abs((as_out - vs_out) - (as_in - vs_in)) <= one_aac_frame  # the 0.25 s offset is kept
    assert abs((ae_out - ve_out) - (ae_in - ve_in)) <= one_aac_frame  # no drift by the end
    assert ve_out - vs_out == pytest.approx(60.02, abs=0.01)
    assert _packets(out, "audio") == _packets(source, "audio")
    clicks = _click_times(out)  # heard at 0.25 s, 1.25 s ... 60.25 s from the video's start
    assert len(clicks) == 61  # the audio lasts 60.018 s: clicks at 0 ... 60 s into it
    assert max(abs(click - vs_out - Fraction(1, 4) - k) for k, click in enumerate(clicks)) <= one_aac_frame
