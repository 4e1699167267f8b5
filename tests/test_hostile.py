"""Hostile inputs and outputs, each generated here: a correct output or a one-line error with a non-zero
exit; never a traceback, a partial or temporary output, or a changed input."""

from __future__ import annotations

import errno
import hashlib
import os
import struct
import subprocess
import sys
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from click.testing import CliRunner

from tests.conftest import decode_video, smooth_texture, translating_frames
from vfi_cli import cli


def write(path: Path, frames: list[np.ndarray], *, codec: str = "libx264", pix_fmt: str = "yuv444p", rate: int = 25,
          container_options: dict[str, str] | None = None, rotation: float | None = None) -> Path:
    """Encode RGB frames losslessly (x264 qp 0, 4:4:4 takes any size; or ``codec``)."""
    with av.open(str(path), "w", options=container_options or {}) as container:
        stream = container.add_stream(codec, rate=rate)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = pix_fmt
        stream.options = {"qp": "0", "preset": "ultrafast"} if codec == "libx264" else {}
        if rotation is not None:
            stream.set_display_rotation(rotation)
        for index, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format=pix_fmt)
            frame.pts, frame.time_base = index, Fraction(1, rate)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def clip(path: Path, count: int = 8, size: tuple[int, int] = (32, 48), **kwargs) -> Path:
    return write(path, translating_frames(count, *size, step=(2, 0)), **kwargs)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class Run:
    """Runs ``vfi interpolate`` and checks what every hostile case must hold, whatever the outcome."""

    def __init__(self, weights: Path) -> None:
        self.weights = weights

    def __call__(self, source: Path, destination: Path, *args: str, cwd: Path | None = None):
        folder = destination.parent
        before = digest(source) if source.is_file() else None
        names_before = set(os.listdir(folder))
        result = CliRunner().invoke(cli.main, ["interpolate", str(source), str(destination), "--weights",
                                               str(self.weights), "-q", "--preset", "ultrafast", *args])
        assert "Traceback" not in result.output and result.exception is None or isinstance(result.exception, SystemExit), \
            result.output
        if before is not None:
            assert digest(source) == before, "the input was changed"
        added = set(os.listdir(folder)) - names_before
        if result.exit_code == 0:
            assert added <= {destination.name}
        else:
            lines = result.stderr.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
            assert added == set(), f"left behind: {added}"
        return result


@pytest.fixture
def run(tiny_weights: Path) -> Callable[..., object]:
    return Run(tiny_weights)


def fails(result, fragment: str) -> None:
    assert result.exit_code == 1, result.output
    assert fragment in result.stderr, result.stderr


@pytest.mark.parametrize(
    ("name", "content", "fragment"),
    [("empty.mp4", b"", "cannot read"), ("text.mp4", b"just some notes\n" * 40, "cannot read")],
)
def test_not_a_video(run, tmp_path: Path, name: str, content: bytes, fragment: str) -> None:
    source = tmp_path / name
    source.write_bytes(content)
    fails(run(source, tmp_path / "out.mp4"), fragment)


def test_truncated_mp4_with_the_index_at_the_end(run, tmp_path: Path) -> None:
    source = clip(tmp_path / "full.mp4", count=24)
    data = source.read_bytes()
    assert data.rfind(b"moov") > len(data) // 2  # the index comes after the media data
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    fails(run(cut, tmp_path / "out.mp4"), "cut.mp4")


def test_truncated_mp4_with_the_index_first_converts_what_is_there(run, tmp_path: Path) -> None:
    source = clip(tmp_path / "full.mp4", count=24, container_options={"movflags": "+faststart"})
    data = source.read_bytes()
    assert data.find(b"moov") < data.find(b"mdat")
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) * 2 // 3])
    result = run(cut, tmp_path / "out.mp4")
    assert result.exit_code == 0, result.output
    _, frames = decode_video(tmp_path / "out.mp4")
    assert 2 <= len(frames) < 48
    assert "could not be decoded" in result.stderr  # the frames the index promised but the file lacks


def test_mp4_cut_inside_its_first_frame(run, tmp_path: Path) -> None:
    data = clip(tmp_path / "full.mp4", count=24, container_options={"movflags": "+faststart"}).read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: data.find(b"mdat") + 100])
    fails(run(cut, tmp_path / "out.mp4"), "cut.mp4")


def test_corrupted_packets_in_the_middle(run, tmp_path: Path) -> None:
    """Two damaged JPEG frames of twelve: the other ten are converted and the loss is reported."""
    source = clip(tmp_path / "in.mkv", count=12, codec="mjpeg", pix_fmt="yuvj420p")
    with av.open(str(source)) as container:
        packets = [(p.pos, p.size) for p in container.demux(video=0) if p.size]
    data = bytearray(source.read_bytes())
    for pos, size in packets[5:7]:  # pos: the Matroska block; the JPEG inside it starts at its SOI marker
        start = data.find(b"\xff\xd8", pos)
        data[start : pos + size - 8] = bytes(pos + size - 8 - start)  # zeros: no JPEG left to decode
    source.write_bytes(bytes(data))
    result = run(source, tmp_path / "out.mp4")
    assert result.exit_code == 0, result.output
    assert "Warning: 2 input frame(s) could not be decoded" in result.stderr
    times, frames = decode_video(tmp_path / "out.mp4")
    assert len(frames) == 20  # ten inputs, each with its own interval split in two
    assert Fraction(5, 25) not in times and Fraction(6, 25) not in times  # the lost frames' times ...
    assert Fraction(11, 50) in times  # ... are bridged by a frame made between 4/25 and 7/25


def test_audio_only_file(run, tmp_path: Path) -> None:
    source = tmp_path / "tone.m4a"
    with av.open(str(source), "w") as container:
        stream = container.add_stream("aac", rate=48000, layout="mono")
        for start in range(0, 48000, 1024):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 48000, start
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    fails(run(source, tmp_path / "out.mp4"), "no video stream")


@pytest.mark.parametrize(
    ("count", "size"),
    [(1, (32, 48)), (2, (32, 48)), (3, (1, 1)), (3, (3, 5)), (2, (37, 63)), (1, (1079, 1919))],
    ids=["one-frame", "two-frames", "1x1", "3x5", "63x37", "1919x1079"],  # the model at 1080p takes ~10 s on 2 cores
)
def test_tiny_counts_and_odd_sizes(run, tmp_path: Path, count: int, size: tuple[int, int]) -> None:
    if size[0] > 32:  # a textured frame: a cheap texture, tiled
        base = smooth_texture(64, 64)
        frames = [np.ascontiguousarray(np.tile(np.roll(base, 2 * k, axis=1), (17, 30, 1))[: size[0], : size[1]])
                  for k in range(count)]
    else:
        frames = [np.full((*size, 3), 40 + 60 * k, np.uint8) for k in range(count)]
    source = write(tmp_path / "in.mp4", frames)
    result = run(source, tmp_path / "out.mp4", "--crf", "0")
    assert result.exit_code == 0, result.output
    times, decoded = decode_video(tmp_path / "out.mp4")
    assert len(decoded) == 2 * count
    assert times == [Fraction(j, 50) for j in range(2 * count)]
    assert decoded[0].shape == (*size, 3)
    for k in range(count):  # copies are the input frames (x264 qp 0, 4:4:4)
        assert np.abs(decoded[2 * k].astype(int) - frames[k]).max() <= 2


def test_rotation_metadata_is_kept(run, tmp_path: Path) -> None:
    source = clip(tmp_path / "in.mp4", count=4, rotation=90)
    result = run(source, tmp_path / "out.mp4")
    assert result.exit_code == 0, result.output
    with av.open(str(source)) as a, av.open(str(tmp_path / "out.mp4")) as b:
        first_in, first_out = next(a.decode(video=0)), next(b.decode(video=0))
        assert first_in.rotation != 0 and first_out.rotation == first_in.rotation
        assert (first_out.width, first_out.height) == (first_in.width, first_in.height)


def test_8k_frame(run, tmp_path: Path) -> None:
    frame = np.tile(smooth_texture(60, 64), (72, 120, 1))  # 4320 x 7680
    source = write(tmp_path / "8k.mp4", [frame], pix_fmt="yuv420p")
    result = run(source, tmp_path / "out.mp4")
    assert result.exit_code == 0, result.output
    with av.open(str(tmp_path / "out.mp4")) as container:
        stream = container.streams.video[0]
        assert stream.frames == 2 and (stream.width, stream.height) == (7680, 4320)


def test_ten_hour_header_on_a_two_second_file(run, tmp_path: Path) -> None:
    source = clip(tmp_path / "in.mkv", count=10, size=(16, 16), rate=5)
    data = bytearray(source.read_bytes())
    segment = data.find(b"\x44\x89\x88")  # Matroska's Duration: an 8-byte float, in milliseconds
    data[segment + 3 : segment + 11] = struct.pack(">d", 10 * 3600 * 1000.0)
    data = data.replace(b"00:00:02.000000000", b"10:00:00.000000000")  # the DURATION tag
    source.write_bytes(bytes(data))
    with av.open(str(source)) as container:
        assert container.duration / av.time_base == 10 * 3600  # the header lies
    result = run(source, tmp_path / "out.mkv")
    assert result.exit_code == 0, result.output
    times, frames = decode_video(tmp_path / "out.mkv")
    assert len(frames) == 20 and times[-1] == Fraction(19, 10)  # two seconds, not ten hours


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root can write into read-only folders")
def test_read_only_output_folder(run, tmp_path: Path) -> None:
    source = clip(tmp_path / "in.mp4")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        fails(run(source, locked / "out.mp4"), "not writable")
        assert os.listdir(locked) == []
    finally:
        locked.chmod(0o755)


@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_FSIZE and SIGXFSZ as on Linux")
def test_full_disk_video(tmp_path: Path, tiny_weights: Path) -> None:
    """A file-size limit makes every write past 64 KiB fail (EFBIG), as a full disk would (ENOSPC)."""
    source = clip(tmp_path / "in.mp4", count=6, size=(96, 128))
    before = digest(source)
    script = (
        "import resource, signal, sys\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))\n"
        "from vfi_cli.cli import main\n"
        "sys.exit(main())\n"
    )
    args = [sys.executable, "-c", script, "interpolate", str(source), str(tmp_path / "out.mp4"), "--weights",
            str(tiny_weights), "-q", "--crf", "0", "--preset", "ultrafast", "--factor", "4"]
    result = subprocess.run(args, capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "too large" in lines[0].lower(), result.stderr
    assert sorted(os.listdir(tmp_path)) == ["in.mp4"]
    assert digest(source) == before


def test_full_disk_png_folder(run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = clip(tmp_path / "in.mp4", count=6)
    written = []

    def write_bytes(self: Path, data: bytes) -> int:
        if len(written) == 5:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self))
        written.append(self)
        return len(data)

    monkeypatch.setattr(Path, "write_bytes", write_bytes)
    fails(run(source, tmp_path / "pngs"), "No space left on device")


def test_spaces_and_non_ascii_in_paths(run, tmp_path: Path) -> None:
    folder = tmp_path / "mes vidéos 日本"
    folder.mkdir()
    source = clip(folder / "prise n°1 — été.mp4", count=4)
    result = run(source, folder / "sortie ü 2×.mp4")
    assert result.exit_code == 0, result.output
    assert len(decode_video(folder / "sortie ü 2×.mp4")[1]) == 8


def test_url_looking_local_paths_are_read_from_disk(run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``http://x/y.mp4`` naming a local file (folders ``http:`` and ``x``) is read from disk, never fetched."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "http:" / "x").mkdir(parents=True)
    clip(tmp_path / "http:" / "x" / "y.mp4", count=4)
    result = run(Path("http://x/y.mp4"), Path("http://x/out.mp4"))
    assert result.exit_code == 0, result.output
    assert len(decode_video(tmp_path / "http:" / "x" / "out.mp4")[1]) == 8


def test_real_urls_are_refused(run, tmp_path: Path) -> None:
    result = CliRunner().invoke(cli.main, ["interpolate", "https://example.com/clip.mp4", str(tmp_path / "out.mp4")])
    assert result.exit_code == 1
    assert result.stderr.strip() == ("Error: URLs are not supported (https://example.com/clip.mp4): "
                                     "download the file and pass its local path")
    assert os.listdir(tmp_path) == []
