"""CUDA paths (opt-in: skipped without a GPU; ``scripts/gpu-check.sh`` runs them): fp16 autocast agrees with fp32,
transfers through pinned memory and streams are exact, colour on the GPU gives the CPU path's frames."""

from __future__ import annotations

import av
import numpy as np
import pytest
import torch

from tests.conftest import TINY_CONFIG, translating_frames, write_video
from vfi_cli.config import ConvertOptions, EncodeSettings, ModelConfig
from vfi_cli.engine.pipeline import convert_video
from vfi_cli.engine.runner import FrameInterpolator
from vfi_cli.engine.transfer import Transfer
from vfi_cli.model.network import Interpolator
from vfi_cli.video.color import yuv_planes
from vfi_cli.video.reader import probe

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


def test_transfers_round_trip_exactly_on_cuda() -> None:
    """Pinned staging, the upload and download streams: arrays come back bit for bit, more often than there are slots."""
    rng = np.random.default_rng(0)
    transfer = Transfer(torch.device("cuda"))
    for _ in range(6):
        arrays = [rng.integers(0, 65536, (1080, 1920)).astype(np.uint16), rng.integers(0, 256, (540, 960)).astype(np.uint8)]
        doubled = [tensor * 1 for tensor in transfer.upload(arrays)]  # work on the compute stream in between
        for original, back in zip(arrays, transfer.download(doubled).result()):
            assert back.dtype == original.dtype and np.array_equal(back, original)


def test_cuda_colour_pipeline_matches_the_cpu_pipeline(tmp_path) -> None:
    """The whole CUDA path (planes up, colour on the GPU, fp16 model, planes down) against the CPU's numpy path."""
    source = write_video(tmp_path / "in.mkv", translating_frames(5, 72, 128, step=(2, 1)), 25, codec="ffv1")
    torch.manual_seed(0)
    model = Interpolator.from_config(TINY_CONFIG)
    options = ConvertOptions(encode=EncodeSettings(codec="ffv1", crf=None, preset=None, pix_fmt="yuv420p"))
    outputs = {}
    for device, dtype in (("cpu", torch.float32), ("cuda", torch.float16)):
        interpolator = FrameInterpolator(model, torch.device(device), dtype, 72, 128)
        convert_video(probe(source), tmp_path / f"{device}.mkv", interpolator, options)
        assert (interpolator.planes_out is not None) == (device == "cuda")
        with av.open(str(tmp_path / f"{device}.mkv")) as container:
            outputs[device] = [[plane.copy() for plane in yuv_planes(frame)] for frame in container.decode(video=0)]
    assert len(outputs["cpu"]) == len(outputs["cuda"]) == 10
    for number, (expected, made) in enumerate(zip(outputs["cpu"], outputs["cuda"])):
        for a, b in zip(expected, made):
            difference = np.abs(a.astype(np.int32) - b)
            assert difference.max() <= (0 if number % 2 == 0 else 3) and difference.mean() < 0.5
