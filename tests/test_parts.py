"""Previews (--start, --end, --duration): the part's frames at exact times from 0, the same frames a
whole conversion makes there, audio cut to match and in sync, chapters and subtitles moved with it."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from click.testing import CliRunner

from tests.conftest import BlendInterpolator, decode_video, translating_frames, write_video
from tests.test_cli import assert_one_line_error
from tests.test_streams import _click_times, _packets, _timing, make_source
from vfi_cli import cli
from vfi_cli.config import ConvertOptions, EncodeSettings
from vfi_cli.engine.pipeline import convert_video
from vfi_cli.engine.schedule import Schedule
from vfi_cli.units import parse_time
from vfi_cli.video.images import probe_images
from vfi_cli.video.parts import locate_part
from vfi_cli.video.reader import FrameReader, Part, probe

LOSSLESS = EncodeSettings(codec="ffv1", crf=None, preset=None, pix_fmt="yuv444p")
FAST = EncodeSettings(codec="libx264", crf=30, preset="ultrafast")
ONE_AAC_FRAME = Fraction(1024, 48000)


def on_the_grid(times: list[Fraction], rate: int, count: int) -> bool:
    """Frame j at j / rate, as Matroska's millisecond timestamps hold it."""
    return len(times) == count and all(abs(t - Fraction(j, rate)) <= Fraction(1, 2000) for j, t in enumerate(times))


def convert(source: Path, destination: Path, encode: EncodeSettings = FAST, **options):
    return convert_video(probe(source) if source.is_file() else probe_images(source, Fraction(24)), destination,
                         BlendInterpolator(), ConvertOptions(encode=encode, **options), batch_size=8)


def test_times_are_read_as_seconds_minutes_or_hours() -> None:
    assert [parse_time(t) for t in ("90", "2.5", "1:30", "01:02:03.250", ".5")] == [90, Fraction(5, 2), 90, Fraction(14893, 4), Fraction(1, 2)]
    for bad in ("-1", "1:60", "a", "1:2:3:4"):
        with pytest.raises(ValueError):
            parse_time(bad)
    with pytest.raises(ValueError, match="either end or duration"):
        ConvertOptions(start=1, end=3, duration=1)
    with pytest.raises(ValueError, match="must come after start"):
        ConvertOptions(start=3, end=2)


@pytest.mark.parametrize(("factor", "end"), [(2, Fraction(3)), (3, Fraction(7, 3))])
def test_schedule_with_an_end_covers_exactly_zero_to_end(factor: int, end: Fraction) -> None:
    """Frames at or after ``end`` only close the last interval: its frames are made towards the next input."""
    schedule = Schedule(Fraction(24), Fraction(24 * factor), factor=factor, end=end)
    made = [job for k in range(200) for job in schedule.add_input(Fraction(k, 24))] + schedule.finish()
    assert [job.time for job in made] == [Fraction(j, 24 * factor) for j in range(int(end * 24 * factor))]
    assert made[-1].left == int(end * 24) - 1 and made[-1].t == Fraction(factor - 1, factor)  # synthesised, not held
    assert schedule.used == int(end * 24) and schedule.output_duration == end


def test_the_reader_seeks_to_the_part_and_stops_after_its_end(tmp_path: Path) -> None:
    source = write_video(tmp_path / "in.mp4", translating_frames(96, 32, 48, step=(1, 0)), 24,
                         options={"crf": "0", "preset": "ultrafast", "g": "12"})
    info = probe(source)
    reader = FrameReader(info, part=Part(Fraction(50, 24), Fraction(60, 24)))
    frames = list(reader)
    assert [f.time for f in frames] == [Fraction(k, 24) for k in range(11)]  # frames 50..60, the last one past the end
    assert reader.frames_decoded <= 12 + 11 + 12 and reader.frames_lost == 0  # from the keyframe at 48, not from 0
    _, whole = decode_video(source)
    assert all((f.picture.to_ndarray(format="rgb24") == whole[50 + k]).all() for k, f in enumerate(frames))


def test_a_part_holds_the_frames_of_the_whole_conversion_from_zero(tmp_path: Path) -> None:
    source = make_source(tmp_path / "in.mkv", frames=96, audio=None)
    whole, part = tmp_path / "whole.mkv", tmp_path / "part.mkv"
    convert(source, whole, LOSSLESS, factor=2)
    summary = convert(source, part, LOSSLESS, factor=2, start="1.02", duration="1.5")
    start = locate_part(probe(source), Fraction(102, 100)).start
    assert summary.start == start == Fraction(1042, 1000)  # frame 25 (at 1.0417 s, a Matroska millisecond tick)
    times, frames = decode_video(part)
    _, all_frames = decode_video(whole)
    assert len(frames) == summary.frames_out == 72 and summary.frames_in == 36  # 1.5 s at 48 fps from 36 input frames
    assert on_the_grid(times, 48, 72)
    assert all((frames[j] == all_frames[50 + j]).all() for j in range(72))  # the last two made towards frame 61, as there


@pytest.mark.parametrize(("suffix", "audio", "fps"), [(".mp4", "aac", None), (".mp4", "aac", "60"), (".mkv", "pcm_s16le", None)])
def test_audio_is_cut_to_the_part_and_stays_in_sync(tmp_path: Path, suffix: str, audio: str, fps: str | None) -> None:
    source = make_source(tmp_path / f"in{suffix}", frames=120, audio=audio, audio_start=0.25)
    out = tmp_path / "out.mp4"
    summary = convert(source, out, factor=None if fps else 2, fps=fps, start="1.1", end="4.2")
    start = summary.start
    assert start == Fraction(27, 24) or abs(start - Fraction(27, 24)) <= Fraction(1, 1000)  # the first frame from 1.1 s
    (video_start, video_end), (audio_start, audio_end) = _timing(out, "video"), _timing(out, "audio")
    assert video_start == 0 and video_end == summary.duration_out == summary.frames_out / summary.rate_out
    assert 0 <= summary.duration_out - (Fraction(42, 10) - start) < 1 / summary.rate_out  # the last frame shown ends after 4.2 s
    assert 0 <= audio_start <= ONE_AAC_FRAME and abs(audio_end - video_end) <= ONE_AAC_FRAME
    clicks_in = [c for c in _click_times(source) if start <= c < Fraction(42, 10)]
    clicks_out = _click_times(out)
    assert len(clicks_out) == len(clicks_in) == 3  # at 1.25, 2.25 and 3.25 s of the input
    assert max(abs(a - (b - start)) for a, b in zip(clicks_out, clicks_in)) <= Fraction(1, 1000)
    if audio == "aac":  # copied: the input's own packets, those that start inside the part
        assert set(_packets(out, "audio")) <= set(_packets(source, "audio"))


def test_chapters_and_subtitles_move_with_the_part(tmp_path: Path) -> None:
    source = make_source(tmp_path / "in.mkv", frames=96, subtitles=True, chapters=True)
    out = tmp_path / "out.mkv"
    summary = convert(source, out, factor=2, start="0.3", end="3.5")  # subtitles at 0.1 and 0.5 s; chapters 0-0.25, 0.25-4 s
    assert summary.start == Fraction(333, 1000)
    with av.open(str(out)) as after:
        chapters = [(Fraction(c["start"]) * c["time_base"], Fraction(c["end"]) * c["time_base"], c["metadata"]["title"]) for c in after.chapters()]
        subtitles = [Fraction(p.pts) * p.time_base for p in after.demux(after.streams.subtitles[0]) if p.size]
    assert chapters == [(0, Fraction(35, 10) - summary.start, "Rest")]
    assert subtitles == [Fraction(5, 10) - summary.start]


def test_a_folder_of_images_converts_a_part(tmp_path: Path) -> None:
    import cv2

    folder = tmp_path / "frames"
    folder.mkdir()
    images = translating_frames(24, 32, 48, step=(2, 0))
    for k, rgb in enumerate(images):
        cv2.imwrite(str(folder / f"f_{k}.png"), rgb[..., ::-1])
    summary = convert(folder, tmp_path / "out.mkv", factor=2, start="0.25", duration="0.25")  # frames 6..11 (12 closes the span)
    times, _ = decode_video(tmp_path / "out.mkv")
    assert summary.start == Fraction(1, 4) and summary.frames_in == 6 and on_the_grid(times, 48, 12)
    convert(folder, tmp_path / "pngs", factor=2, start="0.25", duration="0.25")
    frames = [cv2.imread(str(path))[..., ::-1] for path in sorted((tmp_path / "pngs").iterdir())]
    assert all((frames[2 * k] == images[6 + k]).all() for k in range(6))
    assert (frames[11] == ((images[11].astype(np.float32) + images[12]) / 2).round().astype(np.uint8)).all()


def invoke(*args: str):
    return CliRunner().invoke(cli.main, list(args))


def test_the_command_takes_start_end_and_duration(make_clip, tiny_weights: Path, tmp_path: Path) -> None:
    source = make_clip(count=48, rate=24)
    result = invoke("interpolate", str(source), str(tmp_path / "o.mp4"), "--weights", str(tiny_weights), "--start", "0:00.5",
                    "--duration", "1")
    assert result.exit_code == 0, result.output
    assert "48 frames at 48 fps from 0.500 s of the input (24 in" in result.stderr
    assert decode_video(tmp_path / "o.mp4")[0] == [Fraction(j, 48) for j in range(48)]


@pytest.mark.parametrize(("args", "fragment", "code"), [
    (["--start", "5"], "--start 5.000 s is at or after the end of in.mp4", 1),
    (["--start", "1", "--end", "1"], "end (1 s) must come after start (1 s)", 2),
    (["--end", "1", "--duration", "1"], "either --end or --duration", 2),
    (["--start", "1:75"], "minutes and seconds run to 59", 2),
])
def test_a_part_outside_the_input_or_contradicting_itself_is_one_line(make_clip, tiny_weights: Path, tmp_path: Path,
                                                                       args: list[str], fragment: str, code: int) -> None:
    result = invoke("interpolate", str(make_clip(count=24)), str(tmp_path / "o.mp4"), "--weights", str(tiny_weights), "-q", *args)
    assert_one_line_error(result, fragment, code)
    assert not (tmp_path / "o.mp4").exists()


def test_a_preview_gets_the_output_checks_of_a_whole_conversion(make_clip, tiny_weights: Path, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """A part goes through the same writer: a killed run's partial is removed, PCM is re-encoded for
    .mp4 and the file read back, an OUT that appears meanwhile is never replaced, encoder options
    are refused in one line."""
    from tests.test_misuse import _appear_during_the_run

    source = make_source(tmp_path / "in.mkv", frames=72, audio="pcm_s16le")
    stale = tmp_path / ".out.vfi-partial-999999999.mp4"  # no such process
    stale.write_bytes(b"left by a killed run")
    summary = convert(source, tmp_path / "out.mp4", start="1", duration="1")
    with av.open(str(tmp_path / "out.mp4")) as written:
        assert [(s.type, s.codec_context.name) for s in written.streams] == [("video", "h264"), ("audio", "aac")]
    assert summary.frames_out == 48 and not stale.exists()
    result = invoke("interpolate", str(source), str(tmp_path / "e.mkv"), "--weights", str(tiny_weights), "-q", "--start", "1",
                    "--duration", "0.5", "--encoder-opt", "no-such-option=1")
    assert_one_line_error(result, "libx264 does not take the encoder option(s) no-such-option")
    destination = tmp_path / "o.mkv"
    _appear_during_the_run(monkeypatch, lambda: destination.write_bytes(b"another run's"))
    result = invoke("interpolate", str(source), str(destination), "--weights", str(tiny_weights), "-q", "--start", "1",
                    "--duration", "0.5")
    assert_one_line_error(result, "appeared while this run was writing it")
    assert destination.read_bytes() == b"another run's"
    assert not [p.name for p in tmp_path.iterdir() if ".vfi-partial-" in p.name]
