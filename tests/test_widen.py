"""Growing a trained flow U-Net into a wider one: same outputs at first, new channels that learn."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tests.conftest import TINY_CONFIG
from tests.test_train import _config
from vfi_cli.config import ModelConfig
from vfi_cli.model.flow import FlowUNet
from vfi_cli.model.prior import FlowPrior
from vfi_cli.model.weights import load_weights
from vfi_cli.model.widen import can_widen, widen_flow_unet
from vfi_cli.training.trainer import Trainer


@pytest.mark.parametrize("use_prior", [False, True])
def test_a_widened_unet_computes_what_the_narrow_one_did(use_prior: bool) -> None:
    torch.manual_seed(0)
    narrow, wide = FlowUNet((8, 12, 16), use_prior=use_prior), FlowUNet((8, 20, 40), use_prior=use_prior)
    for parameter in narrow.parameters():  # a trained-looking head (a prior U-Net's starts at zero)
        parameter.data.normal_(0, 0.2)
    widen_flow_unet(narrow, wide)
    image1, image2, t = torch.rand(2, 3, 32, 48), torch.rand(2, 3, 32, 48), torch.tensor([0.5, 0.25])
    prior = FlowPrior(torch.randn(2, 2, 32, 48), torch.randn(2, 2, 32, 48), torch.rand(2, 1, 32, 48)) if use_prior else None
    for before, after in zip(narrow(image1, image2, t, prior), wide(image1, image2, t, prior)):
        torch.testing.assert_close(after, before, atol=1e-4, rtol=1e-4)  # only the summation order differs
    # The new channels are alive: the loss has a gradient on the (zero) weights that read them.
    sum(x.square().mean() for x in wide(image1, image2, t, prior)).backward()
    reads_new = wide.decoders[0][0].weight.grad[:, 16:40]  # the deepest level's new channels, upsampled
    assert reads_new.abs().sum() > 0


def test_only_a_wider_unet_with_nothing_else_changed_can_grow() -> None:
    narrow = ModelConfig(unet_channels=(8, 12, 16))
    assert can_widen(narrow, ModelConfig(unet_channels=(8, 24, 32)))
    assert can_widen(narrow, narrow)
    assert not can_widen(narrow, ModelConfig(unet_channels=(8, 8, 32)))  # narrower at one level
    assert not can_widen(narrow, ModelConfig(unet_channels=(8, 12, 16, 32)))  # deeper
    assert not can_widen(narrow, ModelConfig(unet_channels=(8, 24, 32), synthesis_channels=4))


def test_init_weights_grow_into_the_runs_wider_unet(tmp_path: Path, tiny_weights: Path) -> None:
    wide = {**TINY_CONFIG.to_dict(), "unet_channels": [8, 24, 32]}
    trainer = Trainer(_config(tmp_path / "wide", steps=1, init_weights=str(tiny_weights), model=wide))
    source, _ = load_weights(tiny_weights)
    assert sum(p.numel() for p in trainer.model.parameters()) > sum(p.numel() for p in source.parameters())
    image1, image2, t = torch.rand(1, 3, 64, 64), torch.rand(1, 3, 64, 64), torch.tensor([0.5])
    trainer.model.eval()
    with torch.no_grad():
        before, after = source(image1, image2, t), trainer.model(image1, image2, t)
    for name in ("flow1", "flow2", "mask", "refined"):
        torch.testing.assert_close(getattr(after, name), getattr(before, name), atol=1e-5, rtol=1e-5)
    provenance = json.loads(trainer.run.init_from.read_text())
    assert provenance["widened"] == {"unet_channels_from": [8, 16, 16], "unet_channels_to": [8, 24, 32]}
    trainer.close()
    deeper = {**TINY_CONFIG.to_dict(), "unet_channels": [8, 16, 16, 16]}
    with pytest.raises(Exception, match="another architecture"):
        Trainer(_config(tmp_path / "deeper", steps=1, init_weights=str(tiny_weights), model=deeper))
