"""Batches (`vfi interpolate IN... -o DIR`): planning and names, skipping, one bad file among good
ones, the table and JSON, Ctrl-C, --jobs, --device lists, and the progress lines of unattended runs."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from tests.conftest import decode_video, translating_frames, write_video
from vfi_cli import cli
from vfi_cli.config import ConvertOptions
from vfi_cli.errors import VfiError
from vfi_cli.jobs.batch import plan_batch
from vfi_cli.jobs.executors import check_devices, worker_devices


def invoke(*args: str):
    return CliRunner().invoke(cli.main, list(args))


def clip(path: Path, count: int = 6, seed: int = 0, size: tuple[int, int] = (32, 48)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_video(path, translating_frames(count, size[0], size[1], step=(2, 0), seed=seed), 25)


def error_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("Error:")]


def test_five_files_one_corrupt_then_again_then_overwrite(tmp_path: Path, tiny_weights: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The issue's bar: 4 outputs, one line for the bad file, a table, exit 1; again: the 4 skipped
    (the bad one fails again: still 1); --overwrite converts them again. One model for the batch."""
    import vfi_cli.backends.eager as eager

    counts = {"c0.mp4": 4, "c1.mp4": 5, "c2.mp4": 6, "c3.mp4": 7}
    for k, (name, count) in enumerate(counts.items()):
        clip(tmp_path / "in" / name, count, seed=k)
    (tmp_path / "in" / "broken.mp4").write_bytes((tmp_path / "in" / "c0.mp4").read_bytes()[:600])
    loads = []
    original = eager.load_model
    monkeypatch.setattr(eager, "load_model", lambda *a, **k: loads.append(1) or original(*a, **k))
    out = tmp_path / "out"
    args = ("interpolate", str(tmp_path / "in"), "-o", str(out), "--weights", str(tiny_weights))

    result = invoke(*args)
    assert result.exit_code == 1, result.output
    assert len(loads) == 1
    assert sorted(p.name for p in out.iterdir()) == [f"c{k}_50fps.mp4" for k in range(4)]
    for name, count in counts.items():
        times, _ = decode_video(out / name.replace(".mp4", "_50fps.mp4"))
        assert times == [Fraction(j, 50) for j in range(2 * count)]
    errors = error_lines(result.stderr)
    assert len(errors) == 1 and "broken.mp4" in errors[0], result.stderr
    assert "status" in result.stderr and "4 converted, 1 failed" in result.stderr
    written = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}

    again = invoke(*args, "--json", "-")
    assert again.exit_code == 1, again.output
    report = json.loads(again.stdout)
    assert {Path(r["file"]).name: r["status"] for r in report["files"]} == {**dict.fromkeys(counts, "skipped"), "broken.mp4": "failed"}
    assert report["totals"] | {"seconds": 0} == {"files": 5, "converted": 0, "skipped": 4, "failed": 1, "frames_in": 0,
                                                  "frames_out": 0, "seconds": 0}
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == written

    json_file = tmp_path / "report.json"
    forced = invoke(*args, "--overwrite", "-q", "--json", str(json_file))
    assert forced.exit_code == 1, forced.output
    records = json.loads(json_file.read_text())["files"]
    assert [(Path(r["file"]).name, r["status"], r["frames_out"]) for r in records] == [
        ("broken.mp4", "failed", None), *((name, "converted", 2 * count) for name, count in counts.items())]
    assert len(error_lines(forced.stderr)) == 1 and "status" not in forced.stderr  # -q: no table


def test_names_subfolders_hidden_files_and_outputs(tmp_path: Path) -> None:
    root = tmp_path / "in"
    for path in (root / "a.mp4", root / "sub" / "deep" / "b.mkv", root / "sub" / ".c.mp4", root / ".cache" / "d.mp4",
                 root / ".a.vfi-partial-12.mp4", root / "out" / "old.mp4"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
    (root / "notes.txt").write_text("not a video")
    options = ConvertOptions(factor=3)
    plan = plan_batch([root], root / "out", options, name="{stem}-x{factor}.{ext}", recursive=True)
    assert [(job.source.relative_to(root), job.destination.relative_to(root)) for job in plan.jobs] == [
        (Path("a.mp4"), Path("out/a-x3.mp4")), (Path("sub/deep/b.mkv"), Path("out/sub/deep/b-x3.mkv"))]
    flat = plan_batch([root], tmp_path / "o", ConvertOptions(fps=Fraction(60000, 1001)))
    assert [job.destination.name for job in flat.jobs] == ["a_59.94fps.mp4"]
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "a_59.94fps.mp4").write_bytes(b"")
    rerun = plan_batch([root], tmp_path / "o", ConvertOptions(fps=Fraction(60000, 1001)))
    assert rerun.jobs == [] and [(r.source.name, r.status) for r in rerun.settled] == [("a.mp4", "skipped")]
    # A batch written into its inputs' folder: its outputs are not inputs on the next run.
    beside = plan_batch([root], root, ConvertOptions(fps=Fraction(50)))
    (root / "a_50fps.mp4").write_bytes(b"")
    assert [r.status for r in plan_batch([root], root, ConvertOptions(fps=Fraction(50))).settled] == ["skipped"]
    assert [job.source.name for job in beside.jobs] == ["a.mp4"]


def test_collisions_self_outputs_and_bad_patterns_are_refused(tmp_path: Path, tiny_weights: Path) -> None:
    clip(tmp_path / "x" / "a.mp4")
    clip(tmp_path / "y" / "a.mp4")
    with pytest.raises(VfiError, match="would both be written to"):
        plan_batch([tmp_path / "x", tmp_path / "y"], tmp_path / "out", ConvertOptions(fps=Fraction(50)))
    with pytest.raises(VfiError, match="would be the file itself"):
        plan_batch([tmp_path / "x"], tmp_path / "x", ConvertOptions(fps=Fraction(50)), name="{stem}{suffix}", overwrite=True)
    for pattern, message in (("{stem}_{rate}{suffix}", r"uses \{rate\}"), ("sub/{stem}{suffix}", "not a path"), ("{stem", "not a valid")):
        with pytest.raises(VfiError, match=message):
            plan_batch([tmp_path / "x"], tmp_path / "out", ConvertOptions(), name=pattern)
    result = invoke("interpolate", str(tmp_path / "x"), str(tmp_path / "y"), "-o", str(tmp_path / "out"), "--fps", "50",
                    "--weights", str(tiny_weights))
    assert result.exit_code == 1 and result.stderr.count("\n") == 1 and "would both be written" in result.stderr, result.output
    assert not (tmp_path / "out").exists()


def test_single_file_form_and_batch_options_do_not_mix(tmp_path: Path) -> None:
    for args, message in ((["a.mp4", "b.mp4", "c.mp4"], "-o/--output-dir"), (["a.mp4", "b.mp4", "--jobs", "2"], "--jobs: for a batch"),
                          (["a.mp4", "b.mp4", "--device", "cuda:0,cuda:1"], "several --device: for a batch"),
                          (["a", "-o", "o", "--input-fps", "24"], "--input-fps")):
        result = invoke("interpolate", *args)
        assert result.exit_code == 2 and result.stderr.startswith("Error:") and message in result.stderr, result.output


def test_device_lists_deal_one_device_per_worker(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    check_devices(["cuda:0", "cuda:1"])
    with pytest.raises(VfiError, match="only 2 CUDA device"):
        check_devices(["cuda:0", "cuda:2"])
    assert worker_devices(["cuda:0", "cuda:1"], 2) == ["cuda:0", "cuda:1"]
    assert worker_devices(["cuda:0", "cuda:1"], 4) == ["cuda:0", "cuda:1", "cuda:0", "cuda:1"]
    seen = {}
    monkeypatch.setattr("vfi_cli.api.convert_batch", lambda *a, **k: seen.update(k) or __import__("vfi_cli").BatchSummary((), 0.0))
    result = invoke("interpolate", str(tmp_path), "-o", str(tmp_path / "o"), "--device", "cuda:0,cuda:1", "-q")
    assert result.exit_code == 0, result.output
    assert seen["devices"] == ("cuda:0", "cuda:1") and seen["engine"].device == "cuda:0"


def test_two_jobs_write_what_one_job_writes(tmp_path: Path, tiny_weights: Path) -> None:
    for k in range(3):
        clip(tmp_path / "in" / f"c{k}.mp4", 5, seed=k)
    common = ("--weights", str(tiny_weights), "--codec", "ffv1", "--threads", "1", "-q")
    one = invoke("interpolate", str(tmp_path / "in"), "-o", str(tmp_path / "one"), *common)
    two = invoke("interpolate", str(tmp_path / "in"), "-o", str(tmp_path / "two"), "--jobs", "2", *common)
    assert one.exit_code == 0 and two.exit_code == 0, one.output + two.output
    for k in range(3):
        name = f"c{k}_50fps.mp4"
        first, second = decode_video(tmp_path / "one" / name), decode_video(tmp_path / "two" / name)
        assert first[0] == second[0] and len(first[1]) == 10
        assert all((a == b).all() for a, b in zip(first[1], second[1]))


def test_ctrl_c_stops_the_batch_and_keeps_what_was_done(tmp_path: Path, tiny_weights: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from vfi_cli.engine.runner import FrameInterpolator

    for k in range(3):
        clip(tmp_path / "in" / f"c{k}.mp4", 6, seed=k)
    calls = {"n": 0}
    original = FrameInterpolator.synthesize

    def interrupted(self, pairs):
        calls["n"] += 1
        if calls["n"] == 8:  # the second file (five calls per file at --batch-size 1)
            raise KeyboardInterrupt
        return original(self, pairs)

    monkeypatch.setattr(FrameInterpolator, "synthesize", interrupted)
    result = invoke("interpolate", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--weights", str(tiny_weights),
                    "--batch-size", "1", "-q")
    assert result.exit_code == 130, result.output
    assert "1 of 3 file(s) done" in result.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["c0_50fps.mp4"]  # no partial output of the second


def test_unattended_runs_print_progress_lines(tmp_path: Path, tiny_weights: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Off a terminal (CliRunner's stderr is not one) a line per interval, naming the file, and one at the end."""
    monkeypatch.setenv("VFI_PROGRESS_INTERVAL", "0")
    clip(tmp_path / "in" / "c0.mp4", 6)
    result = invoke("interpolate", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--weights", str(tiny_weights), "--batch-size", "1")
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stderr.splitlines() if line.startswith("[1/1] c0.mp4: ")]
    done = [int(line.split(": ")[1].split("/")[0]) for line in lines]
    assert len(lines) >= 4 and done == sorted(done) and done[-1] == 12, result.stderr
    assert lines[-1].startswith("[1/1] c0.mp4: 12/12 frames, ") and "frames/s" in lines[-1]
    assert any("ETA" in line for line in lines[:-1])
    quiet = invoke("interpolate", str(tmp_path / "in"), "-o", str(tmp_path / "out2"), "--weights", str(tiny_weights), "-q")
    assert quiet.exit_code == 0 and quiet.stderr == "", quiet.stderr


@pytest.mark.parametrize("codec", ["libx265", "libsvtav1"])
def test_quiet_silences_the_encoder_libraries(codec: str, tmp_path: Path, tiny_weights: Path, capfd: pytest.CaptureFixture[str]) -> None:
    """x265 and SVT-AV1 write their banners from C straight to fd 2; -q leaves it empty."""
    import av

    try:
        av.codec.Codec(codec, "w")
    except (av.codec.codec.UnknownCodecError, ValueError):
        pytest.skip(f"{codec} is not in this PyAV build")
    source = clip(tmp_path / "in.mp4", 4, size=(64, 96))  # x265 needs frames of 64 pixels or more
    result = invoke("interpolate", str(source), str(tmp_path / "o.mkv"), "--codec", codec, "--preset", "ultrafast",
                    "--weights", str(tiny_weights), "-q")
    assert result.exit_code == 0, result.output
    assert result.stderr == "" and capfd.readouterr().err == ""
