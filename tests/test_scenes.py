"""Cut and still-frame detection: cuts found, fades/dissolves/pans left alone, never a morph across a cut."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from tests.conftest import BlendInterpolator, smooth_texture, write_video
from vfi_cli.config import ConvertOptions, EncodeSettings
from vfi_cli.cli import main
from vfi_cli.engine.pipeline import convert_video
from vfi_cli.engine.runner import FrameInterpolator, PairCounts, interpolate_stream
from vfi_cli.engine.scenes import DEFAULT_CUT_THRESHOLD, SceneDetector, is_still
from vfi_cli.engine.schedule import Schedule
from vfi_cli.model.weights import load_weights
from vfi_cli.video.reader import probe


def scene(seed: int, height: int = 90, width: int = 160) -> np.ndarray:
    """A generated 'shot': large blobs of colour (a coarse texture blown up) over fine detail."""
    coarse = cv2.resize(smooth_texture(max(2, height // 12), max(2, width // 12), seed), (width, height),
                        interpolation=cv2.INTER_CUBIC).astype(np.float32)
    fine = smooth_texture(height, width, seed + 1000).astype(np.float32)
    return np.clip(0.7 * coarse + 0.3 * fine, 0, 255).round().astype(np.uint8)


def fade(first: np.ndarray, second: np.ndarray, steps: int) -> list[np.ndarray]:
    """A linear cross-dissolve from ``first`` to ``second`` in ``steps`` steps (both ends included)."""
    return [((1 - k / steps) * first.astype(np.float32) + k / steps * second.astype(np.float32)).round().astype(np.uint8)
            for k in range(steps + 1)]


def scores(frames: Sequence[np.ndarray]) -> list[float]:
    detector = SceneDetector()
    return [detector.score(a, b) for a, b in zip(frames, frames[1:])]


SEEDS = [(1, 2), (3, 4), (5, 6), (7, 8), (2, 9)]


@pytest.mark.parametrize(("seed_a", "seed_b"), SEEDS)
def test_cuts_between_unrelated_scenes_are_found(seed_a: int, seed_b: int) -> None:
    a, b = scene(seed_a), scene(seed_b)
    detector = SceneDetector()
    assert detector.is_cut(a, b) and detector.is_cut(b, a)
    assert min(detector.score(a, b), detector.score(b, a)) > DEFAULT_CUT_THRESHOLD + 0.05


def test_fade_to_black_and_back_is_not_a_cut() -> None:
    picture = scene(1)
    black = np.zeros_like(picture)
    out_and_in = fade(picture, black, 10) + fade(black, picture, 10)[1:]
    assert max(scores(out_and_in)) < DEFAULT_CUT_THRESHOLD
    # ... while the same two pictures straight after each other are a cut: the test can see one.
    assert SceneDetector().is_cut(picture, black) and SceneDetector().is_cut(black, picture)


@pytest.mark.parametrize(("seed_a", "seed_b"), SEEDS[:3])
def test_cross_dissolve_is_not_a_cut(seed_a: int, seed_b: int) -> None:
    a, b = scene(seed_a), scene(seed_b)
    assert max(scores(fade(a, b, 10))) < DEFAULT_CUT_THRESHOLD
    assert SceneDetector().is_cut(a, b)


@pytest.mark.parametrize("direction", [(1, 0), (0, 1), (1, 1), (-1, 0)])
def test_fast_pan_is_not_a_cut(direction: tuple[int, int]) -> None:
    """The camera moves an eighth of the width (and height) per frame over one large scene."""
    height, width = 90, 160
    world = scene(11, 4 * height, 4 * width)
    dx, dy = direction[0] * width // 8, direction[1] * height // 8
    x0, y0 = (3 * width if dx < 0 else 0), 0
    frames = [world[y0 + k * dy : y0 + k * dy + height, x0 + k * dx : x0 + k * dx + width] for k in range(8)]
    assert max(scores(frames)) < DEFAULT_CUT_THRESHOLD
    # A jump to a far part of the same world is a cut.
    assert SceneDetector().is_cut(world[:height, :width], world[2 * height : 3 * height, 2 * width : 3 * width])


def test_flat_pictures_cut_only_on_a_large_jump() -> None:
    black, white = np.zeros((40, 60, 3), np.uint8), np.full((40, 60, 3), 255, np.uint8)
    grey = np.full((40, 60, 3), 12, np.uint8)
    detector = SceneDetector()
    assert detector.is_cut(black, white)
    assert not detector.is_cut(black, grey)
    assert detector.is_cut(black, scene(3, 40, 60))


@pytest.mark.parametrize("shape", [(1, 1), (3, 5), (5, 3), (17, 1919 // 8), (400, 90)])
def test_any_frame_size_gets_a_score(shape: tuple[int, int]) -> None:
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
    b = 255 - a
    detector = SceneDetector()
    assert detector.score(a, a) == pytest.approx(0.0, abs=1e-6)
    assert 0.0 <= detector.score(a, b) <= 1.0


def test_sixteen_bit_frames_score_like_eight_bit_ones() -> None:
    a, b = scene(1), scene(2)
    detector = SceneDetector()
    wide = [frame.astype(np.uint16) * 257 for frame in (a, b)]
    assert detector.score(*wide) == pytest.approx(detector.score(a, b), abs=1e-3)


def test_duplicates_are_exact() -> None:
    a = scene(4)
    b = a.copy()
    assert is_still(a, b)
    b[37, 101, 2] ^= 1  # one level, off the sparse sampling grid
    assert not is_still(a, b)
    assert not is_still(a, a[:-1])
    assert is_still(a, b, noise=1.0)  # training's rule: compression noise is still


def test_threshold_is_validated() -> None:
    with pytest.raises(ValueError):
        SceneDetector(0.0)
    with pytest.raises(ValueError):
        SceneDetector(1.5)


# ----------------------------------------------------------------------------- the engine at cuts and stills


@dataclass
class Frame:
    time: Fraction
    rgb: np.ndarray


def _clip_frames() -> list[np.ndarray]:
    """Two still frames, a pan, then a cut to another scene which pans on."""
    world_a, world_b = scene(1, 60, 200), scene(2, 60, 200)
    first = [world_a[:, :80]] * 3 + [world_a[:, 4 * k : 4 * k + 80] for k in range(1, 4)]
    second = [world_b[:, 4 * k : 4 * k + 80] for k in range(4)]
    return first + second  # pairs (0,1), (1,2) are static; (5,6) is the cut


@pytest.mark.parametrize("detect", [True, False])
def test_stream_repeats_the_nearer_frame_at_a_cut_and_copies_stills(detect: bool) -> None:
    rgb = _clip_frames()
    rate = Fraction(24)
    frames = [Frame(Fraction(k) / rate, picture) for k, picture in enumerate(rgb)]
    counts = PairCounts()
    detector = SceneDetector() if detect else None
    produced = list(interpolate_stream(frames, Schedule(rate, rate * 4), BlendInterpolator(), 3, detector, counts))
    assert (counts.cuts, counts.static) == ((1, 2) if detect else (0, 2))
    for job, payload in produced:
        if job.t == 0 or job.left in (0, 1):  # input frames and still pairs: the input frame itself
            assert payload is frames[job.left]
        elif job.left == 5 and detect:  # the cut: t 1/4 -> frame 5; t 1/2 and 3/4 -> frame 6
            assert payload is frames[5 + (job.t >= Fraction(1, 2))]
        else:
            assert isinstance(payload, np.ndarray)
            expected = ((1 - float(job.t)) * rgb[job.left].astype(np.float32) + float(job.t) * rgb[job.left + 1]).round()
            assert np.array_equal(payload, expected.astype(np.uint8))


def _planes(path: Path) -> list[np.ndarray]:
    """Every decoded frame's raw pixel planes, stacked (no colour conversion at all)."""
    with av.open(str(path)) as container:
        return [np.concatenate([np.frombuffer(bytes(p), np.uint8) for p in frame.planes]) for frame in container.decode(video=0)]


@pytest.mark.parametrize("pix_fmt", ["yuv420p", "yuv444p"])
def test_still_title_card_and_cut_frames_stay_pixel_identical(tmp_path: Path, tiny_weights: Path, pix_fmt: str) -> None:
    """Lossless in, lossless out: repeated frames are the input's decoded pictures, untouched by any RGB round trip."""
    rgb = _clip_frames()
    source = write_video(tmp_path / "in.mkv", rgb, 24, codec="ffv1", pix_fmt=pix_fmt)
    destination = tmp_path / "out.mkv"
    model, _ = load_weights(tiny_weights, torch.device("cpu"))
    info = probe(source)
    interpolator = FrameInterpolator(model, torch.device("cpu"), torch.float32, info.height, info.width)
    options = ConvertOptions(factor=2, encode=EncodeSettings(codec="ffv1", crf=None, preset=None))
    summary = convert_video(info, destination, interpolator, options, batch_size=2)
    assert (summary.cuts, summary.static_pairs) == (1, 2)
    assert summary.synthesized == len(rgb) - 1 - 3  # every pair but the two stills and the cut
    inputs, outputs = _planes(source), _planes(destination)
    assert len(outputs) == 2 * len(inputs)
    for k, planes in enumerate(inputs):
        assert np.array_equal(outputs[2 * k], planes)  # every input frame, bit for bit
    for k in (0, 1):  # the still title card: the in-between frames are the card itself
        assert np.array_equal(outputs[2 * k + 1], inputs[k])
    assert np.array_equal(outputs[2 * 5 + 1], inputs[6])  # t = 1/2 across the cut shows the second frame
    assert not np.array_equal(outputs[2 * 3 + 1], inputs[3])  # a moving pair is synthesised


def test_cli_reports_cuts_and_refuses_contradictory_options(tmp_path: Path, tiny_weights: Path) -> None:
    source = write_video(tmp_path / "in.mkv", _clip_frames(), 24, codec="ffv1", pix_fmt="yuv444p")
    common = ["interpolate", str(source), str(tmp_path / "out.mkv"), "--weights", str(tiny_weights), "--codec", "ffv1"]
    result = CliRunner().invoke(main, common)
    assert result.exit_code == 0, result.output
    assert "1 scene cut(s) kept sharp, 2 static pair(s) copied" in result.stderr
    result = CliRunner().invoke(main, [*common, "--overwrite", "--no-scene-detect"])
    assert result.exit_code == 0 and "scene detection off, 2 static pair(s) copied" in result.stderr
    result = CliRunner().invoke(main, [*common, "--overwrite", "--no-scene-detect", "--scene-threshold", "0.5"])
    assert result.exit_code == 2 and "not both" in result.stderr
