"""Reference tests of the network's two geometric helpers: the padder crops back exactly, and the
warp samples where a slow float64 reference does (STYLE.md, practices 2, 3 and 13)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vfi_cli.model.padding import Padder
from vfi_cli.model.warp import backward_warp


@pytest.mark.parametrize(("height", "width"), [(1, 1), (3, 5), (17, 33), (31, 63), (64, 96), (1079, 1919)])
@pytest.mark.parametrize("multiple", [8, 32, 64])
def test_padder_round_trip_is_exact_on_any_size(height: int, width: int, multiple: int) -> None:
    generator = torch.Generator().manual_seed(height * 1000 + width)
    image = torch.rand(2, 3, height, width, generator=generator)
    padder = Padder(height, width, multiple)
    padded = padder.pad(image)
    assert padded.shape[-2] % multiple == 0 and padded.shape[-1] % multiple == 0
    assert height <= padded.shape[-2] < height + multiple and width <= padded.shape[-1] < width + multiple
    assert torch.equal(padder.unpad(padded), image)  # bit for bit, not approximately
    # Padding only on the far sides keeps coordinates; it replicates the last row and column.
    assert torch.equal(padded[..., :height, :width], image)
    assert torch.equal(padded[..., height:, :width], image[..., -1:, :].expand(-1, -1, padded.shape[-2] - height, -1))
    assert torch.equal(padded[..., :, width:], padded[..., :, width - 1 : width].expand(-1, -1, -1, padded.shape[-1] - width))


def test_padder_refuses_other_sizes() -> None:
    padder = Padder(17, 33, 8)
    with pytest.raises(ValueError):
        padder.pad(torch.zeros(1, 3, 16, 33))
    with pytest.raises(ValueError):
        padder.unpad(torch.zeros(1, 3, 17, 33))
    with pytest.raises(ValueError):
        Padder(0, 5, 8)


def reference_warp(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """I(x + f(x)) in float64, one pixel at a time: bilinear, coordinates clamped to the border
    (so a sample outside the image takes the nearest edge pixel). image [C,H,W], flow [2,H,W]."""
    channels, height, width = image.shape
    out = np.empty((channels, height, width), np.float64)
    for y in range(height):
        for x in range(width):
            sx = min(max(x + flow[0, y, x], 0.0), width - 1.0)
            sy = min(max(y + flow[1, y, x], 0.0), height - 1.0)
            x0, y0 = int(np.floor(sx)), int(np.floor(sy))
            x1, y1 = min(x0 + 1, width - 1), min(y0 + 1, height - 1)
            fx, fy = sx - x0, sy - y0
            out[:, y, x] = ((1 - fx) * (1 - fy) * image[:, y0, x0] + fx * (1 - fy) * image[:, y0, x1]
                            + (1 - fx) * fy * image[:, y1, x0] + fx * fy * image[:, y1, x1])
    return out


@pytest.mark.parametrize(("height", "width"), [(1, 7), (9, 1), (13, 21)])
def test_warp_matches_a_float64_reference(height: int, width: int) -> None:
    rng = np.random.default_rng(height + width)
    image = rng.random((3, height, width))
    flow = rng.uniform(-6, 6, (2, height, width))  # many samples land outside: the border rule counts
    flow[:, 0, 0] = (0.0, 0.0)  # a whole-pixel sample
    expected = reference_warp(image, flow)
    warped = backward_warp(torch.from_numpy(image)[None], torch.from_numpy(flow)[None])
    assert warped.dtype == torch.float64  # computed in float32, returned in the image's dtype
    np.testing.assert_allclose(warped[0].numpy(), expected, atol=2e-5)


def test_warp_follows_the_flow_convention() -> None:
    """Content moving by d from I1 to I2: the flow from t into I2 is (1−t)·d, and I2 warped by it is I(t)."""
    image = torch.zeros(1, 1, 8, 8)
    image[..., 3, 5] = 1.0
    flow = torch.zeros(1, 2, 8, 8)
    flow[:, 0] = 2.0  # every pixel samples 2 px to its right
    warped = backward_warp(image, flow)
    assert warped[0, 0, 3, 3] == 1.0 and warped.sum() == 1.0


@pytest.mark.parametrize("use_prior", [False, True])
def test_flow_unet_start_passes_gradient_where_it_must(use_prior: bool) -> None:
    """A prior-free U-Net must start with a random head: a zero head sends no gradient to the layers
    below it, and such a network never learns motion (it stays at blending). The prior's head starts
    at zero on purpose (untrained, it returns the prior) and then only the head moves at first."""
    from vfi_cli.model.flow import FlowUNet
    from vfi_cli.model.prior import FlowPrior

    torch.manual_seed(0)
    net = FlowUNet((8, 16, 16), use_prior=use_prior)
    image1, image2 = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    prior = FlowPrior(torch.zeros(2, 2, 32, 32), torch.zeros(2, 2, 32, 32), torch.full((2, 1, 32, 32), 0.5)) if use_prior else None
    flow1, flow2, mask = net(image1, image2, torch.tensor([0.5, 0.5]), prior)
    (flow1.square().mean() + flow2.square().mean() + mask.mean()).backward()
    first_layer = net.encoders[0][0].weight.grad
    assert float(net.head.weight.grad.abs().sum()) > 0
    assert (float(first_layer.abs().sum()) == 0) == use_prior


def test_refine_false_stops_at_the_warped_frame_and_skips_the_synthesis(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the flow stage of training runs: the same flows and Ît as the whole forward pass, without
    ever calling the feature extractor or the synthesis layers."""
    from vfi_cli.config import ModelConfig
    from vfi_cli.model.network import Interpolator

    torch.manual_seed(0)
    model = Interpolator.from_config(ModelConfig(unet_channels=(8, 16, 16), feature_channels=4, synthesis_channels=4, flow_downsample=2)).eval()
    torch.nn.init.normal_(model.synthesis.layers[-1].weight, std=0.1)  # a trained synthesis: Ĩt differs from Ît
    image1, image2, t = torch.rand(1, 3, 64, 64), torch.rand(1, 3, 64, 64), torch.tensor([0.5])
    with torch.no_grad():
        whole = model(image1, image2, t)

        def refuse(*args: object) -> None:
            raise AssertionError("the flow stage ran a module it does not train")

        monkeypatch.setattr(model.features, "forward", refuse)
        monkeypatch.setattr(model.synthesis, "forward", refuse)
        coarse = model(image1, image2, t, refine=False)
    assert torch.equal(coarse.flow1, whole.flow1) and torch.equal(coarse.coarse, whole.coarse)
    assert coarse.refined is coarse.coarse and not torch.equal(whole.refined, whole.coarse)
