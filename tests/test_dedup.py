"""--dedup: held drawings of animation ("on twos") found through compression noise, and their motion
spread evenly over the output frames; long holds and cuts left as they were."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from tests.conftest import BlendInterpolator, decode_video
from vfi_cli import cli
from vfi_cli.config import ConvertOptions, EncodeSettings
from vfi_cli.engine.dedup import Deduplicator
from vfi_cli.engine.pipeline import convert_video
from vfi_cli.engine.scenes import frame_difference, is_duplicate
from vfi_cli.engine.schedule import Schedule
from vfi_cli.results import Summary
from vfi_cli.video.reader import probe

LOSSLESS = EncodeSettings(codec="ffv1", crf=None, preset=None, pix_fmt="yuv444p")
STEP = 4  # pixels the ball moves from one drawing to the next


def drawing(k: int, height: int = 96, width: int = 160, step: int = STEP, grain: int = 0) -> np.ndarray:
    """A cel: flat sky and ground, a red ball with a dark outline moving right by ``step`` per drawing,
    and a yellow card moving down at the top right (they never overlap); ``grain`` adds noise of that
    many levels, the same in every frame of the drawing (digital grain, as many anime releases have)."""
    image = np.empty((height, width, 3), np.uint8)
    image[:] = (120, 180, 235)
    image[int(height * 0.75) :] = (90, 160, 70)
    x = 24 + step * k
    cv2.circle(image, (x, height // 2), 12, (230, 80, 60), -1, lineType=cv2.LINE_AA)
    cv2.circle(image, (x, height // 2), 12, (20, 20, 20), 2, lineType=cv2.LINE_AA)
    top = 4 + (step // 2) * k
    cv2.rectangle(image, (width - 30, top), (width - 10, top + 12), (250, 220, 60), -1)
    cv2.rectangle(image, (width - 30, top), (width - 10, top + 12), (20, 20, 20), 1)
    if grain:
        noise = np.random.default_rng(k).integers(-grain, grain + 1, image.shape)
        image = np.clip(image + noise, 0, 255).astype(np.uint8)
    return image


def write_lossy(path: Path, frames: list[np.ndarray], crf: int = 23, rate: int = 24) -> Path:
    """x264 at ``crf``: a held drawing's repeats come out different by a few to tens of levels."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=rate, options={"crf": str(crf), "preset": "medium"})
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        for index, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
            frame.pts, frame.time_base = index, Fraction(1, rate)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def ball_x(rgb: np.ndarray) -> float:
    """The ball's horizontal centre: the centroid of R - G above the sky's (-60), in the band of rows
    the ball crosses and left of the card. It is linear in the pixel values, so it reads a frame
    blended from two drawings at t as the position (1 - t)·x1 + t·x2."""
    band = rgb[30:66, :125].astype(np.float64)
    weight = np.clip(band[..., 0] - band[..., 1] + 60, 0, None)
    return float((weight * np.arange(band.shape[1])).sum() / weight.sum())


def convert(source: Path, destination: Path, **options) -> Summary:
    return convert_video(probe(source), destination, BlendInterpolator(), ConvertOptions(encode=LOSSLESS, **options), batch_size=4)


def test_a_held_span_is_timed_as_one_interval() -> None:
    schedule = Schedule(Fraction(24), Fraction(48), factor=2)
    made = schedule.add_input(Fraction(0))
    schedule.hold(Fraction(1, 24))
    made += schedule.add_input(Fraction(2, 24))
    assert [(job.time, job.left, job.t) for job in made] == [(Fraction(j, 48), 0, Fraction(j, 4)) for j in range(4)]
    schedule = Schedule(Fraction(24), Fraction(60))  # --fps 60: a span of 2/24 s holds 5 output frames
    made = schedule.add_input(Fraction(0))
    schedule.hold(Fraction(1, 24))
    made += schedule.add_input(Fraction(2, 24))
    assert [job.t for job in made] == [Fraction(j, 5) for j in range(5)]


def test_compressed_repeats_are_found_by_tolerance_not_bit_for_bit(tmp_path: Path) -> None:
    """19 grainy drawings on twos through x264 CRF 23 and 28: at most one repeat comes out bit-identical
    (what vfi's still-pair test catches), single pixels differ by 14 levels and more, yet every repeat
    lies within 10 levels by the block measure (at most 6), and the smallest move (1 px) far above it (22)."""
    for step, crf in ((STEP, 23), (1, 28)):
        frames_in = [drawing(k // 2, step=step, grain=3) for k in range(38)]
        _, frames = decode_video(write_lossy(tmp_path / f"on_twos_{step}.mp4", frames_in, crf=crf))
        repeats = [(frames[i], frames[i + 1]) for i in range(0, 38, 2)]
        moves = [(frames[i], frames[i + 1]) for i in range(1, 37, 2)]
        assert sum(is_duplicate(a, b, 0) for a, b in repeats) <= 1
        assert sum(is_duplicate(a, b, 10) for a, b in repeats) == 19
        assert max(frame_difference(a, b) for a, b in repeats) <= 6 < 20 <= min(frame_difference(a, b) for a, b in moves)
        assert max(int(np.abs(a.astype(int) - b).max()) for a, b in repeats) >= 14


@pytest.mark.parametrize(("factor", "fps", "per_span"), [(2, None, 4), (None, Fraction(60), 5)])
def test_motion_held_on_twos_is_spread_evenly_over_the_output_frames(tmp_path: Path, factor, fps, per_span) -> None:
    """The ball moves 4 px per drawing, each drawing held for 2 frames at 24 fps. Off, the output moves
    in bursts (0, 0, 2, 2 px per frame at 48 fps); with --dedup 10 by 1 px every frame (0.8 at 60 fps)."""
    source = write_lossy(tmp_path / "on_twos.mp4", [drawing(k // 2) for k in range(24)])
    spreads = {}
    for dedup in (None, 10.0):
        out = tmp_path / f"out-{dedup}.mkv"  # a writer never replaces an existing output unasked
        summary = convert(source, out, factor=factor, fps=fps, dedup=dedup)
        times, frames = decode_video(out)
        assert summary.frames_out == len(frames) == (48 if factor else 60) and summary.duplicates == (12 if dedup else 0)
        assert all(abs(t - Fraction(j, 48 if factor else 60)) <= Fraction(1, 2000) for j, t in enumerate(times))
        moving = len(frames) - per_span + 1  # the last drawing is held to the end: nothing to move towards
        steps = np.diff([ball_x(frame) for frame in frames[:moving]])
        spreads[dedup] = float(np.ptp(steps))
        if dedup:
            assert abs(steps.mean() - STEP / per_span) < 0.05
    assert spreads[None] > 1.5  # bursts: 0 px, then 2 (1.6 at 60 fps) per frame
    assert spreads[10.0] < 0.15  # even


def test_a_long_hold_stays_still_and_a_cut_after_a_hold_stays_in_place(tmp_path: Path) -> None:
    frames = [drawing(0)] * 6 + [drawing(1)] * 2 + [drawing(2)] * 2 + [255 - drawing(5)] * 3  # a still, on twos, a cut
    source = write_lossy(tmp_path / "in.mp4", frames, crf=18)
    summary = convert(source, tmp_path / "out.mkv", factor=2, dedup=10.0)
    _, out = decode_video(tmp_path / "out.mkv")
    _, decoded = decode_video(source)
    assert summary.duplicates == 1 + 2  # drawing 1's repeat (not drawing 2's: a cut follows), and the last shot's two
    xs = [ball_x(frame) for frame in out[:11]]  # frames 0-5 at outputs 0, 2 ... 10
    assert max(xs) - min(xs) < 0.3  # six frames held: the still stays still (no creeping motion)
    assert summary.cuts == 1  # drawing 2 is shown until the cut at frame 10 (output 19, the midpoint rule), as without --dedup
    assert frame_difference(out[18], decoded[9]) < 15 < 100 < frame_difference(out[18], decoded[10])  # (4:2:0 edges: ~10)
    assert frame_difference(out[19], decoded[10]) < 15 < 100 < frame_difference(out[19], decoded[9])
    steps = np.diff([ball_x(frame) for frame in out[12:17]])  # drawing 1 (frames 6, 7) to 2 (frame 8) re-timed over 4 outputs
    assert np.abs(steps - STEP / 4).max() < 0.2


def test_the_deduplicator_passes_a_still_on_after_max_hold_frames() -> None:
    class Frame:
        def __init__(self, value: int, time: Fraction) -> None:
            self.rgb, self.time = np.full((8, 8, 3), value, np.uint8), time

    schedule = Schedule(Fraction(24), Fraction(48), factor=2)
    values = [0, 0, 9, 9, 9, 9, 9, 9, 30]
    dedup = Deduplicator(schedule, tolerance=0, max_hold=4)
    passed = []
    for frame in dedup(Frame(v, Fraction(k, 24)) for k, v in enumerate(values)):
        passed.append(frame.time * 24)
        schedule.add_input(frame.time)
    assert passed == [0, 2, 3, 4, 5, 6, 7, 8] and dedup.dropped == 1  # 9 is held 6 frames: passed on as a still


def test_the_command_takes_dedup(tmp_path: Path, tiny_weights: Path) -> None:
    source = write_lossy(tmp_path / "in.mp4", [drawing(k // 2) for k in range(8)])
    runner = CliRunner()
    result = runner.invoke(cli.main, ["interpolate", str(source), str(tmp_path / "o.mp4"), "--weights", str(tiny_weights), "--dedup", "10"])
    assert result.exit_code == 0, result.output
    assert "4 repeated frame(s) re-timed" in result.stderr
    result = runner.invoke(cli.main, ["interpolate", str(source), str(tmp_path / "p.mp4"), "--dedup", "some"])
    assert result.exit_code == 2 and "--dedup takes off, exact or a tolerance" in result.stderr
