"""Hostile inputs by the table, as SQLite and FFmpeg's FATE keep whole classes of bugs closed: every
combination of container and codec × pixel format × size × timing × audio is made here with PyAV,
converted with ``--factor 2``, and checked for what users are promised.

- Accepted: exit 0 without a traceback; twice the input's frames at its own size (a size the codec
  cannot store is named in a warning), every input frame at its own time and, at a constant rate,
  the output lasting as long as the input; the audio keeps its sample count to within one codec
  frame; nothing but OUT beside the input.
- Damaged (cut short, bytes overwritten), or a size the codec cannot store (MPEG-4 Part 2 at 7×5): a
  complete output as above from what decodes, or one line on stderr, exit 1, nothing left beside
  the input. Inputs an encoder will not make (x264 at an odd 4:2:0 size) are skipped.

A quick set runs by default; ``VFI_HOSTILE=full`` runs the whole table (352 cases, about a minute).
Option values at and beyond their limits are a second table, run whole: each is one line, exit 2 for
the options and 1 for the files or the machine, and nothing is started.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from click.testing import CliRunner

from tests.conftest import translating_frames
from vfi_cli import cli

# (suffix, video encoder, audio encoder or None): the pairs users meet.
CONTAINERS = [(".mkv", "ffv1", "pcm_s16le"), (".mp4", "libx264", "aac"), (".mov", "prores_ks", "pcm_s16le"),
              (".webm", "libvpx-vp9", "libopus"), (".avi", "mpeg4", "pcm_s16le"), (".mkv", "libx265", "flac")]
PIX_FMTS = ["yuv420p", "yuv422p", "yuv444p", "yuv420p10le", "yuv422p10le", "gray", "yuva420p", "bgr0"]
SIZES = [(36, 64), (5, 7), (2, 2)]  # height, width: ordinary, odd, tiny
TIMINGS = ["cfr", "vfr"]
AUDIO = [False, True]
DAMAGE = ["cut", "overwritten"]
FRAMES = 6
RATE = 12


@dataclass(frozen=True)
class Case:
    suffix: str
    codec: str
    audio_codec: str | None
    pix_fmt: str
    size: tuple[int, int]
    timing: str = "cfr"
    damage: str | None = None

    @property
    def name(self) -> str:
        audio = f"+{self.audio_codec}" if self.audio_codec else ""
        return f"{self.codec}{audio}{self.suffix}-{self.pix_fmt}-{self.size[1]}x{self.size[0]}-{self.timing}" + (
            f"-{self.damage}" if self.damage else "")


def _takes(codec: str, pix_fmt: str) -> bool:
    formats = av.codec.Codec(codec, "w").video_formats
    return not formats or pix_fmt in {f.name for f in formats}


def full_table() -> list[Case]:
    cases = []
    table = itertools.product(CONTAINERS, PIX_FMTS, SIZES, TIMINGS, AUDIO)
    for (suffix, codec, audio), pix_fmt, size, timing, with_audio in table:
        if _takes(codec, pix_fmt):
            cases.append(Case(suffix, codec, audio if with_audio else None, pix_fmt, size, timing))
    ordinary = [c for c in cases if c.size == SIZES[0] and c.timing == "cfr"]
    return cases + [Case(c.suffix, c.codec, c.audio_codec, c.pix_fmt, c.size, c.timing, damage)
                    for c in ordinary[::4] for damage in DAMAGE]


QUICK = [
    Case(".mkv", "ffv1", None, "yuv420p", (5, 7)),  # an odd size FFV1 stores
    Case(".mkv", "ffv1", "pcm_s16le", "yuva420p", (36, 64), "vfr"),  # alpha, variable rate, PCM
    Case(".mp4", "libx264", "aac", "yuv420p10le", (36, 64)),  # 10-bit with AAC
    Case(".mp4", "libx264", None, "yuv422p", (2, 2)),  # tiny 4:2:2
    Case(".webm", "libvpx-vp9", "libopus", "yuv444p", (36, 64), "vfr"),
    Case(".avi", "mpeg4", "pcm_s16le", "yuv420p", (36, 64)),
    Case(".avi", "mpeg4", None, "yuv420p", (5, 7)),  # a size MPEG-4 cannot store: one line
    Case(".mov", "prores_ks", None, "yuv422p10le", (5, 7)),  # ProRes at an odd size
    Case(".mp4", "libx264", "aac", "yuv420p", (36, 64), damage="cut"),
    Case(".mkv", "ffv1", None, "bgr0", (36, 64), damage="overwritten"),
]
TABLE = full_table() if os.environ.get("VFI_HOSTILE") == "full" else [c for c in QUICK if _takes(c.codec, c.pix_fmt)]


def make(case: Case, folder: Path) -> Path:
    """The input the case describes (VFR: frames 1/4 s and 1/12 s apart in turn)."""
    path = folder / f"in{case.suffix}"
    height, width = case.size
    pictures = translating_frames(FRAMES, max(height, 8), max(width, 8), step=(1, 0))
    with av.open(str(path), "w") as container:
        stream = container.add_stream(case.codec, rate=RATE)
        stream.width, stream.height, stream.pix_fmt = width, height, case.pix_fmt
        tick_length = Fraction(1, RATE) if case.timing == "cfr" else Fraction(1, RATE * 2)
        stream.time_base = tick_length  # AVI takes its nominal rate from it
        if case.codec == "libx264":
            stream.options = {"preset": "ultrafast", "crf": "10"}
        audio = container.add_stream(case.audio_codec, rate=48000, layout="stereo") if case.audio_codec else None
        tick = 0
        for index, rgb in enumerate(pictures):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb[:height, :width]), format="rgb24")
            frame = frame.reformat(format=case.pix_fmt)
            frame.pts, frame.time_base = tick, tick_length
            tick += 1 if case.timing == "cfr" else 2 if index % 2 else 6
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
        if audio is not None:
            _tone(container, audio, float(tick * tick_length))
    if case.damage == "cut":
        path.write_bytes(path.read_bytes()[: path.stat().st_size * 2 // 3])
    elif case.damage == "overwritten":
        data = bytearray(path.read_bytes())
        data[len(data) // 3 : len(data) // 3 + 64] = bytes(64)
        path.write_bytes(bytes(data))
    return path


def _tone(container: av.container.OutputContainer, stream: av.audio.stream.AudioStream, seconds: float) -> None:
    samples = int(48000 * seconds)
    tone = (0.2 * np.sin(2 * np.pi * 440 * np.arange(samples) / 48000)).astype(np.float32)
    size = stream.codec_context.frame_size or 1024
    fmt = stream.codec_context.format.name
    for start in range(0, samples, size):
        chunk = np.stack([tone[start : start + size]] * 2)
        frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="stereo")
        frame.sample_rate, frame.pts = 48000, start
        if fmt != "fltp":
            frame = av.AudioResampler(format=fmt, layout="stereo", rate=48000).resample(frame)[0]
            frame.pts = start
        for packet in stream.encode(frame):
            container.mux(packet)
    container.mux(stream.encode(None))


def facts(path: Path) -> dict:
    """What a user checks of a file: video frames, size, duration (last frame's time plus one frame's
    length, the way vfi counts it), audio samples."""
    with av.open(str(path)) as container:
        times, size = [], None
        for frame in container.decode(video=0):
            times.append(Fraction(frame.pts) * frame.time_base)
            size = (frame.height, frame.width)
        samples = sum(frame.samples for frame in container.decode(audio=0)) if container.streams.audio else None
    return {"frames": len(times), "size": size, "times": times, "samples": samples}


@pytest.mark.parametrize("case", TABLE, ids=lambda case: case.name)
def test_hostile_case(case: Case, tmp_path: Path, tiny_weights: Path) -> None:
    try:
        source = make(case, tmp_path)
    except av.FFmpegError as exc:  # x264 makes no odd 4:2:0, x265 nothing below 8 pixels ...
        pytest.skip(f"{case.codec} does not make this input: {exc}")
    out = tmp_path / f"out{case.suffix}"
    result = CliRunner().invoke(cli.main, ["interpolate", str(source), str(out), "--weights", str(tiny_weights), "--factor", "2",
                                           "--codec", case.codec, "-q"])
    assert "Traceback" not in result.output and (result.exception is None or isinstance(result.exception, SystemExit))
    if result.exit_code != 0:  # only a damaged input, or a size the codec cannot store, may be refused
        odd = f"{case.codec} stores only even sizes and {source.name} is {case.size[1]}x{case.size[0]}; "
        assert case.damage is not None or result.stderr.startswith(f"Error: {odd}"), result.output
        assert result.exit_code == 1 and len(result.stderr.splitlines()) == 1 and result.stderr.startswith("Error: ")
        assert sorted(p.name for p in tmp_path.iterdir()) == [source.name]
        return
    before, after = facts(source), facts(out)
    warnings = [line for line in result.stderr.splitlines() if line.startswith("Warning: ")]
    assert after["size"] == before["size"] or any(f"{after['size'][1]}x{after['size'][0]}" in w for w in warnings), result.stderr
    if case.damage is None:
        assert after["frames"] == 2 * before["frames"], (before, after)
        close = Fraction(1, 500)  # containers round times to their tick (Matroska: 1 ms)
        assert all(any(abs(t - u) <= close for u in after["times"]) for t in before["times"])  # every input frame at its time
        if case.timing == "cfr":  # the last frame lasts one frame: input and output end together
            assert abs(after["times"][-1] + Fraction(1, 2 * RATE) - before["times"][-1] - Fraction(1, RATE)) <= close
    if before["samples"] is not None:
        assert after["samples"] is not None and abs(after["samples"] - before["samples"]) <= 2048
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([source.name, out.name])


# Option values at and beyond their limits: (arguments, exit status, what the one line names).
OPTIONS = [
    (("--factor", "1"), 2, "--factor"), (("--factor", "65"), 2, "--factor"), (("--factor", "x"), 2, "--factor"),
    (("--fps", "nan"), 2, "nan"), (("--fps", "inf"), 2, "inf"), (("--fps", "0"), 2, "0"), (("--fps", "-24"), 2, "-24"),
    (("--fps", "1e400"), 2, "1e400"), (("--fps", "0.5"), 1, "1 fps"), (("--fps", "1000"), 1, "64"),
    (("--crf", "-1"), 2, "--crf"), (("--crf", "64"), 2, "--crf"), (("--batch-size", "0"), 2, "--batch-size"),
    (("--threads", "0"), 2, "--threads"), (("--segment", "-1"), 2, "-1"), (("--scene-threshold", "1"), 2, "--scene-threshold"),
    (("--max-memory", "0"), 2, "--max-memory"), (("--max-memory", "1K"), 1, "memory"), (("--tile", "15"), 2, "--tile"),
    (("--tile-overlap", "3"), 2, "--tile-overlap"), (("--start", "99"), 1, "after the end"), (("--duration", "0"), 2, "positive"),
    (("--start", "0.2", "--end", "0.1"), 2, "end"), (("--dedup", "-1"), 2, "dedup"),
    (("--encoder-opt", "novalue"), 2, "KEY=VALUE"), (("--codec", "nonesuch"), 1, "nonesuch"),
    (("--pix-fmt", "nonesuch"), 1, "nonesuch"), (("--ray-timeout", "0"), 2, "--ray-timeout"),
    (("--ray", "127.0.0.1:x"), 1, "not a Ray cluster address"), (("--jobs", "0"), 2, "--jobs"), (("--bogus",), 2, "--bogus"),
]


def _shown(value: object) -> str | None:
    return " ".join(value) if isinstance(value, tuple) else None


@pytest.mark.parametrize(("args", "status", "named"), OPTIONS, ids=_shown)
def test_option_values_at_and_beyond_their_limits(args: tuple[str, ...], status: int, named: str, tmp_path: Path,
                                                   tiny_weights: Path) -> None:
    """Each is refused with its exit status (2: the options, 1: the files or the machine) in one line
    naming it, before any output is started: nothing appears beside the input."""
    source = make(QUICK[0], tmp_path)
    command = ["interpolate", str(source), str(tmp_path / "out.mkv"), "--weights", str(tiny_weights), "--codec", "ffv1", "-q"]
    result = CliRunner().invoke(cli.main, [*command, *args])
    assert result.exit_code == status, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and named in lines[0], result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == [source.name]
