"""The ``ifnet`` flow module: RIFE's IFNet with a time input. Loaded from RIFE's weights (a state
dict made here) it computes RIFE's flows at t = 0.5 and the straight-line motion's at other times;
its config counts its parameters; training starts from RIFE's weights and says so on the card."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from tests.conftest import smooth_texture, write_video
from tests.test_teachers import ramp_estimator_state, ramp_frames
from vfi_cli.cli import main
from vfi_cli.config import ModelConfig
from vfi_cli.errors import VfiError
from vfi_cli.model.ifnet import IFNet, student_state_from_rife
from vfi_cli.model.network import Interpolator
from vfi_cli.training.checkpoint import load_initial_flow

IFNET_CONFIG = ModelConfig(flow_module="ifnet", ifnet_width=90, symmetric_flow=True, feature_channels=4, synthesis_channels=4)


def test_the_config_counts_the_ifnet_models_parameters_and_refuses_unet_options() -> None:
    for width in (90, 16):
        config = ModelConfig(flow_module="ifnet", ifnet_width=width, feature_channels=4, synthesis_channels=4)
        assert config.parameter_count() == sum(p.numel() for p in Interpolator.from_config(config).parameters())
        assert config.multiple == 16 and Interpolator.from_config(config).multiple(flow_scale=0.5) == 32  # --scale 0.5
    for wrong in ({"flow_scales": 2}, {"flow_prior": "dis"}, {"flow_downsample": 2}):
        with pytest.raises(ValueError, match="ifnet"):
            ModelConfig(flow_module="ifnet", **wrong)
    with pytest.raises(ValueError, match="flow_module"):
        ModelConfig(flow_module="pwc")


def test_loaded_from_rife_it_computes_rifes_flows_at_the_middle_and_straight_lines_elsewhere(tmp_path: Path) -> None:
    """The ramp estimator (tests.test_teachers) finds a ramp's shift d; the true backward flows from
    t are −t·d into the first frame and (1−t)·d into the last, and the nearer frame weighs more."""
    path = tmp_path / "flownet.pkl"
    torch.save(ramp_estimator_state(), path)
    model = Interpolator.from_config(IFNET_CONFIG).eval()
    provenance = load_initial_flow(model, path)
    assert provenance["file"] == "flownet.pkl" and len(provenance["sha256"]) == 64
    shift = 8.0
    first, _, last = (torch.from_numpy(f).permute(2, 0, 1)[None].float() for f in ramp_frames(shift, height=64, width=192))
    inner = (0, 0, slice(16, -16), slice(32, -32))  # away from the borders
    for t in (0.5, 0.25, 0.75):
        with torch.no_grad():
            out = model(first, last, torch.tensor([t]))
        assert out.flow1[inner].mean().item() == pytest.approx(-t * shift, abs=0.05)
        assert out.flow2[inner].mean().item() == pytest.approx((1 - t) * shift, abs=0.05)
        assert out.mask[inner].mean().item() == pytest.approx(1 - t, abs=1e-3)
        assert out.flow1[0, 1].abs().max().item() < 1e-3


def test_at_the_middle_it_equals_rifes_network_whatever_the_weights() -> None:
    torch.manual_seed(0)
    teacher = IFNet(width=16).eval()
    with torch.no_grad():
        for parameter in teacher.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.05)
    student = IFNet(width=16, time_input=True).eval()
    student.load_state_dict(student_state_from_rife(teacher.state_dict(), time_input=True))
    texture = torch.from_numpy(smooth_texture(64, 96, seed=3)).permute(2, 0, 1)[None].float() / 255
    moved = torch.roll(texture, (2, 5), (2, 3))
    with torch.no_grad():
        expected, got = teacher(texture, moved), student(texture, moved, torch.tensor([0.5]))
    assert expected[0].abs().mean() > 0.1  # the flows are not trivially zero
    for a, b in zip(expected, got):
        assert torch.allclose(a, b, atol=1e-5)


def test_init_flow_refuses_a_unet_model_and_other_weights(tmp_path: Path) -> None:
    path = tmp_path / "flownet.pkl"
    torch.save(ramp_estimator_state(), path)
    with pytest.raises(VfiError, match="ifnet"):
        load_initial_flow(Interpolator.from_config(ModelConfig(unet_channels=(8, 16))), path)
    narrow = Interpolator.from_config(ModelConfig(flow_module="ifnet", ifnet_width=16, feature_channels=4, synthesis_channels=4))
    with pytest.raises(VfiError, match="does not hold RIFE HDv3 weights of this width"):
        load_initial_flow(narrow, path)


def test_vfi_train_starts_the_flow_module_from_rife_and_the_card_says_so(tmp_path: Path) -> None:
    weights = tmp_path / "flownet.pkl"
    torch.save(ramp_estimator_state(), weights)
    frames = [np.roll(smooth_texture(64, 96, seed=1), 2 * k, axis=1) for k in range(8)]
    clip = write_video(tmp_path / "pan.mp4", frames, 10)
    config = tmp_path / "ifnet.json"
    config.write_text(json.dumps(IFNET_CONFIG.to_dict()))
    args = ["train", "--run-dir", str(tmp_path / "run"), "--data", f"videos:{clip}", "--model-config", str(config), "--crop", "32",
            "--batch-size", "2", "--steps", "1", "--workers", "0", "--stage", "flow", "-q"]
    result = CliRunner().invoke(main, [*args, "--init-flow", str(weights), "--export", str(tmp_path / "out.safetensors")])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "run" / "init_from.json").read_text())["file"] == "flownet.pkl"
    card = json.loads((tmp_path / "out.card.json").read_text())
    assert card["config"]["flow_module"] == "ifnet" and card["recipe"]["init_from"]["file"] == "flownet.pkl"
    assert any("IFNet" in line and "RIFE's weights" in line for line in card["recipe"]["deviations"])
    unet = tmp_path / "unet.json"
    unet.write_text(json.dumps(ModelConfig(unet_channels=(8, 16)).to_dict()))
    refused = CliRunner().invoke(main, [*args[:2], str(tmp_path / "other"), *args[3:6], str(unet), *args[7:], "--init-flow", str(weights)])
    assert refused.exit_code != 0 and "ifnet" in refused.output



def test_tiles_of_an_ifnet_model_give_the_whole_frames_output(tmp_path: Path) -> None:
    """The engine's tiling (64-pixel tiles overlapping 32) with an IFNet model loaded from the ramp
    estimator, on a textured ramp moving 8 px: the tiles reproduce the whole frame (max 3/255, > 60 dB),
    and both follow the motion (> 45 dB against the true middle frame, where blending gets ~40)."""
    from tests.test_teachers import RAMP_SLOPE
    from tests.test_tiling import CPU, psnr, run_pair
    from vfi_cli.engine.runner import FrameInterpolator

    path = tmp_path / "flownet.pkl"
    torch.save(ramp_estimator_state(), path)
    model = Interpolator.from_config(IFNET_CONFIG).eval()
    load_initial_flow(model, path)

    def frame(k: int) -> np.ndarray:
        xs = np.arange(256) - 4.0 * k
        row = 0.2 + RAMP_SLOPE * xs + 0.03 * np.sin(xs / 4.0)
        return (np.repeat(np.repeat(row[None, :, None], 96, 0), 3, 2) * 255).round().astype(np.uint8)

    first, middle, last = (frame(k) for k in range(3))
    whole = run_pair(FrameInterpolator(model, CPU, torch.float32, 96, 256), first, last)
    tiler = FrameInterpolator(model, CPU, torch.float32, 96, 256, tile=64, tile_overlap=32)
    tiled = run_pair(tiler, first, last)
    assert len(tiler.plan.tiles) >= 6
    assert np.abs(whole.astype(int) - tiled).max() <= 3 and psnr(whole, tiled) > 60
    inner = (slice(None), slice(16, -16))  # the ramp leaves the frame at its ends
    blend = ((first.astype(float) + last) / 2).round().astype(np.uint8)
    assert psnr(whole[inner], middle[inner]) > 45 and psnr(tiled[inner], middle[inner]) > 45
    assert psnr(blend[inner], middle[inner]) < 42  # the texture moves: only following it scores above
