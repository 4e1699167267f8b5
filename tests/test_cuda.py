"""CUDA paths (opt-in: skipped without a GPU): fp16 autocast agrees with fp32, weights load on the GPU."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.conftest import TINY_CONFIG, translating_frames
from vfi_cli.config import ModelConfig
from vfi_cli.engine.runner import FrameInterpolator
from vfi_cli.model.network import Interpolator

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


@pytest.mark.parametrize("config", [TINY_CONFIG, ModelConfig()], ids=["tiny", "default"])
def test_fp16_matches_fp32_on_cuda(config: ModelConfig) -> None:
    """Random-weight model (flow head perturbed so warping matters) at 1080p: fp16 within 2 levels of fp32."""
    torch.manual_seed(0)
    model = Interpolator.from_config(config)
    torch.nn.init.normal_(model.flow.head.weight, std=1e-2)
    torch.nn.init.normal_(model.synthesis.layers[-1].weight, std=1e-3)
    frames = translating_frames(2, 1080, 1920, step=(6, 2))
    results = {}
    for dtype in (torch.float32, torch.float16):
        runner = FrameInterpolator(model, torch.device("cuda"), dtype, 1080, 1920)
        a, b = runner.prepare(frames[0]), runner.prepare(frames[1])
        results[dtype] = runner.synthesize([(a, b, 0.5), (a, b, 0.25)])
    for full, half in zip(results[torch.float32], results[torch.float16]):
        diff = np.abs(full.astype(int) - half.astype(int))
        assert diff.mean() < 0.5 and np.percentile(diff, 99.9) <= 2
