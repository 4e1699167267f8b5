"""The classical DIS flow prior: splatting, hole filling, consistency, and the network built on it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.conftest import translating_frames
from vfi_cli.config import ModelConfig
from vfi_cli.model.network import Interpolator
from vfi_cli.model.prior import consistency, dis_prior, fill_holes, forward_splat
from vfi_cli.model.warp import backward_warp
from vfi_cli.model.weights import load_weights, save_weights


def _tensor(rgb: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(10 * torch.log10(1 / (a - b).square().mean()))


def test_forward_splat_matches_hand_computed_bilinear_shares() -> None:
    values = torch.zeros(1, 1, 4, 5)
    values[0, 0, 1, 1] = 2.0
    flow = torch.zeros(1, 2, 4, 5)
    flow[0, :, 1, 1] = torch.tensor([1.25, 0.5])  # lands at x = 2.25, y = 1.5
    weight = torch.zeros(1, 1, 4, 5)
    weight[0, 0, 1, 1] = 0.8
    total, weights = forward_splat(values, flow, weight)
    expected = torch.zeros(4, 5)
    expected[1, 2], expected[1, 3], expected[2, 2], expected[2, 3] = 0.75 * 0.5, 0.25 * 0.5, 0.75 * 0.5, 0.25 * 0.5
    torch.testing.assert_close(weights[0, 0], 0.8 * expected)
    torch.testing.assert_close(total[0, 0], 2.0 * 0.8 * expected)


def test_forward_splat_drops_what_lands_outside() -> None:
    values = torch.ones(1, 1, 3, 3)
    flow = torch.full((1, 2, 3, 3), 10.0)
    total, weights = forward_splat(values, flow, torch.ones(1, 1, 3, 3))
    assert float(total.abs().sum()) == 0.0 and float(weights.sum()) == 0.0


def test_fill_holes_keeps_covered_pixels_and_fills_holes_from_neighbours() -> None:
    weight = torch.ones(1, 1, 8, 8)
    weight[..., 3:5, 3:5] = 0
    values = torch.full((1, 2, 8, 8), 3.0) * weight
    values[:, 1] *= -1
    filled = fill_holes(values, weight)
    torch.testing.assert_close(filled[:, 0], torch.full((1, 8, 8), 3.0))
    torch.testing.assert_close(filled[:, 1], torch.full((1, 8, 8), -3.0))


def test_consistency_is_one_for_opposite_translations_and_low_otherwise() -> None:
    forward = torch.zeros(1, 2, 16, 16)
    forward[:, 0] = 3.0
    assert float(consistency(forward, -forward).min()) == pytest.approx(1.0)
    assert float(consistency(forward, forward).max()) < 0.01


@pytest.mark.parametrize("t", [0.5, 0.25])
def test_dis_prior_recovers_a_translation_and_interpolates_it(t: float) -> None:
    step = (4, 0)
    frames = translating_frames(5, 64, 96, step=step)
    image1, image2, truth = _tensor(frames[0]), _tensor(frames[4]), _tensor(frames[round(4 * t)])
    prior = dis_prior(image1, image2, torch.tensor([t]))
    inner = (slice(None), slice(None), slice(12, -12), slice(24, -24))
    # Frame 4 is frame 0 moved 16 px right: frame t finds its pixels 16t px to the left in frame 0.
    assert float((prior.flow1[0, 0][inner[2:]] + 16 * t).abs().median()) < 0.2
    assert float((prior.flow2[0, 0][inner[2:]] - 16 * (1 - t)).abs().median()) < 0.2
    assert float(prior.flow1[0, 1][inner[2:]].abs().median()) < 0.2
    assert float((prior.mask[inner] - (1 - t)).abs().mean()) < 0.1
    coarse = prior.mask * backward_warp(image1, prior.flow1) + (1 - prior.mask) * backward_warp(image2, prior.flow2)
    blend = (1 - t) * image1 + t * image2
    assert _psnr(coarse[inner], truth[inner]) > 35
    assert _psnr(coarse[inner], truth[inner]) > _psnr(blend[inner], truth[inner]) + 10


def test_untrained_prior_network_returns_the_classical_interpolation() -> None:
    torch.manual_seed(0)
    config = ModelConfig(unet_channels=(8, 16, 16), feature_channels=8, synthesis_channels=8, flow_prior="dis")
    model = Interpolator.from_config(config).eval()
    frames = translating_frames(3, 32, 48, step=(3, 1))
    image1, image2 = _tensor(frames[0]), _tensor(frames[2])
    t = torch.tensor([0.5])
    with torch.no_grad():
        out = model(image1, image2, t)
    prior = dis_prior(image1, image2, t)
    torch.testing.assert_close(out.flow1, prior.flow1)
    torch.testing.assert_close(out.flow2, prior.flow2)
    torch.testing.assert_close(out.mask, prior.mask, atol=1e-3, rtol=0)
    torch.testing.assert_close(out.refined, out.coarse)


def test_prior_network_trains_its_corrections(tmp_path) -> None:
    """The head starts at zero but is not stuck there: one step moves the flows off the prior."""
    torch.manual_seed(0)
    config = ModelConfig(unet_channels=(8, 16, 16), feature_channels=8, synthesis_channels=8, flow_prior="dis")
    model = Interpolator.from_config(config)
    frames = translating_frames(3, 32, 48, step=(3, 1))
    image1, image2, truth = _tensor(frames[0]), _tensor(frames[2]), _tensor(frames[1])
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss = (model(image1, image2, torch.tensor([0.5])).refined - truth).abs().mean()
    loss.backward()
    optimizer.step()
    with torch.no_grad():
        after = model(image1, image2, torch.tensor([0.5]))
    prior = dis_prior(image1, image2, torch.tensor([0.5]))
    assert float((after.flow1 - prior.flow1).abs().max()) > 0
    path = tmp_path / "prior.safetensors"
    save_weights(model, config, path, recipe={"trained": False})
    loaded, card = load_weights(path)
    assert card["config"]["flow_prior"] == "dis"
    with torch.no_grad():
        torch.testing.assert_close(loaded(image1, image2, torch.tensor([0.5])).refined, after.refined)


def test_config_names_the_prior_and_old_configs_have_none() -> None:
    assert ModelConfig.from_dict({"feature_channels": 8}).flow_prior == "none"
    with pytest.raises(ValueError, match="flow_prior"):
        ModelConfig(flow_prior="raft")
