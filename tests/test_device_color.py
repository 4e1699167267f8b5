"""Colour conversion on the model's device (here the CPU) against the numpy/swscale path it replaces."""

from __future__ import annotations

import av
import numpy as np
import pytest
import torch

from tests.conftest import TINY_CONFIG, translating_frames, write_video
from vfi_cli.config import DEFAULT_CUT_THRESHOLD, ConvertOptions, EncodeSettings
from vfi_cli.engine import pipeline
from vfi_cli.engine.color import YuvLayout, rgb_to_yuv, yuv_to_rgb
from vfi_cli.engine.runner import FrameInterpolator
from vfi_cli.engine.transfer import Transfer
from vfi_cli.model.network import Interpolator
from vfi_cli.video.color import ColorInfo, from_rgb, to_rgb, yuv_planes
from vfi_cli.video.reader import probe

# (pix_fmt, (colorspace, range, primaries, transfer), height, width, largest decode difference in levels of the depth)
CASES = [
    ("yuv420p", (1, 1, 1, 1), 36, 64, 1),  # BT.709 limited
    ("yuvj420p", (6, 2, 6, 6), 36, 64, 1),  # BT.601 full range
    ("yuv444p", (1, 1, 1, 1), 35, 63, 1),
    ("yuv420p", (1, 1, 1, 1), 35, 63, 1),  # odd sizes: chroma planes of ceil(n / 2)
    ("yuv444p10le", (9, 1, 9, 14), 36, 64, 1),
    # BT.2020 10-bit 4:2:0: swscale's 10-bit chroma scaler is up to 1.6 codes off the exact bicubic filter
    # (fixed point), which the numpy path's matrix carries into RGB; the float filter here is exact.
    ("yuv420p10le", (9, 1, 9, 14), 35, 63, 5),
]
IDS = [f"{case[0]}-{case[1][0]}-{case[2]}x{case[3]}" for case in CASES]


def _frame(pix_fmt: str, color: ColorInfo, height: int, width: int) -> tuple[np.ndarray, object]:
    rgb = translating_frames(1, height, width, (1, 1))[0]
    if "10" in pix_fmt:  # detail below the 8-bit step
        rgb = rgb.astype(np.uint16) * 257 + np.arange(width, dtype=np.uint16)[None, :, None] * 5
    return rgb, from_rgb(rgb, pix_fmt, color)


@pytest.mark.parametrize(("pix_fmt", "tags", "height", "width", "tolerance"), CASES, ids=IDS)
def test_planes_to_rgb_match_the_numpy_path(pix_fmt: str, tags: tuple, height: int, width: int, tolerance: int) -> None:
    color = ColorInfo(*tags, height)
    layout = YuvLayout(pix_fmt, color)
    _, frame = _frame(pix_fmt, color, height, width)
    expected = to_rgb(frame, color).astype(np.float64)
    planes = Transfer(torch.device("cpu")).upload(yuv_planes(frame))
    rgb = yuv_to_rgb(planes, layout).permute(1, 2, 0).numpy() * layout.peak
    level = layout.peak / ((1 << layout.bits) - 1)  # one code value of the video's depth, in RGB units
    assert rgb.shape == expected.shape
    assert np.abs(np.rint(rgb) - expected).max() <= tolerance * level


@pytest.mark.parametrize(("pix_fmt", "tags", "height", "width", "tolerance"), CASES, ids=IDS)
def test_rgb_to_planes_match_the_numpy_path(pix_fmt: str, tags: tuple, height: int, width: int, tolerance: int) -> None:
    color = ColorInfo(*tags, height)
    layout = YuvLayout(pix_fmt, color)
    rgb, frame = _frame(pix_fmt, color, height, width)
    tensor = torch.from_numpy(rgb.astype(np.float32) / layout.peak).permute(2, 0, 1)[None]
    planes = Transfer(torch.device("cpu")).download([plane[0] for plane in rgb_to_yuv(tensor, layout)]).result()
    for mine, expected in zip(planes, yuv_planes(frame)):
        assert mine.dtype == expected.dtype and mine.shape == expected.shape
        assert np.abs(mine.astype(np.int32) - expected).max() <= 1  # float resampling against swscale's fixed point


def test_the_cpu_transfer_round_trips_exactly() -> None:
    """The CPU fallback is a pass-through: uint16 planes (carried as int16) come back bit for bit."""
    rng = np.random.default_rng(0)
    arrays = [rng.integers(0, 65536, (5, 7)).astype(np.uint16), rng.integers(0, 256, (3, 4)).astype(np.uint8),
              rng.integers(0, 65536, (9, 12)).astype(np.uint16)[::2, ::3]]  # a strided view, as a frame's plane is
    transfer = Transfer(torch.device("cpu"))
    back = transfer.download(transfer.upload(arrays)).result()
    for original, returned in zip(arrays, back):
        assert returned.dtype == original.dtype and np.array_equal(returned, original)


def converted_planes(source, destination, interpolator: FrameInterpolator, options: ConvertOptions) -> list[list[np.ndarray]]:
    """Convert ``source`` with ``interpolator`` and return the output's decoded planes, frame by frame."""
    summary = pipeline.convert_video(probe(source), destination, interpolator, options)
    assert summary.synthesized == 4
    with av.open(str(destination)) as container:
        return [[plane.copy() for plane in yuv_planes(frame)] for frame in container.decode(video=0)]


def assert_same_video(expected: list[list[np.ndarray]], made: list[list[np.ndarray]], synthesised_tolerance: int) -> None:
    """Copied (even) frames bit for bit, synthesised (odd) ones within ``synthesised_tolerance`` code values."""
    assert len(expected) == len(made) == 10
    for number, (planes, others) in enumerate(zip(expected, made)):
        for a, b in zip(planes, others):
            difference = np.abs(a.astype(np.int32) - b)
            assert difference.max() <= (0 if number % 2 == 0 else synthesised_tolerance) and difference.mean() < 0.5


FFV1_420 = EncodeSettings(codec="ffv1", crf=None, preset=None, pix_fmt="yuv420p")


@pytest.mark.parametrize("scene_threshold", [None, DEFAULT_CUT_THRESHOLD], ids=["planes-only", "with-cut-detection"])
def test_the_device_colour_pipeline_matches_the_numpy_pipeline(tmp_path, monkeypatch, scene_threshold) -> None:
    """The CUDA data flow (planes in, colour on the model's device, planes out), run on the CPU: its output
    is the numpy path's, copies bit for bit, synthesised frames within the chroma filters' difference."""
    source = write_video(tmp_path / "in.mkv", translating_frames(5, 40, 64, step=(2, 1)), 25, codec="ffv1")
    torch.manual_seed(0)
    model = Interpolator.from_config(TINY_CONFIG)
    options = ConvertOptions(scene_threshold=scene_threshold, encode=FFV1_420)
    outputs = {}
    for name, devices in (("numpy", set()), ("device", {"cpu"})):
        monkeypatch.setattr(pipeline, "_DEVICE_COLOUR", devices)
        interpolator = FrameInterpolator(model, torch.device("cpu"), torch.float32, 40, 64)
        outputs[name] = converted_planes(source, tmp_path / f"{name}.mkv", interpolator, options)
        assert (interpolator.planes_in is not None) == (name == "device")
    assert_same_video(outputs["numpy"], outputs["device"], 2)
