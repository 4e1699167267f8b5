"""Resumable conversion (issue 15): a long output made in segments is the output of one uninterrupted
run (frames, timestamps, pixels with a lossless codec, audio); an interrupted run (SIGKILL, Ctrl-C) is
resumed where it stopped without redoing the finished segments; a changed input or changed options
start over."""

from __future__ import annotations

import json
import os
import pickle
import random
import signal
import subprocess
import sys
import threading
import time
from fractions import Fraction
from pathlib import Path

import av
import pytest

from tests.conftest import BlendInterpolator, decode_video, translating_frames, write_video
from tests.test_misuse import env, invoke, listing, warnings
from tests.test_streams import _timing
from vfi_cli.config import ConvertOptions, EncodeSettings, EngineOptions
from vfi_cli.engine import pipeline
from vfi_cli.engine.pipeline import convert_video, expected_output_frames
from vfi_cli.engine.schedule import Schedule
from vfi_cli.jobs.manifest import CHANGED, Journal
from vfi_cli.jobs.segmented import run_segments
from vfi_cli.jobs.segments import plan_segments, run_segment
from vfi_cli.video.reader import probe

LOSSLESS = EncodeSettings(codec="ffv1", crf=None, preset=None, pix_fmt="yuv444p")
H264 = EncodeSettings(codec="libx264", crf=30, preset="medium")  # with B-frames
SUMMED = ("frames_in", "frames_out", "synthesized", "cuts", "static_pairs", "duration_in", "duration_out", "frames_lost")


def cut_clip(path: Path, frames: int = 36) -> Path:
    """24 fps with audio, a hard cut at 1 s and a still pair across 0.5 s (both segment boundaries at
    --segment 0.5), keyframes every 5 frames so that segments start from seeks to other keyframes."""
    pictures = translating_frames(24, 32, 48, step=(2, 0)) + translating_frames(frames - 24, 32, 48, step=(2, 0), seed=1)
    pictures[12] = pictures[11]
    return write_video(path, pictures[:frames], 24, audio_seconds=frames / 24, options={"crf": "0", "preset": "ultrafast", "g": "5"})


def whole_and_segmented(source: Path, tmp_path: Path, suffix: str, seconds: Fraction, **options):
    """Convert ``source`` with the blend stand-in for the model in one piece and in segments."""
    info = probe(source)
    convert = ConvertOptions(**options)
    whole = convert_video(info, tmp_path / f"whole{suffix}", BlendInterpolator(), convert, batch_size=1)
    plan = plan_segments(info, tmp_path / f"segmented{suffix}", convert, EngineOptions(batch_size=1), None, seconds)
    assert plan is not None and plan.count > 2
    segmented = run_segments(plan, BlendInterpolator(), "blend", expected_frames=expected_output_frames(info, convert))
    return whole, segmented


@pytest.mark.parametrize(("suffix", "seconds", "rate"), [(".mkv", Fraction(1, 2), {"factor": 2}),
                                                          (".mp4", Fraction(3, 10), {"fps": Fraction(60)})])
def test_segments_make_the_output_of_a_whole_run(tmp_path: Path, suffix: str, seconds: Fraction, rate: dict) -> None:
    source = cut_clip(tmp_path / "in.mp4")
    whole, segmented = whole_and_segmented(source, tmp_path, suffix, seconds, encode=LOSSLESS, **rate)
    assert {name: getattr(segmented, name) for name in SUMMED} == {name: getattr(whole, name) for name in SUMMED}
    assert whole.cuts == 1 and whole.static_pairs == 1  # decided once, in the segment that holds the pair
    (times, frames), (whole_times, whole_frames) = decode_video(tmp_path / f"segmented{suffix}"), decode_video(tmp_path / f"whole{suffix}")
    assert times == whole_times and len(frames) == whole.frames_out
    assert all((a == b).all() for a, b in zip(frames, whole_frames))
    assert _timing(tmp_path / f"segmented{suffix}", "audio") == _timing(tmp_path / f"whole{suffix}", "audio")
    assert listing(tmp_path) == {"in.mp4", f"whole{suffix}", f"segmented{suffix}"}  # the work folder is gone


def _packet_times(path: Path) -> list[tuple[int | None, int | None]]:
    with av.open(str(path)) as container:
        return [(p.pts, p.dts) for p in container.demux(container.streams.video[0]) if p.size]


def test_h264_segments_join_with_their_b_frames_in_order(tmp_path: Path) -> None:
    """libx264 reorders frames (decoding times before presentation times): the joined file keeps every
    frame at its time, decoding times rising across the joins, and the decoder gives all 90 frames."""
    source = cut_clip(tmp_path / "in.mp4", frames=30)
    whole, segmented = whole_and_segmented(source, tmp_path, ".mp4", Fraction(3, 10), encode=H264, factor=3)
    times = decode_video(tmp_path / "segmented.mp4")[0]
    assert times == decode_video(tmp_path / "whole.mp4")[0] and len(times) == 90
    stamps = _packet_times(tmp_path / "segmented.mp4")
    assert len(stamps) == whole.frames_out == 90 and any(pts != dts for pts, dts in stamps)  # B-frames
    assert all(a[1] < b[1] for a, b in zip(stamps, stamps[1:]))


def test_a_segment_schedule_gives_what_the_whole_schedule_gives_in_its_span() -> None:
    """Random constant and variable rates (Matroska millisecond times), both modes, boundaries between frames."""
    generator = random.Random(15)
    for _ in range(150):
        rate = generator.choice([Fraction(24), Fraction(24000, 1001), Fraction(30)])
        times, now = [], Fraction(0)
        for _ in range(generator.randint(5, 50)):
            times.append(Fraction(round(now * 1000), 1000))
            now += generator.choice([1, 1, 2, Fraction(1, 2)]) / rate if generator.random() < 0.3 else 1 / rate
        factor = generator.choice([3, None])
        rate_out = rate * 3 if factor else generator.choice([Fraction(60), Fraction(50), Fraction(60000, 1001)])

        def run(frames: list[Fraction], span=None) -> tuple[list[tuple[Fraction, Fraction]], Schedule]:
            schedule = Schedule(rate, rate_out, factor=factor, span=span)
            made = [job for time in frames for job in schedule.add_input(time)] + schedule.finish()
            return [(job.time, job.t) for job in made], schedule

        whole, schedule = run(times)
        seconds = generator.choice([Fraction(1, 3), Fraction(1, 2), Fraction(7, 10)])
        joined, used = [], 0
        bounds = [k * seconds for k in range(int(times[-1] / seconds) + 3)]
        for k, begin in enumerate(bounds):
            end = bounds[k + 1] if k + 1 < len(bounds) else None
            first = max([i for i, t in enumerate(times) if t < begin - schedule.tolerance], default=0)
            last = min([i for i, t in enumerate(times) if end is not None and t >= end + schedule.tolerance], default=len(times) - 1)
            made, part = run(times[first : last + 1], (begin, end))
            joined, used = joined + made, used + part.used
        assert joined == whole and used == schedule.used


# ---------------------------------------------------------------------------------------------- interruptions

# A real ``vfi interpolate`` whose model is slowed down, so that it is interrupted after some segments and before the end.
_SLOW_RUN = (
    "import sys, time\n"
    "from vfi_cli.engine.runner import FrameInterpolator\n"
    "original = FrameInterpolator.synthesize\n"
    "def slow(self, pairs):\n"
    "    time.sleep(0.12)\n"
    "    return original(self, pairs)\n"
    "FrameInterpolator.synthesize = slow\n"
    "from vfi_cli.cli import main\n"
    "sys.exit(main())\n"
)
ARGS = ("--codec", "ffv1", "--pix-fmt", "yuv444p", "--batch-size", "1", "--threads", "1", "--precision", "fp32", "-q")


def _journalled(work: Path) -> set[int]:
    try:
        return {int(index) for index in json.loads((work / "journal.json").read_text())["segments"]}
    except (OSError, ValueError):
        return set()


def _segments_run(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Fraction, Fraction | None]]:
    """The spans this process converts from now on."""
    spans: list[tuple[Fraction, Fraction | None]] = []
    original = pipeline.convert_video

    def recorded(*args, span=None, **kwargs):
        spans.append(span)
        return original(*args, span=span, **kwargs)

    monkeypatch.setattr(pipeline, "convert_video", recorded)
    return spans


@pytest.mark.skipif(os.name != "posix", reason="POSIX signals")
@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGINT], ids=lambda s: s.name)
def test_an_interrupted_run_resumes_where_it_stopped(tiny_weights: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     signum: int) -> None:
    source = cut_clip(tmp_path / "in.mp4", frames=48)  # 4 segments of 0.5 s
    out, work = tmp_path / "out.mkv", tmp_path / ".out.mkv.vfi-work"
    process = subprocess.Popen([sys.executable, "-c", _SLOW_RUN, "interpolate", str(source), str(out), "--weights",
                                str(tiny_weights), "--segment", "0.5", *ARGS], stderr=subprocess.PIPE, text=True, env=env())
    deadline = time.monotonic() + 120
    while not _journalled(work):
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.05)
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=60)
    kept = _journalled(work)
    assert process.returncode == (-signal.SIGKILL if signum == signal.SIGKILL else 130), stderr
    assert 1 <= len(kept) < 4 and not out.exists()
    if signum == signal.SIGINT:
        assert stderr.strip().splitlines() == [f"Interrupted: {len(kept)} of 4 segments are kept in {work}; run the same "
                                               "command to resume (--no-resume starts over)."]
    spans = _segments_run(monkeypatch)
    result = invoke("interpolate", source, out, "--weights", tiny_weights, "--segment", "0.5", *ARGS)
    assert result.exit_code == 0, result.output
    assert spans == [(Fraction(k, 2), Fraction(k + 1, 2) if k < 3 else None) for k in range(4) if k not in kept]
    assert invoke("interpolate", source, tmp_path / "whole.mkv", "--weights", tiny_weights, "--segment", "0", *ARGS).exit_code == 0
    (times, frames), (whole_times, whole_frames) = decode_video(out), decode_video(tmp_path / "whole.mkv")
    assert times == whole_times and len(frames) == 96 and all((a == b).all() for a, b in zip(frames, whole_frames))
    assert _timing(out, "audio") == _timing(tmp_path / "whole.mkv", "audio")
    assert listing(tmp_path) == {"in.mp4", "out.mkv", "whole.mkv"}


def test_a_second_run_on_a_live_output_is_refused_at_once(tiny_weights: Path, tmp_path: Path) -> None:
    """The output is claimed from the start of a run to its end: a second run for it, started while the
    first converts, exits within seconds naming the first's pid, and the first finishes as it would alone."""
    source = cut_clip(tmp_path / "in.mp4", frames=48)  # 4 segments of 0.5 s
    out = tmp_path / "out.mkv"
    first = subprocess.Popen([sys.executable, "-c", _SLOW_RUN, "interpolate", str(source), str(out), "--weights",
                              str(tiny_weights), "--segment", "0.5", *ARGS], stderr=subprocess.PIPE, text=True, env=env())
    deadline = time.monotonic() + 120
    while not _journalled(tmp_path / ".out.mkv.vfi-work"):
        assert first.poll() is None and time.monotonic() < deadline, first.communicate()
        time.sleep(0.05)
    started = time.monotonic()
    second = invoke("interpolate", source, out, "--weights", tiny_weights, "--segment", "0.5", *ARGS)
    assert time.monotonic() - started < 10 and second.exit_code == 1
    refusal = f"Error: another vfi run (pid {first.pid}) is writing {out}; wait for it to end, or stop it"
    assert second.stderr.splitlines() == [refusal]
    assert first.poll() is None  # the refusal left the first run alone
    _, stderr = first.communicate(timeout=120)
    assert first.returncode == 0, stderr
    assert len(decode_video(out)[0]) == 96 and listing(tmp_path) == {"in.mp4", "out.mkv"}


# The run signals itself as it enters a phase: module, function (as the caller looks it up).
_PHASES = {"probe": ("vfi_cli.video.reader", "probe"), "model load": ("vfi_cli.backends.eager", "load_model"),
           "first segment": ("vfi_cli.jobs.segmented", "run_segment"), "join": ("vfi_cli.jobs.segmented", "join"),
           "rename": ("vfi_cli.video.concat", "commit_output")}
_SIGNALLED_RUN = (
    "import importlib, os, signal, sys\n"
    "module, name, signum = importlib.import_module(sys.argv[1]), sys.argv[2], int(sys.argv[3])\n"
    "original = getattr(module, name)\n"
    "def signalled(*args, **kwargs):\n"
    "    os.kill(os.getpid(), signum)\n"
    "    return original(*args, **kwargs)\n"
    "setattr(module, name, signalled)\n"
    "sys.argv[1:4] = []\n"
    "from vfi_cli.cli import main\n"
    "sys.exit(main())\n"
)


@pytest.mark.skipif(os.name != "posix", reason="POSIX signals")
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=lambda s: s.name)
@pytest.mark.parametrize("phase", list(_PHASES))
def test_a_signal_in_any_phase_leaves_the_output_whole_or_absent(tiny_weights: Path, tmp_path: Path, phase: str,
                                                                  signum: int) -> None:
    """Ctrl-C or SIGTERM as the run probes, loads the model, starts its first segment, joins them or
    renames the output into place: exit 128 + the signal, no OUT and nothing else beside it but the
    work folder, holding segments only when some were finished (the next run resumes them)."""
    source = cut_clip(tmp_path / "in.mp4", frames=24)  # 2 segments of 0.5 s
    out, work = tmp_path / "out.mkv", tmp_path / ".out.mkv.vfi-work"
    module, name = _PHASES[phase]
    command = ["interpolate", str(source), str(out), "--weights", str(tiny_weights), "--segment", "0.5", *ARGS]
    run = subprocess.run([sys.executable, "-c", _SIGNALLED_RUN, module, name, str(int(signum)), *command],
                         capture_output=True, text=True, env=env(), timeout=120)
    assert run.returncode == 128 + signum, run.stderr
    assert "Traceback" not in run.stderr and len(run.stderr.strip().splitlines()) == 1, run.stderr
    finished = phase in ("join", "rename")
    assert listing(tmp_path) == ({"in.mp4", work.name} if finished else {"in.mp4"})
    if finished:
        assert _journalled(work) == {0, 1}
        assert invoke("interpolate", source, out, "--weights", tiny_weights, "--segment", "0.5", *ARGS).exit_code == 0
        assert len(decode_video(out)[0]) == 48 and listing(tmp_path) == {"in.mp4", "out.mkv"}


def _interrupt_after_one_segment(monkeypatch: pytest.MonkeyPatch) -> None:
    original = Journal.record

    def record(self, index, entry):
        original(self, index, entry)
        raise KeyboardInterrupt

    monkeypatch.setattr(Journal, "record", record)


def _interrupted_after_one_segment(tmp_path: Path, weights: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path, tuple]:
    """A run of 3 segments of 0.5 s interrupted after the first: the input, OUT and the command."""
    source = cut_clip(tmp_path / "in.mp4")
    out = tmp_path / "out.mkv"
    base = ("interpolate", source, out, "--weights", weights, "--segment", "0.5", *ARGS)
    with monkeypatch.context() as patched:
        _interrupt_after_one_segment(patched)
        assert invoke(*base).exit_code == 130
    return source, out, base


def test_a_changed_input_or_changed_options_start_over(tiny_weights: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    source, _, base = _interrupted_after_one_segment(tmp_path, tiny_weights, monkeypatch)
    with monkeypatch.context() as patched:
        _interrupt_after_one_segment(patched)
        spans = _segments_run(patched)
        assert invoke(*base, "--scene-threshold", "0.5").exit_code == 130  # other options: segment 0 again
        os.utime(source, ns=(time.time_ns(), time.time_ns() + 10**9))
        assert invoke(*base, "--scene-threshold", "0.5").exit_code == 130  # the input touched: segment 0 again
        assert spans == [(0, Fraction(1, 2))] * 2
        assert warnings(caplog) == [CHANGED] * 2
    caplog.clear()
    spans = _segments_run(monkeypatch)
    assert invoke(*base, "--scene-threshold", "0.5", "--no-resume").exit_code == 0
    assert len(spans) == 3 and warnings(caplog) == [] and listing(tmp_path) == {"in.mp4", "out.mkv"}


@pytest.mark.parametrize("edit", ["outside", "not json"])
def test_an_edited_journal_is_named_in_a_warning_and_nothing_outside_the_work_folder_is_touched(
        tiny_weights: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, edit: str) -> None:
    """A journal whose segment names a file outside the work folder (or that is no longer JSON) is not
    used: the run says so, naming the journal and what was wrong, starts over, and makes the output
    an uninterrupted run makes; the file outside keeps its bytes and is never removed."""
    source, out, base = _interrupted_after_one_segment(tmp_path, tiny_weights, monkeypatch)
    journal = tmp_path / ".out.mkv.vfi-work" / "journal.json"
    recorded = json.loads(journal.read_text())
    (entry,) = recorded["segments"].values()
    outside = tmp_path / "precious.bin"
    outside.write_bytes(b"x" * entry["bytes"])  # the size recorded: it would pass for the segment
    entry["file"] = "../precious.bin"
    journal.write_text("{ not json" if edit == "not json" else json.dumps(recorded))
    spans = _segments_run(monkeypatch)
    assert invoke(*base).exit_code == 0
    outside_named = "segment 0 names '../precious.bin', which is not a file in the work folder"
    reason = "it is not valid JSON" if edit == "not json" else outside_named
    (warning,) = warnings(caplog)
    assert warning.startswith(f"{journal} is not a journal vfi wrote ({reason}") and warning.endswith("starting over")
    assert len(spans) == 3 and outside.read_bytes() == b"x" * entry["bytes"]
    whole = tmp_path / "whole.mkv"
    assert invoke("interpolate", source, whole, "--weights", tiny_weights, "--segment", "0", *ARGS).exit_code == 0
    made, reference = decode_video(out)[1], decode_video(whole)[1]
    assert len(made) == len(reference) > 0 and all((a == b).all() for a, b in zip(made, reference))
    assert listing(tmp_path) == {"in.mp4", "out.mkv", "whole.mkv", "precious.bin"}


def test_a_plan_is_plain_data_and_its_journal_takes_records_from_many_writers(tiny_weights: Path, tmp_path: Path,
                                                                             caplog: pytest.LogCaptureFixture) -> None:
    """What a cluster executor needs: a picklable plan, run_segment in any process, a journal safe to share."""
    source = cut_clip(tmp_path / "in.mp4", frames=30)
    info, options = probe(source), ConvertOptions(encode=LOSSLESS)
    plan = plan_segments(info, tmp_path / "out.mkv", options, EngineOptions(), tiny_weights, Fraction(1, 2))
    assert plan is not None and pickle.loads(pickle.dumps(plan)) == plan and plan.count == 3
    journal = Journal(plan.work)
    assert journal.begin(plan.journal_key("digest")) is None
    assert run_segment(pickle.loads(pickle.dumps(plan)), 1) == plan.segment_path(1)  # sets its own model up
    assert set(journal.done()) == {1} and journal.done()[1]["frames_out"] == 24
    writers = [threading.Thread(target=journal.record, args=(index, {"file": None, "frames_out": 0})) for index in range(2, 40)]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join()
    assert set(journal.done()) == set(range(1, 40))
    plan.segment_path(1).write_bytes(b"cut short")  # a file that is not the one recorded is not done
    assert 1 not in journal.done()
    # Conversions that are not cut: shorter than a segment, a preview, --dedup (said in one line).
    assert plan_segments(info, tmp_path / "o.mkv", options, EngineOptions(), None, Fraction(2)) is None
    assert plan_segments(info, tmp_path / "o.mkv", ConvertOptions(start=Fraction(1, 2)), EngineOptions(), None, Fraction(1, 2)) is None
    assert plan_segments(info, tmp_path / "o.mkv", ConvertOptions(dedup=0), EngineOptions(), None, Fraction(1, 2)) is None
    assert len(warnings(caplog)) == 1 and "--dedup" in warnings(caplog)[0]
