"""CUDA paths (opt-in: skipped without a GPU; ``scripts/gpu-check.sh`` runs them): fp16 autocast agrees with fp32,
transfers through pinned memory and streams are exact, colour on the GPU gives the CPU path's frames."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.conftest import TINY_CONFIG, translating_frames, write_video
from tests.test_device_color import FFV1_420, assert_same_video, converted_planes
from vfi_cli.config import ConvertOptions, ModelConfig
from vfi_cli.engine.runner import FrameInterpolator
from vfi_cli.engine.transfer import Transfer
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
    outputs = {}
    for device, dtype in (("cpu", torch.float32), ("cuda", torch.float16)):
        interpolator = FrameInterpolator(model, torch.device(device), dtype, 72, 128)
        outputs[device] = converted_planes(source, tmp_path / f"{device}.mkv", interpolator, ConvertOptions(encode=FFV1_420))
        assert (interpolator.planes_out is not None) == (device == "cuda")
    assert_same_video(outputs["cpu"], outputs["cuda"], 3)


def test_the_teacher_warm_up_runs_on_the_gpu_and_caches_what_the_cpu_would(tmp_path) -> None:
    """On a CUDA run the RIFE teacher fills its cache in the training process, on the GPU, with the
    CPU's flows, masks and weights; afterwards the teacher is back on the CPU for the DataLoader workers."""
    from tests.test_teachers import ramp_estimator_state
    from vfi_cli.config import TrainConfig
    from vfi_cli.training.trainer import Trainer

    weights = tmp_path / "flownet.pkl"
    torch.save(ramp_estimator_state(), weights)
    clip = write_video(tmp_path / "moving.mp4", translating_frames(12, 96, 128, (2, 0)), 10)
    cached = {}
    for device in ("cpu", "cuda"):
        config = TrainConfig(
            run_dir=str(tmp_path / device), data=[{"kind": "videos", "root": str(clip), "weight": 1.0}],
            model=ModelConfig(unet_channels=(8, 16, 16), feature_channels=4, synthesis_channels=4).to_dict(),
            crop=64, batch_size=2, workers=0, steps=1, stage="flow", flow_teacher=f"rife:{weights}", device=device,
        )
        trainer = Trainer(config)
        assert trainer.prepare_teacher() > 0
        assert trainer.train_data.teacher.device.type == "cpu"
        cached[device] = {p.name: np.load(p) for p in (tmp_path / device / "cache").glob("teacher-rife-*/*.npy")}
    assert cached["cpu"].keys() == cached["cuda"].keys() and cached["cpu"]
    for name, array in cached["cpu"].items():
        np.testing.assert_allclose(cached["cuda"][name].astype(np.float32), array.astype(np.float32), atol=0.02)
