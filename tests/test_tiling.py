"""Large frames: tile planning, feathered tiles against whole frames, and flow at reduced scale."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from torch import nn

from tests.conftest import TINY_CONFIG, decode_video, translating_frames
from tests.test_engine import analytic_model, interior, psnr
from vfi_cli.cli import main
from vfi_cli.engine.runner import FrameInterpolator
from vfi_cli.engine.tiling import plan_memory
from vfi_cli.errors import VfiError
from vfi_cli.model.features import FeatureExtractor
from vfi_cli.model.network import Interpolator
from vfi_cli.model.synthesis import Synthesis
from vfi_cli.units import parse_memory

CPU = torch.device("cpu")


def random_tiny_model() -> Interpolator:
    """TINY_CONFIG with every layer random, including the flow head and the last synthesis layer
    (which start at zero): flows of a few pixels that vary over the frame, a varying mask."""
    torch.manual_seed(0)
    model = Interpolator.from_config(TINY_CONFIG)
    with torch.no_grad():
        model.flow.head.reset_parameters()
        model.flow.head.weight.mul_(200)
        model.synthesis.layers[-1].reset_parameters()
    return model


class GlobalShiftFlow(nn.Module):
    """A real (if simple) flow estimator: the whole-pixel translation that best maps I1 onto I2,
    found by exhaustive search at whatever resolution the frames are given."""

    def __init__(self, radius: int) -> None:
        super().__init__()
        self.radius = radius

    def forward(self, image1: torch.Tensor, image2: torch.Tensor, t: torch.Tensor, prior: None = None):
        r = self.radius
        height, width = image1.shape[-2:]
        target = image2[..., r : height - r, r : width - r]
        errors = {
            (dx, dy): (target - image1[..., r - dy : height - r - dy, r - dx : width - r - dx]).abs().mean().item()
            for dx in range(-r, r + 1)
            for dy in range(-r, r + 1)
        }
        step = torch.tensor(min(errors, key=errors.get), dtype=torch.float32).view(1, 2, 1, 1)
        t = t.view(-1, 1, 1, 1).float()
        ones = torch.ones(image1.shape[0], 1, height, width)
        # b = 1: I1 alone. With b = 1 - t the errors of the two warps of a wrongly sized flow cancel
        # to first order and a 2-pixel error still scores > 45 dB; with b = 1 it shows in full.
        return (-t * step) * ones, ((1 - t) * step) * ones, ones


def run_pair(interpolator: FrameInterpolator, first: np.ndarray, second: np.ndarray, t: float = 0.5) -> np.ndarray:
    return interpolator.synthesize([(interpolator.prepare(first), interpolator.prepare(second), t)])[0]


def test_tiles_start_on_the_stride_overlap_and_their_weights_sum_to_one() -> None:
    grid = plan_memory(200, 312, 8, model_bpp=1.0, cache_bpp=1.0, batch_size=1, budget=10**9, tile=64, overlap=32).tiles
    assert grid is not None and len(grid) > 6
    for starts, size, length in ((grid.starts_y, grid.tile_height, 200), (grid.starts_x, grid.tile_width, 312)):
        assert starts[0] == 0 and starts[-1] + size == length
        assert all(s % 8 == 0 for s in starts)
        assert all(b - a <= size - 32 for a, b in zip(starts, starts[1:]))  # neighbours share >= the overlap
    total = torch.zeros(200, 312)
    for rows, columns, weight in grid.windows(CPU):
        total[rows, columns] += weight[0, 0]
        # context only (weight 0) within overlap/4 of an edge that has a neighbour
        if rows.start > 0:
            assert weight[0, 0, :8].abs().max() == 0
        if columns.stop < 312:
            assert weight[0, 0, :, -8:].abs().max() == 0
    torch.testing.assert_close(total, torch.ones(200, 312))


def test_plan_prefers_whole_frames_then_fewer_pairs_then_tiles() -> None:
    plan = dict(model_bpp=2000.0, cache_bpp=268.0, batch_size=4)
    pixels = 1088 * 1920
    whole = plan_memory(1088, 1920, 32, budget=100 * 2**30, **plan)
    assert whole.tiles is None and whole.pairs_per_call == 4
    fewer = plan_memory(1088, 1920, 32, budget=int(pixels * (5 * 268 + 2.5 * 2000)), **plan)
    assert fewer.tiles is None and fewer.pairs_per_call == 2
    budget = 2 * 2**30
    tiled = plan_memory(2176, 3840, 32, budget=budget, **plan)
    assert tiled.tiles is not None and len(tiled.tiles) > 1 and tiled.pairs_per_call == 1
    assert tiled.peak <= budget and tiled.tiles.overlap == 256  # 4K: 1/15 of the long side
    with pytest.raises(VfiError, match="raise --max-memory"):
        plan_memory(2176, 3840, 32, budget=2**28, **plan)
    with pytest.raises(VfiError, match="--tile 160 or more"):
        plan_memory(2176, 3840, 32, budget=budget, tile=100, overlap=128, **plan)


def test_memory_sizes_parse() -> None:
    assert parse_memory("6G") == 6 * 2**30
    assert parse_memory("1.5GiB") == 3 * 2**29
    assert parse_memory("800M") == 800 * 2**20
    for bad in ("", "lots", "-1G", "0"):
        with pytest.raises(ValueError):
            parse_memory(bad)


@pytest.mark.parametrize("flow_scale", [1.0, 0.5])
def test_tiled_output_matches_whole_frame_random_model(flow_scale: float) -> None:
    """Random TINY network, 100×170 frame in 64-pixel tiles overlapping 32: every output pixel comes
    from a tile where it lies >= 8 px from the edge, more than the few-pixel flows, yet the U-Net
    reaches ~25 px. Tolerance: max difference 3/255 and PSNR > 45 dB against the whole frame;
    tiles that are merely cut apart (no overlap) miss it, so the test sees seams."""
    frames = translating_frames(2, 100, 170, step=(3, 1))
    model = random_tiny_model()
    whole = FrameInterpolator(model, CPU, torch.float32, 100, 170, flow_scale=flow_scale)
    tiled = FrameInterpolator(model, CPU, torch.float32, 100, 170, flow_scale=flow_scale, tile=64, tile_overlap=32)
    assert whole.plan.tiles is None and tiled.plan.tiles is not None and len(tiled.plan.tiles) >= 6
    reference, result = run_pair(whole, *frames), run_pair(tiled, *frames)
    assert np.abs(reference.astype(int) - result).max() <= 3
    assert psnr(reference, result) > 45
    blend = ((frames[0].astype(float) + frames[1]) / 2).round().astype(np.uint8)
    assert psnr(reference, blend) < 35  # the model does more than blend: a mismatch would show
    seams = _cut_apart(model, frames, flow_scale, tile=64)
    assert psnr(reference[:96, :160], seams) < 40


def _cut_apart(model: Interpolator, frames: list[np.ndarray], flow_scale: float, tile: int) -> np.ndarray:
    """Naive tiling: each 64×64 block computed on its own, no overlap, no blending."""
    out = np.zeros((96, 160, 3), np.uint8)
    for y in range(0, 96, tile // 2):
        for x in range(0, 160, tile // 2):
            crops = [f[y : y + tile // 2, x : x + tile // 2] for f in frames]
            engine = FrameInterpolator(model, CPU, torch.float32, tile // 2, tile // 2, flow_scale=flow_scale)
            out[y : y + tile // 2, x : x + tile // 2] = run_pair(engine, *crops)
    return out


def test_tiled_output_matches_whole_frame_analytic_flow() -> None:
    """True flows of a translation by (6, -3): with the overlap's dead quarter (10 px) beyond the
    motion, tiles reproduce the whole frame to rounding (max difference 1/255)."""
    frames = translating_frames(2, 90, 150, step=(6, -3))
    model = analytic_model((6, -3))
    whole = FrameInterpolator(model, CPU, torch.float32, 90, 150)
    tiled = FrameInterpolator(model, CPU, torch.float32, 90, 150, tile=56, tile_overlap=40)
    assert tiled.plan.tiles is not None and len(tiled.plan.tiles) >= 6
    reference, result = run_pair(whole, *frames), run_pair(tiled, *frames)
    assert np.abs(reference.astype(int) - result).max() <= 1


@pytest.mark.parametrize(("flow_scale", "size"), [(0.5, (56, 84)), (0.25, (56, 84)), (0.5, (64, 96))])
def test_flow_at_reduced_scale_reproduces_the_true_frames(flow_scale: float, size: tuple[int, int]) -> None:
    """A translation by (8, -4) between the inputs, estimated on frames shrunk 2× or 4× (where it is
    (4, -2) or (2, -1) pixels) and scaled back: the frames at t = 1/4 and 1/2 match the true ones to
    > 45 dB away from the borders (a flow off by one coarse pixel scores < 40 dB, the plain blend
    < 28 dB). 56×84 is padded to 64×96, the multiple of stride/scale that keeps the shrunk frame a
    multiple of the stride."""
    truth = translating_frames(5, *size, step=(2, -1))
    model = Interpolator(GlobalShiftFlow(radius=5), FeatureExtractor(8, 7), Synthesis(8, 8, 9), stride=8)
    interpolator = FrameInterpolator(model, CPU, torch.float32, *size, flow_scale=flow_scale)
    assert (interpolator.padder.padded_height, interpolator.padder.padded_width) == (64, 96)
    first, last = interpolator.prepare(truth[0]), interpolator.prepare(truth[4])
    quarter, middle = interpolator.synthesize([(first, last, 0.25), (first, last, 0.5)])
    assert middle.shape == truth[2].shape
    assert psnr(interior(quarter), interior(truth[1])) > 45
    assert psnr(interior(middle), interior(truth[2])) > 45
    blend = ((truth[0].astype(float) + truth[4]) / 2).round().astype(np.uint8)
    assert psnr(interior(blend), interior(truth[2])) < 28


def test_flow_scale_checks_sizes_and_values() -> None:
    model = random_tiny_model()
    image = torch.rand(1, 3, 12, 16)
    t = torch.tensor([0.5])
    assert model.multiple(0.5) == 8 and model.multiple(0.25) == 16
    model(image, image, t)  # a multiple of the stride (4) is enough at full scale
    with pytest.raises(ValueError, match="multiple of 8"):
        model(image, image, t, flow_scale=0.5)
    with pytest.raises(ValueError, match="flow_scale"):
        model(image, image, t, flow_scale=0.3)
    torch.testing.assert_close(model(image, image, t, flow_scale=1.0).refined, model(image, image, t).refined)


def test_cli_tiles_and_scale(make_clip, tiny_weights: Path, tmp_path: Path) -> None:
    """`--tile/--tile-overlap/--scale` reach the engine: same frames as whole-frame output, within
    the tiling tolerance; a bad `--max-memory` is a one-line usage error."""
    source = make_clip(count=5, size=(72, 96), audio=False)
    outputs = {}
    for name, extra in (("whole", []), ("tiled", ["--tile", "48", "--tile-overlap", "24", "--scale", "0.5", "--max-memory", "2G"])):
        destination = tmp_path / f"{name}.mkv"
        result = CliRunner().invoke(main, ["interpolate", str(source), str(destination), "--weights", str(tiny_weights),
                                           "--codec", "ffv1", "--device", "cpu", *extra])
        assert result.exit_code == 0, result.output
        outputs[name] = decode_video(destination)
    assert outputs["whole"][0] == outputs["tiled"][0] and len(outputs["tiled"][1]) == 10
    for a, b in zip(outputs["whole"][1], outputs["tiled"][1]):
        assert psnr(a, b) > 40
    result = CliRunner().invoke(main, ["interpolate", str(source), str(tmp_path / "x.mkv"), "--max-memory", "lots"])
    assert result.exit_code == 2 and "lots" in result.output and "Traceback" not in result.output
