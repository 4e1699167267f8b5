"""The engine with a network whose flow is set analytically: exact timing and real interpolation."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from tests.conftest import decode_video, translating_frames, write_video
from vfi_cli.config import ConvertOptions, EncodeSettings
from vfi_cli.engine.pipeline import convert_video
from vfi_cli.engine.runner import FrameInterpolator, interpolate_stream
from vfi_cli.engine.schedule import Schedule
from vfi_cli.model.features import FeatureExtractor
from vfi_cli.model.network import Interpolator
from vfi_cli.model.synthesis import Synthesis
from vfi_cli.video.reader import probe

class TranslationFlow(nn.Module):
    """The true flows of a global translation by ``step`` per frame: f1→t = -t·d, f2→t = (1-t)·d."""

    def __init__(self, step: tuple[int, int]) -> None:
        super().__init__()
        self.register_buffer("step", torch.tensor(step, dtype=torch.float32).view(1, 2, 1, 1))

    def forward(self, image1: torch.Tensor, image2: torch.Tensor, t: torch.Tensor, prior: None = None):
        batch, _, height, width = image1.shape
        t = t.view(batch, 1, 1, 1).float()
        ones = torch.ones(batch, 1, height, width)
        return (-t * self.step) * ones, ((1 - t) * self.step) * ones, (1 - t) * ones


def analytic_model(step: tuple[int, int]) -> Interpolator:
    """Untrained features and synthesis (whose last layer starts at zero, so Ĩt = Ît)."""
    return Interpolator(TranslationFlow(step), FeatureExtractor(8, 7), Synthesis(8, 8, 9), stride=8)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


@dataclass
class Frame:
    time: Fraction
    rgb: np.ndarray


def interior(image: np.ndarray, margin: int = 12) -> np.ndarray:
    return image[margin:-margin, margin:-margin]


@pytest.mark.parametrize(("factor", "output_step", "batch_size"), [(2, (4, -2), 1), (2, (4, -2), 3), (4, (2, 1), 4)])
def test_analytic_flow_reproduces_true_intermediate_frames(factor: int, output_step: tuple[int, int], batch_size: int) -> None:
    """Synthesised frames match the true intermediate frames (rendered by exact shifts) to > 45 dB,
    while the plain blend of the neighbours does not come close: the test sees real motion."""
    count = 6
    # Render the clip at the output rate: every factor-th frame is an input, the others are ground truth.
    truth = translating_frames((count - 1) * factor + 1, 40, 64, step=output_step)
    inputs = truth[::factor]
    input_step = (output_step[0] * factor, output_step[1] * factor)
    rate = Fraction(25)
    interpolator = FrameInterpolator(analytic_model(input_step), torch.device("cpu"), torch.float32, 40, 64)
    frames = [Frame(Fraction(k) / rate, rgb) for k, rgb in enumerate(inputs)]
    produced = list(interpolate_stream(frames, Schedule(rate, rate * factor), interpolator, batch_size))
    assert [job.number for job, _ in produced] == list(range(count * factor))
    for job, payload in produced[: (count - 1) * factor]:
        expected = truth[job.number]
        if job.is_copy:
            assert payload is frames[job.left]
            continue
        assert psnr(interior(payload), interior(expected)) > 45
        blend = ((inputs[job.left].astype(np.float64) + inputs[job.left + 1]) / 2).round().astype(np.uint8)
        assert psnr(interior(blend), interior(expected)) < 28


def test_features_are_computed_once_per_frame(monkeypatch: pytest.MonkeyPatch) -> None:
    """A frame shared by two pairs is prepared (uploaded, padded, encoded) once."""
    rate = Fraction(24)
    inputs = translating_frames(7, 16, 16, step=(2, 0))
    interpolator = FrameInterpolator(analytic_model((2, 0)), torch.device("cpu"), torch.float32, 16, 16)
    prepared = []
    original = interpolator.prepare
    monkeypatch.setattr(interpolator, "prepare", lambda rgb: prepared.append(rgb) or original(rgb))
    frames = [Frame(Fraction(k) / rate, rgb) for k, rgb in enumerate(inputs)]
    list(interpolate_stream(frames, Schedule(rate, rate * 4), interpolator, batch_size=2))
    assert len(prepared) == len(inputs)


def test_video_pipeline_interpolates_with_exact_timestamps(tmp_path: Path) -> None:
    """Through decode → model → encode on a lossless clip: true frames within 35 dB, exact times."""
    frames = translating_frames(9, 48, 64, step=(2, 0))
    truth_inputs, truth_middles = frames[::2], frames[1::2]
    source = write_video(tmp_path / "in.mkv", truth_inputs, 25, codec="ffv1", pix_fmt="yuv444p")
    destination = tmp_path / "out.mkv"
    info = probe(source)
    interpolator = FrameInterpolator(analytic_model((4, 0)), torch.device("cpu"), torch.float32, 48, 64)
    options = ConvertOptions(factor=2, encode=EncodeSettings(codec="ffv1", crf=None, preset=None))
    summary = convert_video(info, destination, interpolator, options, batch_size=2)
    times, decoded = decode_video(destination)
    assert summary.frames_out == len(decoded) == 10
    assert times == [Fraction(j, 50) for j in range(10)]
    for j in range(1, 8, 2):
        assert psnr(interior(decoded[j]), interior(truth_middles[j // 2])) > 35
    for j in range(0, 10, 2):  # copies of the inputs, through the same lossless codec
        assert psnr(decoded[j], truth_inputs[j // 2]) > 40
