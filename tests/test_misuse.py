"""What a hostile or careless user or file can do (issue 16), each class generated here with small
files: a correct output, or one line on stderr with the documented exit status; never a traceback,
a partial or temporary file beside OUT, a changed input, a run written into another run's folder,
or a wrong file with exit status 0. Signals go to a real ``vfi interpolate`` process."""

from __future__ import annotations

import ast
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import save_file

from tests.conftest import TINY_CONFIG, decode_video, translating_frames
from vfi_cli import cli
from vfi_cli.config import ModelConfig
from vfi_cli.errors import VfiError
from vfi_cli.model.network import Interpolator

ROOT = Path(__file__).resolve().parents[1]


def invoke(*args: str):
    return CliRunner().invoke(cli.main, [str(a) for a in args])


def one_line_error(result, fragment: str, code: int = 1) -> None:
    """Exit status ``code``, no traceback, and stderr is exactly one line naming the problem."""
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and fragment in lines[0], result.stderr


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def listing(folder: Path) -> set[str]:
    return set(os.listdir(folder))


def interpolate(weights: Path, source: Path, destination: Path, *args: str):
    """``vfi interpolate`` that must leave the input as it was and nothing but OUT (on success) beside it."""
    before, names = digest(source) if source.is_file() else None, listing(destination.parent)
    result = invoke("interpolate", source, destination, "--weights", weights, "-q", "--preset", "ultrafast", *args)
    if before is not None:
        assert digest(source) == before, "the input was changed"
    added = listing(destination.parent) - names
    assert added <= ({destination.name} if result.exit_code == 0 else set()), f"left behind: {added}"
    return result


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The warnings a run printed (one line each on stderr; pytest captures them as log records)."""
    return [record.getMessage() for record in caplog.records if record.levelname == "WARNING"]


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
            "PYTHONDONTWRITEBYTECODE": "1"}


# ============================================================================ work lost or written elsewhere

# A real ``vfi interpolate`` (the console script's entry) whose model is slowed down, so that a signal
# reliably arrives while the temporary output is being written.
_SLOW_RUN = (
    "import sys, time\n"
    "from vfi_cli.engine.runner import FrameInterpolator\n"
    "original = FrameInterpolator.synthesize\n"
    "def slow(self, pairs):\n"
    "    time.sleep(0.25)\n"
    "    return original(self, pairs)\n"
    "FrameInterpolator.synthesize = slow\n"
    "from vfi_cli.cli import main\n"
    "sys.exit(main())\n"
)


def _start_slow_run(source: Path, destination: Path, weights: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", _SLOW_RUN, "interpolate", str(source), str(destination), "--weights", str(weights),
         "-q", "--batch-size", "1", "--preset", "ultrafast"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env(), cwd=source.parent,
    )


def _wait_for_partial(process: subprocess.Popen, folder: Path, timeout: float = 60.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        partials = [name for name in os.listdir(folder) if ".vfi-partial-" in name]
        if partials:
            return partials[0]
        assert process.poll() is None, process.communicate()
        time.sleep(0.05)
    process.kill()
    raise AssertionError("the run never started writing")


@pytest.mark.skipif(os.name != "posix", reason="POSIX signals")
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT], ids=lambda s: s.name)
def test_termination_signals_clean_up_like_ctrl_c(make_clip, tiny_weights: Path, tmp_path: Path, signum: int) -> None:
    source = make_clip(count=12)
    before = digest(source)
    process = _start_slow_run(source, tmp_path / "out.mp4", tiny_weights)
    _wait_for_partial(process, tmp_path)
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 128 + signum, stderr  # as a shell reports it: 130 for Ctrl-C, 143 for SIGTERM ...
    assert stderr.strip().splitlines() == ["Interrupted: nothing was written."], stderr
    assert listing(tmp_path) == {"in.mp4"}
    assert digest(source) == before


@pytest.mark.skipif(os.name != "posix", reason="POSIX signals")
def test_the_partial_of_a_killed_run_is_removed_by_the_next_run(make_clip, tiny_weights: Path, tmp_path: Path,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    source = make_clip(count=6)
    process = _start_slow_run(source, tmp_path / "out.mp4", tiny_weights)
    partial = _wait_for_partial(process, tmp_path)
    process.kill()  # SIGKILL: nothing can clean up
    process.communicate(timeout=60)
    assert partial in listing(tmp_path)
    result = invoke("interpolate", source, tmp_path / "out.mp4", "--weights", tiny_weights, "-q")
    assert result.exit_code == 0, result.output
    assert warnings(caplog) == [f"removed {partial}, the partial output of an earlier run for out.mp4 that was killed"]
    assert listing(tmp_path) == {"in.mp4", "out.mp4"}
    assert len(decode_video(tmp_path / "out.mp4")[1]) == 12


@pytest.mark.skipif(os.name != "posix", reason="POSIX signals")
@pytest.mark.parametrize("delay", [0.15, 0.6])
def test_ctrl_c_while_starting_exits_130(make_clip, tiny_weights: Path, tmp_path: Path, delay: float) -> None:
    """Early Ctrl-C (imports, torch loading, option parsing) gave 'Aborted!' and status 1, a traceback, or a C++ abort."""
    source = make_clip(count=4)
    process = subprocess.Popen([sys.executable, "-m", "vfi_cli", "interpolate", str(source), str(tmp_path / "o.mp4"),
                                "--weights", str(tiny_weights), "-q"], stderr=subprocess.PIPE, text=True, env=env())
    time.sleep(delay)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    if process.returncode == 0:  # the machine was fast enough to finish first
        return
    assert process.returncode == 130, stderr
    assert stderr.strip().splitlines() == ["Interrupted: nothing was written."], stderr
    assert listing(tmp_path) == {"in.mp4"}


def test_a_partial_in_use_is_never_removed(tmp_path: Path) -> None:
    """A partial whose pid looks dead is still left alone while a process holds it (a run in
    another PID namespace sharing the folder), and removed once nothing does."""
    from vfi_cli.files import hold, release, remove_stale_partials

    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    partial = tmp_path / f".out.vfi-partial-{int(finished.stdout)}.mp4"
    partial.write_bytes(b"half a video")
    handle = hold(partial)
    assert remove_stale_partials(tmp_path, ".out.vfi-partial-", ".mp4") == [] and partial.exists()
    release(handle)
    assert remove_stale_partials(tmp_path, ".out.vfi-partial-", ".mp4") == [partial.name] and not partial.exists()


def _appear_during_the_run(monkeypatch: pytest.MonkeyPatch, appear: Callable[[], None]) -> None:
    """Another program creates OUT while the conversion runs (after its third frame)."""
    from vfi_cli.video.images import PngFolderWriter
    from vfi_cli.video.writer import VideoWriter

    for writer in (VideoWriter, PngFolderWriter):
        original = writer.write

        def write(self, frame, time=None, _original=original):
            if self.frames_written == 3:
                appear()
            return _original(self, frame, time)

        monkeypatch.setattr(writer, "write", write)


@pytest.mark.parametrize("overwrite", [False, True])
def test_a_file_that_appears_meanwhile_is_never_replaced(make_clip, tiny_weights: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch, overwrite: bool) -> None:
    source = make_clip(count=6)
    destination = tmp_path / "out.mp4"
    if overwrite:
        destination.write_bytes(b"the old output, which --overwrite may replace")
    _appear_during_the_run(monkeypatch, lambda: (destination.unlink(missing_ok=True), destination.write_bytes(b"another run's")))
    result = invoke("interpolate", source, destination, "--weights", tiny_weights, "-q", *(["--overwrite"] if overwrite else []))
    one_line_error(result, "appeared while this run was writing it")
    assert destination.read_bytes() == b"another run's"
    assert listing(tmp_path) == {"in.mp4", "out.mp4"}


def test_a_png_folder_that_appears_meanwhile_is_never_replaced(make_clip, tiny_weights: Path, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    source = make_clip(count=6)
    destination = tmp_path / "frames"
    _appear_during_the_run(monkeypatch, lambda: destination.mkdir())
    one_line_error(invoke("interpolate", source, destination, "--weights", tiny_weights, "-q"), "appeared while")
    assert listing(tmp_path) == {"in.mp4", "frames"} and listing(destination) == set()


@pytest.mark.parametrize("kernel", [True, False], ids=["renameat2", "link-fallback"])
def test_rename_no_replace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kernel: bool) -> None:
    from vfi_cli import files

    if not kernel:
        monkeypatch.setattr(files, "_renameat2", lambda source, destination: False)
    (tmp_path / "a").write_text("a")
    (tmp_path / "taken").write_text("taken")
    with pytest.raises(FileExistsError):
        files.rename_no_replace(tmp_path / "a", tmp_path / "taken")
    assert (tmp_path / "taken").read_text() == "taken" and (tmp_path / "a").exists()
    files.rename_no_replace(tmp_path / "a", tmp_path / "b")
    assert (tmp_path / "b").read_text() == "a" and not (tmp_path / "a").exists()
    (tmp_path / "d").mkdir()
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileExistsError):  # os.rename would replace an empty folder
        files.rename_no_replace(tmp_path / "d", tmp_path / "empty")
    files.rename_no_replace(tmp_path / "d", tmp_path / "e")
    assert (tmp_path / "e").is_dir()


SMALL_RUN = ["--data", "synthetic", "--crop", "64", "--batch-size", "2", "--num-rois", "4", "--d-channels", "8",
             "--workers", "0", "-q", "--val-every", "1000", "--sample-every", "1000", "--checkpoint-every", "1000"]


def test_a_copied_run_resumes_into_its_own_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """B, a copy of A, resumed from another folder: everything goes into B; A is untouched."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    (tmp_path / "model.json").write_text(json.dumps(TINY_CONFIG.to_dict()))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    # A relative run folder with its cache inside it: both are stored in A's config.json.
    result = invoke("train", "--run-dir", "A", "--model-config", tmp_path / "model.json", "--cache-dir", "A/cache",
                    "--steps", "1", *SMALL_RUN)
    assert result.exit_code == 0, result.output
    shutil.copytree(work / "A", tmp_path / "B")
    fingerprint = {p.relative_to(work / "A"): (p.stat().st_mtime_ns, digest(p)) for p in (work / "A").rglob("*") if p.is_file()}
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # 'A' would now name a new folder here
    result = invoke("train", "--run-dir", tmp_path / "B", "--resume", "--steps", "2", "--workers", "0", "-q")
    assert result.exit_code == 0, result.output
    assert {p.relative_to(work / "A"): (p.stat().st_mtime_ns, digest(p)) for p in (work / "A").rglob("*") if p.is_file()} == fingerprint
    assert listing(elsewhere) == set()
    from vfi_cli.training.checkpoint import load_checkpoint

    assert load_checkpoint(tmp_path / "B" / "checkpoints" / "last.pt")["step"] == 2
    saved = json.loads((tmp_path / "B" / "config.json").read_text())
    assert saved["run_dir"] == str(tmp_path / "B") and saved["cache_dir"] is None


def test_a_shared_cache_outside_the_run_is_kept_on_resume(tmp_path: Path) -> None:
    from vfi_cli.training.checkpoint import read_run_config

    (tmp_path / "B").mkdir()
    shared = str(tmp_path / "shared-cache")
    (tmp_path / "B" / "config.json").write_text(json.dumps({"run_dir": "/old/A", "cache_dir": shared}))
    assert read_run_config(tmp_path / "B")["cache_dir"] == shared
    (tmp_path / "B" / "config.json").write_text(json.dumps({"run_dir": "/old/A", "cache_dir": "/old/A/cache"}))
    assert read_run_config(tmp_path / "B")["cache_dir"] is None
    (tmp_path / "B" / "config.json").write_text(json.dumps({"run_dir": "runs/A", "cache_dir": "/x/runs/A/c"}))  # relative run
    assert read_run_config(tmp_path / "B")["cache_dir"] is None
    assert read_run_config(tmp_path / "B", cache_dir="/given")["cache_dir"] == "/given"


# ============================================================================ wrong output with exit status 0


def _mp3_with_cover_art(path: Path) -> Path:
    with av.open(str(path), "w") as container:
        audio = container.add_stream("libmp3lame" if "libmp3lame" in av.codecs_available else "mp2", rate=44100, layout="stereo")
        cover = container.add_stream("png")
        cover.width = cover.height = 16
        cover.pix_fmt = "rgb24"
        cover.disposition = av.stream.Disposition.attached_pic
        container.start_encoding()
        picture = av.VideoFrame.from_ndarray(np.full((16, 16, 3), 200, np.uint8), format="rgb24")
        picture.pts = 0
        container.mux(cover.encode(picture))
        container.mux(cover.encode(None))
        for start in range(0, 44100, 1152):
            frame = av.AudioFrame.from_ndarray(np.zeros((2, 1152), np.float32), format="fltp", layout="stereo")
            frame.sample_rate, frame.pts = 44100, start
            container.mux(audio.encode(frame))
        container.mux(audio.encode(None))
    return path


def test_cover_art_is_not_video(tiny_weights: Path, tmp_path: Path) -> None:
    source = _mp3_with_cover_art(tmp_path / "song.mp3")
    with av.open(str(source)) as container:
        assert len(container.streams.video) == 1  # FFmpeg lists the picture as a video stream
    one_line_error(interpolate(tiny_weights, source, tmp_path / "out.mp4"), "only a cover picture")


def test_a_cover_picture_beside_real_video_is_left_out(tiny_weights: Path, tmp_path: Path) -> None:
    source = tmp_path / "with-cover.mp4"
    with av.open(str(source), "w") as container:
        cover = container.add_stream("mjpeg")
        cover.width = cover.height = 16
        cover.pix_fmt = "yuvj420p"
        cover.disposition = av.stream.Disposition.attached_pic
        video = container.add_stream("libx264", rate=25)
        video.width, video.height, video.pix_fmt = 48, 32, "yuv420p"
        container.start_encoding()
        picture = av.VideoFrame.from_ndarray(np.zeros((16, 16, 3), np.uint8), format="rgb24").reformat(format="yuvj420p")
        picture.pts = 0
        container.mux(cover.encode(picture))
        container.mux(cover.encode(None))
        for index, rgb in enumerate(translating_frames(5, 32, 48, (2, 0))):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
            frame.pts, frame.time_base = index, Fraction(1, 25)
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
    result = interpolate(tiny_weights, source, tmp_path / "out.mp4")
    assert result.exit_code == 0, result.output
    with av.open(str(tmp_path / "out.mp4")) as container:
        assert [s.type for s in container.streams] == ["video"]
        assert (container.streams.video[0].width, container.streams.video[0].height) == (48, 32)
    assert len(decode_video(tmp_path / "out.mp4")[1]) == 10


def _weights_with(tmp_path: Path, name: str, *, metadata: str | None = None, card: object = None,
                  poison: float | None = None) -> Path:
    """Tiny weights whose metadata, card or values are replaced."""
    torch.manual_seed(0)
    tensors = {k: v.contiguous() for k, v in Interpolator.from_config(TINY_CONFIG).state_dict().items()}
    if poison is not None:
        tensors["synthesis.layers.0.weight"][0, 0, 0, 0] = poison
    path = tmp_path / f"{name}.safetensors"
    save_file(tensors, str(path), metadata=None if metadata is None else {"vfi_config": metadata})
    if card is not None:
        (tmp_path / f"{name}.card.json").write_text(card if isinstance(card, str) else json.dumps(card))
    return path


@pytest.mark.parametrize("value", [float("nan"), float("inf")], ids=["nan", "inf"])
def test_weights_with_nan_or_inf_are_refused(make_clip, tmp_path: Path, value: float) -> None:
    weights = _weights_with(tmp_path, "bad", metadata=json.dumps(TINY_CONFIG.to_dict()), poison=value)
    source = make_clip(count=4)
    one_line_error(interpolate(weights, source, tmp_path / "out.mp4"), "NaN or infinite")
    one_line_error(invoke("info", "--weights", weights), "NaN or infinite")
    one_line_error(invoke("export", "--onnx", tmp_path / "m.onnx", "--weights", weights), "NaN or infinite")
    assert not (tmp_path / "m.onnx").exists()


def _pcm_clip(path: Path, codec: str, sample_format: str) -> Path:
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=25)
        video.width, video.height, video.pix_fmt = 48, 32, "yuv420p"
        video.options = {"preset": "ultrafast"}
        audio = container.add_stream(codec, rate=48000, layout="stereo")
        for index, rgb in enumerate(translating_frames(4, 32, 48, (2, 0))):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
            frame.pts, frame.time_base = index, Fraction(1, 25)
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
        for start in range(0, 48000 * 4 // 25, 1024):
            chunk = (0.1 * np.sin(np.arange(start, start + 1024) / 10)).astype(np.float32)
            samples = np.stack([chunk, chunk]).reshape(1, -1)
            if sample_format == "s16":
                samples = (samples * 32767).astype(np.int16)
            frame = av.AudioFrame.from_ndarray(samples, format=sample_format, layout="stereo")
            frame.sample_rate, frame.pts = 48000, start
            container.mux(audio.encode(frame))
        container.mux(audio.encode(None))
    return path


@pytest.mark.parametrize(
    ("source_name", "codec", "sample_format", "output", "kept"),
    [
        ("in.mkv", "pcm_s16le", "s16", "out.ts", None),  # was muxed as an opaque data stream: the audio was gone
        ("in.mov", "pcm_f32le", "flt", "out.mp4", None),  # was stored as 'fpcm', which few players read
        ("in.mov", "pcm_s16le", "s16", "out.m4v", None),
        ("in.mkv", "pcm_s16le", "s16", "out.mov", "pcm_s16le"),  # MOV holds PCM: copied
        ("in.mov", "pcm_f32le", "flt", "out.mkv", "pcm_f32le"),
    ],
)
def test_audio_is_copied_only_where_players_read_it(tiny_weights: Path, tmp_path: Path, source_name: str, codec: str,
                                                    sample_format: str, output: str, kept: str | None,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    source = _pcm_clip(tmp_path / source_name, codec, sample_format)
    result = interpolate(tiny_weights, source, tmp_path / output)
    assert result.exit_code == 0, result.output
    with av.open(str(tmp_path / output)) as container:
        kinds = [(s.type, s.codec_context.codec.canonical_name) for s in container.streams]
        audio = [s for s in container.streams if s.type == "audio"]
        assert len(audio) == 1, kinds
        decoded = sum(frame.samples for frame in container.decode(audio[0]))
    assert decoded > 48000 * 4 // 25 // 2, kinds  # real audio came back, not a data stream
    if kept is None:
        assert audio and kinds[1][1] in ("aac", "mp2"), kinds
        assert len(warnings(caplog)) == 1 and "re-encoding it" in warnings(caplog)[0]
    else:
        assert kinds[1][1] == kept and warnings(caplog) == []


def _alpha_clip(path: Path) -> Path:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("ffv1", rate=25)
        stream.width, stream.height, stream.pix_fmt = 48, 32, "yuva420p"
        for index, rgb in enumerate(translating_frames(4, 32, 48, (2, 0))):
            rgba = np.concatenate([rgb, np.full((32, 48, 1), 60 * index, np.uint8)], axis=2)
            frame = av.VideoFrame.from_ndarray(rgba, format="rgba").reformat(format="yuva420p")
            frame.pts, frame.time_base = index, Fraction(1, 25)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def test_alpha_is_dropped_from_every_frame_with_a_warning(tiny_weights: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    source = _alpha_clip(tmp_path / "alpha.mkv")
    result = interpolate(tiny_weights, source, tmp_path / "out.mkv", "--codec", "ffv1")  # ffv1 takes yuva420p
    assert result.exit_code == 0, result.output
    assert warnings(caplog) == [
        "the input's transparency (yuva420p) is dropped: synthesised frames have none, so every output frame is opaque"]
    with av.open(str(tmp_path / "out.mkv")) as container:
        formats = {frame.format.name for frame in container.decode(video=0)}
    assert formats == {"yuv420p"}  # no frame has alpha, so none can flicker
    one_line_error(interpolate(tiny_weights, source, tmp_path / "o2.mkv", "--codec", "ffv1", "--pix-fmt", "yuva420p"),
                   "transparency")


def test_a_time_base_that_holds_the_output_rate(tiny_weights: Path, make_clip, tmp_path: Path) -> None:
    source = make_clip(count=6, rate=24, audio=False)  # no warning about WebM's audio before the error line
    for name, codec in (("fast.mkv", "libx264"), ("fast.webm", "libvpx-vp9")):  # millisecond ticks: 1200 fps repeats timestamps
        one_line_error(interpolate(tiny_weights, source, tmp_path / name, "--fps", "1200", "--codec", codec), "too coarse for 1200 fps")
    result = interpolate(tiny_weights, source, tmp_path / "out.avi", "--factor", "2")
    assert result.exit_code == 0, result.output
    with av.open(str(tmp_path / "out.avi")) as container:
        stream = container.streams.video[0]
        assert stream.average_rate == 48 and stream.time_base == Fraction(1, 48)  # the header said 600 fps
    assert len(decode_video(tmp_path / "out.avi")[1]) == 12


@pytest.mark.parametrize("rate", ["0.0001", "0.5", "1537", "100000"])
def test_target_rates_are_bounded_by_the_input(tiny_weights: Path, make_clip, tmp_path: Path, rate: str) -> None:
    source = make_clip(count=4, rate=24)  # bounds: 1 fps to 64 x 24 = 1536 fps
    one_line_error(interpolate(tiny_weights, source, tmp_path / "out.mp4", "--fps", rate), "from 1 to 1536 fps")
    assert "64x the input's" in " ".join(invoke("interpolate", "--help").output.split())


def test_rates_too_precise_to_store_are_refused(tiny_weights: Path, make_clip, tmp_path: Path) -> None:
    one_line_error(interpolate(tiny_weights, make_clip(count=4), tmp_path / "out.mp4", "--fps", "29.97002997"),
                   "too precise", code=2)


def test_rate_bounds() -> None:
    from vfi_cli.units import check_output_rate, rate_bounds

    assert rate_bounds(Fraction(24)) == (1, 1536)
    assert rate_bounds(Fraction(1, 2)) == (Fraction(1, 2), 32)  # a slide show may keep its own slow rate
    check_output_rate(Fraction(30000, 1001), Fraction(24000, 1001))
    with pytest.raises(ValueError):
        check_output_rate(Fraction(25), Fraction(1, 2))


# ============================================================================ tracebacks instead of one line

_DEEP = "[" * 100_000 + "]" * 100_000
_CONFIG = TINY_CONFIG.to_dict()


@pytest.mark.parametrize(
    ("metadata", "card", "fragment"),
    [
        ("{not json", None, "not valid JSON"),
        ("[1, 2]", None, "must hold a JSON object"),
        (_DEEP, None, "levels deep"),
        ('{"a":' * 5000 + "1" + "}" * 5000, None, "levels deep"),
        (json.dumps({**_CONFIG, "depth": 7}), None, "unknown model config keys"),
        (json.dumps({**_CONFIG, "unet_channels": "wide"}), None, "unet_channels must be a list"),
        (json.dumps({**_CONFIG, "unet_channels": [8.5, 16]}), None, "whole number"),
        (json.dumps({**_CONFIG, "feature_channels": None}), None, "whole number"),
        (json.dumps({**_CONFIG, "flow_prior": {"x": 1}}), None, "flow_prior"),
        (json.dumps({**_CONFIG, "unet_channels": [1000000, 1000000]}), None, "from 1 to 2048"),  # 36 TB before any check
        (json.dumps({**_CONFIG, "unet_channels": [2048] * 8}), None, "parameters"),
        (json.dumps({**_CONFIG, "synthesis_kernel": 4}), None, "odd"),
        (None, "{broken", "not valid JSON"),
        (None, [1], "must hold a JSON object"),
        (None, {"config": "tiny"}, "'config' must be a JSON object"),
        (None, {"config": {**_CONFIG, "feature_kernel": 99}}, "from 1 to 15"),
        (None, {"sha256": 5}, "'sha256' must be a JSON string"),
        (None, None, "carries no architecture config"),
    ],
)
def test_malformed_weights_are_one_line_everywhere(make_clip, tmp_path: Path, metadata, card, fragment: str,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    weights = _weights_with(tmp_path, "odd", metadata=metadata, card=card)
    if isinstance(card, dict) and "sha256" not in card:
        card["sha256"] = hashlib.sha256(weights.read_bytes()).hexdigest()
        (tmp_path / "odd.card.json").write_text(json.dumps(card))
    monkeypatch.setattr("vfi_cli.model.network.Interpolator.from_config",
                        lambda config: pytest.fail("a network was built from a bad config"))
    source = make_clip(count=4)
    one_line_error(interpolate(weights, source, tmp_path / "out.mp4"), fragment)
    one_line_error(invoke("info", "--weights", weights), fragment)
    one_line_error(invoke("bench", "--weights", weights, "--size", "16x16", "--device", "cpu", "--iterations", "1",
                          "--warmup", "0", "-q"), fragment)
    one_line_error(invoke("eval", source, "--weights", weights, "-q"), fragment)
    one_line_error(invoke("train", "--run-dir", tmp_path / "run", "--init-weights", weights, "--steps", "1", *SMALL_RUN), fragment)
    assert not (tmp_path / "run").exists()
    one_line_error(invoke("export", "--onnx", tmp_path / "m.onnx", "--weights", weights), fragment)
    one_line_error(invoke("train", "--run-dir", tmp_path / "run", "--model-config", _tiny_config(tmp_path), "--teacher", f"vfi:{weights}",
                          "--steps", "1", *SMALL_RUN), fragment)


def _tiny_config(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(_CONFIG))
    return path


def test_a_malformed_card_recipe_does_not_break_vfi_info(tmp_path: Path) -> None:
    weights = _weights_with(tmp_path, "w", metadata=json.dumps(_CONFIG))
    card = {"sha256": digest(weights), "recipe": {"steps": 5, "wall_seconds": "long", "init_from": [1]},
            "metrics": {"holdout": {"mean_of_clips": {"vfi": {"psnr": "high"}}}}}
    (tmp_path / "w.card.json").write_text(json.dumps(card))
    result = invoke("info", "--weights", weights)
    assert result.exit_code == 0 and "malformed" in result.output and "Traceback" not in result.output, result.output


@pytest.mark.parametrize("content", ["{oops", "[1]", _DEEP, None], ids=["not-json", "a-list", "deep", "a-folder"])
def test_export_metrics_file_is_checked_before_the_work(tmp_path: Path, content: str | None,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    metrics = tmp_path / "metrics.json"
    metrics.mkdir() if content is None else metrics.write_text(content)
    (tmp_path / "last.pt").write_bytes(b"")
    monkeypatch.setattr("vfi_cli.training.export.export_checkpoint", lambda *a, **k: pytest.fail("exported anyway"))
    result = invoke("export", tmp_path / "last.pt", tmp_path / "w.safetensors", "--metrics", metrics)
    one_line_error(result, "--metrics")
    assert not (tmp_path / "w.safetensors").exists()


def test_model_config_bounds_and_parameter_count() -> None:
    for config in (ModelConfig(), TINY_CONFIG, ModelConfig(unet_channels=(8, 12, 20, 4), feature_channels=5, feature_kernel=3,
                                                          synthesis_channels=6, synthesis_kernel=5, flow_prior="dis"),
                   ModelConfig(unet_channels=(8, 12, 20), feature_channels=5, synthesis_channels=6, flow_prior="coarse")):
        assert config.parameter_count() == sum(p.numel() for p in Interpolator.from_config(config).parameters())
    with pytest.raises(ValueError, match="levels"):
        ModelConfig(unet_channels=(8,) * 9)
    with pytest.raises(ValueError, match="JSON object"):
        ModelConfig.from_dict([8, 16])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "fragment"),
    [("o%03d.png", "not one video"), ("out.png", "not one video"), ("frame.jpg", "not one video"),
     ("list.m3u8", "not one video"), ("raw.h264", "without timestamps"), ("raw.hevc", "without timestamps")],
)
def test_outputs_that_are_not_one_video_file(tiny_weights: Path, make_clip, tmp_path: Path, name: str, fragment: str) -> None:
    source = make_clip(count=4, audio=False)
    one_line_error(interpolate(tiny_weights, source, tmp_path / name), fragment)
    assert listing(tmp_path) == {"in.mp4"}  # the image muxer had left 20 hidden numbered files


def test_a_container_without_audio_leaves_the_audio_out(tiny_weights: Path, make_clip, tmp_path: Path,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    result = interpolate(tiny_weights, make_clip(count=4), tmp_path / "out.gif", "--codec", "gif")
    assert result.exit_code == 0, result.output
    assert warnings(caplog) == ["audio stream #1 (aac) is left out: .gif files hold no audio; use .mp4 or .mkv to keep it"]
    assert len(decode_video(tmp_path / "out.gif")[1]) == 8


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--codec", "png", "--pix-fmt", "pal8", "-x", "o.mov"], "pal8"),
        (["--codec", "libx264", "--pix-fmt", "monob", "-x", "o.mp4"], "monob"),
        (["--codec", "libsvtav1", "--preset", "99", "-x", "o.mkv"], "not an SVT-AV1 preset"),
        (["--preset", "warp", "-x", "o.mp4"], "not a libx264 preset"),
        (["--codec", "mpeg2video", "--fps", "47", "-x", "o.mkv"], "MPEG-1/2 does not support 47/1 fps"),
        (["--codec", "rawvideo", "--pix-fmt", "rgb565le", "-x", "o.mkv"], "Raw RGB is not supported Natively in Matroska"),
    ],
)
def test_encoder_settings_name_the_real_cause(tiny_weights: Path, make_clip, tmp_path: Path, args: list[str], fragment: str) -> None:
    output = args[args.index("-x") + 1]
    options = [a for a in args if a not in ("-x", output)]
    result = invoke("interpolate", make_clip(count=4), tmp_path / output, "--weights", tiny_weights, "-q", *options)
    one_line_error(result, fragment)
    assert "try .mkv" not in result.stderr  # the advice given for an .mkv OUT
    assert listing(tmp_path) == {"in.mp4"}


def test_svt_av1_takes_vfi_preset_names(tiny_weights: Path, make_clip, tmp_path: Path) -> None:
    """The default --preset medium made libsvtav1 fail with 'the .mkv container refused ...; try .mkv'."""
    result = interpolate(tiny_weights, make_clip(count=3, size=(64, 64), audio=False), tmp_path / "o.mkv", "--codec", "libsvtav1")
    assert result.exit_code == 0, result.output
    assert result.stderr == ""  # SVT-AV1's banner stays quiet
    with av.open(str(tmp_path / "o.mkv")) as container:
        assert container.streams.video[0].codec_context.codec.canonical_name == "av1"
    from vfi_cli.video.encoders import encoder_options

    assert encoder_options("libsvtav1", 30, "medium") == {"crf": "30", "preset": "8"}
    assert encoder_options("libsvtav1", None, "4") == {"preset": "4"}
    assert encoder_options("libvpx-vp9", 30, "medium") == {"crf": "30", "b": "0", "cpu-used": "1", "deadline": "good"}
    assert encoder_options("ffv1", 30, "medium") == {}


def test_image_folder_entries_that_are_not_images(tiny_weights: Path, tmp_path: Path) -> None:
    import cv2

    folder = tmp_path / "frames"
    folder.mkdir()
    for k, frame in enumerate(translating_frames(3, 16, 16, (1, 0))):
        cv2.imwrite(str(folder / f"f_{k}.png"), frame)
    (folder / "f_3.png").mkdir()  # a folder named like an image
    one_line_error(interpolate(tiny_weights, folder, tmp_path / "o.mp4", "--input-fps", "10"), "not a regular file")
    (folder / "f_3.png").rmdir()
    if hasattr(os, "mkfifo"):
        os.mkfifo(folder / "f_3.png")  # reading it would block forever
        one_line_error(interpolate(tiny_weights, folder, tmp_path / "o.mp4", "--input-fps", "10"), "not a regular file")


def test_eval_refuses_what_it_cannot_score(tmp_path: Path) -> None:
    from tests.test_hostile import clip

    small = clip(tmp_path / "small.mp4", count=5, size=(5, 6))
    one_line_error(invoke("eval", small, "--no-model", "--compare", "blend", "-q"), "7x7")
    ok = clip(tmp_path / "ok.mp4", count=5, size=(16, 16))
    one_line_error(invoke("eval", ok, "--no-model", "--compare", "blend", "--resize", "100000x100000", "-q"), "too large")
    one_line_error(invoke("eval", ok, "--no-model", "--compare", "blend", "--resize", "4x4", "-q"), "7x7")
    one_line_error(invoke("bench", "--size", "100000x100000", "-q"), "too large")


def test_output_targets_are_checked_before_the_work(tmp_path: Path, tiny_weights: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.test_hostile import clip

    source = clip(tmp_path / "in.mp4", count=5, size=(16, 16))
    (tmp_path / "a-folder").mkdir()
    (tmp_path / "a-file").write_text("x")
    monkeypatch.setattr("vfi_cli.evaluation.evaluate.evaluate", lambda *a, **k: pytest.fail("evaluated before checking"))
    baseline = ["eval", source, "--no-model", "--compare", "blend", "-q"]
    one_line_error(invoke(*baseline, "--json", tmp_path / "a-folder"), "is a folder")
    one_line_error(invoke(*baseline, "--json", tmp_path / "a-file" / "r.json"), "--json")
    one_line_error(invoke(*baseline, "--save-dir", tmp_path / "a-file"), "not a folder")
    one_line_error(invoke("bench", "--json", tmp_path / "a-folder", "-q"), "is a folder")
    monkeypatch.setattr("vfi_cli.training.trainer.Trainer", lambda *a, **k: pytest.fail("trained before checking"))
    one_line_error(invoke("train", "--run-dir", tmp_path / "a-file", "--steps", "1", *SMALL_RUN), "not a folder")
    one_line_error(invoke("train", "--run-dir", tmp_path / "run", "--export", tmp_path / "a-folder", "--steps", "1", *SMALL_RUN),
                   "is a folder")
    one_line_error(invoke("export", tmp_path / "run", tmp_path / "a-folder", "--overwrite"), "is a folder")
    monkeypatch.setattr("vfi_cli.model.weights.load_weights", lambda *a, **k: pytest.fail("weights read before checking"))
    one_line_error(invoke("export", "--onnx", tmp_path / "a-folder", "--overwrite"), "is a folder")
    one_line_error(invoke("export", "--onnx", tmp_path / "a-file" / "m.onnx"), "--onnx")
    one_line_error(invoke("export", "--onnx", tmp_path / "a-file"), "exists (pass --overwrite")
    assert sorted(os.listdir(tmp_path)) == ["a-file", "a-folder", "in.mp4"]


def test_an_onnx_file_that_appears_meanwhile_is_never_replaced(tiny_weights: Path, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    destination = tmp_path / "m.onnx"

    def export(model, sample, path, **kwargs):  # the graph is written, and meanwhile another program writes OUT
        Path(path).write_bytes(b"graph")
        destination.write_bytes(b"another program's")

    monkeypatch.setattr(torch.onnx, "export", export)
    one_line_error(invoke("export", "--onnx", destination, "--weights", tiny_weights), "appeared while")
    assert destination.read_bytes() == b"another program's" and listing(tmp_path) >= {"m.onnx"}
    assert not [name for name in listing(tmp_path) if name.endswith(".partial")]


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--lr", "nan"], "lr must be a finite number"),
        (["--lr", "-1"], "lr must be above zero"),
        (["--lr-decay", "inf"], "lr_decay must be a finite number"),
        (["--train-scale", "0"], "--train-scale must be in (0, 1]"),
        (["--lambda", "photometric=nan"], "loss weight photometric"),
        (["--teacher-weight", "-inf"], "loss weight teacher"),
        (["--crop", "65536"], "crop must be at most 4096"),  # 200 GB a batch
        (["--d-channels", "100000"], "d_channels must be at most 1024"),  # 1 TB of discriminator
        (["--seed", "-5"], "seed must not be negative"),
    ],
)
def test_training_numbers_are_checked(tmp_path: Path, args: list[str], fragment: str) -> None:
    one_line_error(invoke("train", "--run-dir", tmp_path / "run", "--steps", "1", *SMALL_RUN, *args), fragment)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("config", "checkpoint", "fragment"),
    [
        ("{oops", None, "not valid JSON"),
        ("[1, 2]", None, "must hold a JSON object"),
        (_DEEP, None, "levels deep"),
        (json.dumps({"run_dir": "x", "steps": 2, "batch_size": "eight"}), None, "batch_size must be a whole number"),
        (json.dumps({"run_dir": "x", "steps": 2, "losses": {"style": 1.0}}), None, "not a valid run configuration"),
        (json.dumps({"run_dir": "x", "steps": 2, "model": {"unet_channels": [1000000, 1000000]}}), None, "model config"),
        ("VALID", b"", "unreadable checkpoint"),
        ("VALID", b"not a pickle at all", "unreadable checkpoint"),
    ],
)
def test_resume_of_a_damaged_run(tmp_path: Path, config: str, checkpoint: bytes | None, fragment: str) -> None:
    from vfi_cli.config import TrainConfig

    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    if config == "VALID":
        config = json.dumps(TrainConfig(run_dir=str(run), steps=1, model=_CONFIG, crop=64, batch_size=2, workers=0).to_dict())
    (run / "config.json").write_text(config)
    if checkpoint is not None:
        (run / "checkpoints" / "last.pt").write_bytes(checkpoint)
    before = {p.name: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    one_line_error(invoke("train", "--run-dir", run, "--resume", "--steps", "2", "-q"), fragment)
    assert {p.name: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before


def test_json_nesting_is_measured_without_recursion() -> None:
    from vfi_cli.files import json_depth, parse_json_object

    assert json_depth({"a": [1, {"b": []}]}) == 4 and json_depth(5) == 0
    with pytest.raises(VfiError, match="levels deep"):
        parse_json_object('{"a":' * 100 + "1" + "}" * 100, "test")


# ============================================================================ security


def test_every_download_is_read_with_weights_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty-cache"))
    calls: list[dict[str, object]] = []

    def fake(url: str, **kwargs: object) -> dict[str, torch.Tensor]:
        calls.append({"url": url, **kwargs})
        return {}

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", fake)
    from vfi_cli.model.features import load_resnet18_state
    from vfi_cli.pretrained import VGG16, load_pretrained
    from vfi_cli.training.proposals import MaskRCNNProposer

    load_pretrained(VGG16, None, allow_download=True)  # what the perceptual loss calls
    load_resnet18_state(None, allow_download=True)
    with pytest.raises(VfiError):  # the empty state dict does not fit; only the download call matters here
        MaskRCNNProposer(None, allow_download=True)
    assert [Path(str(c["url"])).name.split("-")[0] for c in calls] == ["vgg16", "resnet18", "maskrcnn_resnet50_fpn_coco"]
    assert all(c.get("weights_only") is True for c in calls), calls


def test_no_code_path_unpickles_without_weights_only() -> None:
    """Every torch.load passes weights_only=True, and torchvision's get_state_dict (which does not) is never called."""
    for path in (ROOT / "vfi_cli").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                if node.func.attr == "get_state_dict":
                    pytest.fail(f"{path}:{node.lineno} calls get_state_dict")
                loads = node.func.attr == "load_state_dict_from_url" or (node.func.attr == "load" and getattr(node.func.value, "id", "") == "torch")
                if loads:
                    keywords = {k.arg: k.value for k in node.keywords}
                    value = keywords.get("weights_only")
                    assert isinstance(value, ast.Constant) and value.value is True, f"{path}:{node.lineno}"
