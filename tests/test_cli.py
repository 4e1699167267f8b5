"""`vfi interpolate` through Click: frame counts, timestamps, duration, audio, and every refusal."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import pytest
from click.testing import CliRunner

from tests.conftest import decode_video
from vfi_cli import cli
from vfi_cli.engine.runner import FrameInterpolator
from vfi_cli.video.writer import VideoWriter


def invoke(*args: str):
    return CliRunner().invoke(cli.main, list(args))


def stream_seconds(path: Path, kind: str) -> Fraction | None:
    with av.open(str(path)) as container:
        streams = [s for s in container.streams if s.type == kind]
        if not streams or streams[0].duration is None:
            return None
        return Fraction(streams[0].duration) * streams[0].time_base


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if "vfi-partial" in p.name)


@pytest.mark.parametrize(
    ("rate", "count", "args", "rate_out"),
    [
        (Fraction(24), 12, ["--factor", "2"], Fraction(48)),
        (Fraction(24), 12, ["--factor", "4"], Fraction(96)),
        (Fraction(24), 12, ["--fps", "60"], Fraction(60)),
        (Fraction(25), 10, ["--fps", "60"], Fraction(60)),
        (Fraction(30000, 1001), 15, ["--fps", "60"], Fraction(60)),
        (Fraction(30000, 1001), 15, ["--factor", "2"], Fraction(60000, 1001)),
    ],
)
def test_counts_timestamps_duration_and_audio(make_clip, tiny_weights: Path, tmp_path: Path, rate, count, args, rate_out) -> None:
    source = make_clip(count=count, rate=rate)
    destination = tmp_path / "out.mp4"
    result = invoke("interpolate", str(source), str(destination), *args, "--weights", str(tiny_weights), "--quiet")
    assert result.exit_code == 0, result.output
    duration_in = Fraction(count) / rate
    expected = int(duration_in * rate_out + Fraction(1, 2))
    times, frames = decode_video(destination)
    assert len(frames) == expected
    assert times == [Fraction(j) / rate_out for j in range(expected)]
    assert abs(stream_seconds(destination, "video") - duration_in) <= 1 / (2 * rate_out)
    with av.open(str(destination)) as container:
        assert container.streams.video[0].average_rate == rate_out
    assert stream_seconds(destination, "audio") == stream_seconds(source, "audio")
    assert leftovers(tmp_path) == []


def test_copied_frames_match_the_input_frames(make_clip, tiny_weights: Path, tmp_path: Path) -> None:
    """With --factor 2 every even output frame is the input frame re-encoded, not a synthesis."""
    source = make_clip(count=6, rate=25, audio=False)
    destination = tmp_path / "out.mkv"
    result = invoke("interpolate", str(source), str(destination), "--weights", str(tiny_weights), "-q",
                    "--codec", "ffv1", "--pix-fmt", "yuv420p")
    assert result.exit_code == 0, result.output
    _, inputs = decode_video(source)
    _, outputs = decode_video(destination)
    for k, frame in enumerate(inputs):
        assert (outputs[2 * k] == frame).all()


def test_summary_and_progress_are_printed(make_clip, tiny_weights: Path, tmp_path: Path) -> None:
    source = make_clip(count=6, rate=25)
    result = invoke("interpolate", str(source), str(tmp_path / "o.mp4"), "--weights", str(tiny_weights))
    assert result.exit_code == 0, result.output
    assert "12 frames at 50 fps (6 in, 5 synthesised), duration 0.240 s" in result.stderr
    assert "12/12" in result.stderr


def assert_one_line_error(result, fragment: str, code: int = 1) -> None:
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and fragment in lines[0], result.stderr


def test_missing_input(tmp_path: Path, tiny_weights: Path) -> None:
    result = invoke("interpolate", str(tmp_path / "nope.mp4"), str(tmp_path / "o.mp4"), "--weights", str(tiny_weights))
    assert_one_line_error(result, "input not found")
    assert not (tmp_path / "o.mp4").exists()


def test_text_file_named_mp4(tmp_path: Path, tiny_weights: Path) -> None:
    fake = tmp_path / "fake.mp4"
    fake.write_text("this is not a video\n" * 50)
    result = invoke("interpolate", str(fake), str(tmp_path / "o.mp4"), "--weights", str(tiny_weights))
    assert_one_line_error(result, "fake.mp4")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fake.mp4"]


def test_missing_output_directory(make_clip, tmp_path: Path, tiny_weights: Path) -> None:
    source = make_clip()
    result = invoke("interpolate", str(source), str(tmp_path / "no" / "such" / "o.mp4"), "--weights", str(tiny_weights))
    assert_one_line_error(result, "output directory does not exist")


def test_output_equal_to_input_is_refused(make_clip, tiny_weights: Path) -> None:
    source = make_clip()
    before = source.read_bytes()
    result = invoke("interpolate", str(source), str(source), "--weights", str(tiny_weights), "--overwrite")
    assert_one_line_error(result, "same file as the input")
    assert source.read_bytes() == before


def test_existing_output_needs_overwrite(make_clip, tmp_path: Path, tiny_weights: Path) -> None:
    source = make_clip(count=4)
    destination = tmp_path / "o.mp4"
    destination.write_bytes(b"keep me")
    result = invoke("interpolate", str(source), str(destination), "--weights", str(tiny_weights))
    assert_one_line_error(result, "--overwrite")
    assert destination.read_bytes() == b"keep me"
    result = invoke("interpolate", str(source), str(destination), "--weights", str(tiny_weights), "--overwrite", "-q")
    assert result.exit_code == 0, result.output
    assert len(decode_video(destination)[1]) == 8


def test_no_trained_weights_is_one_line_and_writes_nothing(make_clip, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("vfi_cli.model.weights.weights_search_path", lambda: [tmp_path / "empty"])
    source = make_clip()
    result = invoke("interpolate", str(source), str(tmp_path / "o.mp4"))
    assert_one_line_error(result, "no trained weights")
    assert not (tmp_path / "o.mp4").exists()


def test_factor_and_fps_together_are_refused(make_clip, tmp_path: Path, tiny_weights: Path) -> None:
    result = invoke("interpolate", str(make_clip()), str(tmp_path / "o.mp4"), "--factor", "2", "--fps", "60")
    assert_one_line_error(result, "either --factor or --fps", code=2)


def test_bad_fps_is_refused(make_clip, tmp_path: Path) -> None:
    result = invoke("interpolate", str(make_clip()), str(tmp_path / "o.mp4"), "--fps", "fast")
    assert_one_line_error(result, "not a frame rate", code=2)


def test_fp16_on_cpu_is_refused(make_clip, tmp_path: Path, tiny_weights: Path) -> None:
    result = invoke("interpolate", str(make_clip()), str(tmp_path / "o.mp4"), "--weights", str(tiny_weights),
                    "--device", "cpu", "--precision", "fp16")
    assert_one_line_error(result, "fp16 runs only on CUDA")


def test_ctrl_c_exits_130_and_leaves_nothing(make_clip, tmp_path: Path, tiny_weights: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = make_clip(count=12)
    calls = {"n": 0}
    original = FrameInterpolator.synthesize

    def interrupted(self, pairs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return original(self, pairs)

    monkeypatch.setattr(FrameInterpolator, "synthesize", interrupted)
    result = invoke("interpolate", str(source), str(tmp_path / "o.mp4"), "--weights", str(tiny_weights),
                    "--batch-size", "1", "-q")
    assert result.exit_code == 130, result.output
    assert "Interrupted" in result.stderr
    assert calls["n"] == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4"]


def test_encoder_failure_midway_leaves_nothing(make_clip, tmp_path: Path, tiny_weights: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An error in the encoder thread reaches the user as one line; no partial or temporary file stays."""
    from vfi_cli.errors import VideoError

    source = make_clip(count=12)
    original = VideoWriter.write

    def failing(self, frame, time=None):
        if self.frames_written == 5:
            raise VideoError("writing failed: No space left on device")
        return original(self, frame, time)

    monkeypatch.setattr(VideoWriter, "write", failing)
    result = invoke("interpolate", str(source), str(tmp_path / "o.mp4"), "--weights", str(tiny_weights), "-q")
    assert_one_line_error(result, "No space left on device")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4"]


def test_info_prints_the_parameter_count(tiny_weights: Path) -> None:
    result = invoke("info", "--weights", str(tiny_weights))
    assert result.exit_code == 0, result.output
    import torch

    from vfi_cli.model.weights import load_weights

    model, _ = load_weights(tiny_weights)
    total = sum(p.numel() for p in model.parameters())
    assert f"total {total:>10,d} parameters".split() == [w for w in result.output.splitlines()[-1].split()]
    assert torch.__version__ in result.output
    assert f"stride: {model.stride} (frame sides are padded to multiples of {model.multiple()})" in result.output


def test_info_summarises_the_card_in_a_few_lines() -> None:
    from vfi_cli.model.card import card_summary

    card = {
        "recipe": {"steps": 4000, "wall_seconds": 7200.0, "hardware": ["CPU A, 1 process(es) × 2 threads"], "command": "vfi train x",
                   "init_from": {"file": "a.safetensors", "sha256": "ab12"}, "train_config": {"lr": 1e-4}},
        "metrics": {"training": {"total": 0.1}, "holdout": {"clips": {}, "mean_of_clips": {"vfi": {"psnr": 36.678, "ssim": 0.97684}}}},
    }
    assert card_summary(card) == [
        "trained: 4000 steps, 2.0 h on CPU A, 1 process(es) × 2 threads",
        "  fine-tuned from a.safetensors (sha256 ab12)",
        "  command: vfi train x",
        "held-out PSNR / SSIM (mean of clips): vfi 36.68 / 0.9768",
    ]
    assert card_summary({"recipe": {"trained": False}}) == []


def test_info_lists_every_training_stage_and_their_sum() -> None:
    from vfi_cli.model.card import card_summary

    first = {"steps": 5000, "wall_seconds": 3600.0, "command": "vfi train a"}
    second = {"steps": 2000, "wall_seconds": 1800.0, "init_from": {"file": "a.safetensors", "sha256": "aa", "recipe": first}}
    third = {"steps": 1000, "wall_seconds": 1800.0, "hardware": ["CPU"], "command": "vfi train c",
             "init_from": {"file": "b.safetensors", "sha256": "bb", "recipe": second}}
    assert card_summary({"recipe": third}) == [
        "trained: 1000 steps, 0.5 h on CPU",
        "  fine-tuned from b.safetensors (sha256 bb), itself 2000 steps, 0.5 h",
        "  fine-tuned from a.safetensors (sha256 aa), itself 5000 steps, 1.0 h",
        "  in all: 3 stages, 8000 steps, 2.0 h",
        "  command: vfi train c",
    ]


def test_warnings_show_once_as_one_line_and_verbose_adds_the_info_lines(capsys: pytest.CaptureFixture[str]) -> None:
    import logging
    import warnings

    from vfi_cli.cli.output import Output

    log = logging.getLogger("vfi_cli.engine.pipeline")
    for verbose in (0, 1):
        Output(verbose=verbose)
        log.warning("%d input frame(s) could not be decoded", 2)
        log.info("weights w on cpu")
        if not verbose:  # Python shows a warning once per place
            warnings.warn("deprecated thing", UserWarning, stacklevel=1)
        lines = capsys.readouterr().err.splitlines()
        assert lines[0] == "Warning: 2 input frame(s) could not be decoded"
        assert ("weights w on cpu" in lines) == bool(verbose)
        if not verbose:
            assert sum("deprecated thing" in line for line in lines) == 1 and lines[-1].startswith("Warning: ")
    Output(verbose=0, quiet=True)  # -q hides progress and status lines, never a warning
    log.warning("still shown")
    assert capsys.readouterr().err == "Warning: still shown\n"


def test_verbose_shows_the_info_lines(make_clip, tiny_weights: Path, tmp_path: Path) -> None:
    source = make_clip(count=4, rate=25)
    quiet = invoke("interpolate", str(source), str(tmp_path / "a.mp4"), "--weights", str(tiny_weights), "--device", "cpu", "-q")
    assert quiet.exit_code == 0 and quiet.stderr == ""
    verbose = invoke("interpolate", str(source), str(tmp_path / "b.mp4"), "--weights", str(tiny_weights), "--device", "cpu", "-q", "-v")
    assert verbose.exit_code == 0, verbose.output
    assert f"weights {tiny_weights} (sha256 " in verbose.stderr and "copied packet for packet" in verbose.stderr
