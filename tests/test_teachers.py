"""Flow teachers: RIFE's IFNet loads a state dict made here and follows the project's flow convention;
distillation targets, the distillation loss and a tiny distillation run; the prior-free model is pure
tensor work."""

from __future__ import annotations

import dataclasses
import json

from pathlib import Path

import numpy as np
import pytest
import torch

from tests.conftest import write_video
from vfi_cli.config import ModelConfig
from vfi_cli.errors import VfiError
from vfi_cli.model.network import Interpolator, consistency_weights
from vfi_cli.model.warp import backward_warp
from vfi_cli.training.losses import distillation_loss
from vfi_cli.training.teachers import RifeTeacher, TeacherSpec, distillation_target
from vfi_cli.training.teachers.rife import IFNet, ifnet_interpolate, load_ifnet

RAMP_SLOPE = 0.6 / 192  # brightness per pixel of the test ramp (0–1 scale)


def ramp_estimator_state() -> dict[str, torch.Tensor]:
    """IFNet weights, saved as RIFE saves them, that estimate the motion of a horizontal brightness ramp.

    For a ramp of slope a moved by d pixels, the mean brightness difference of the two frames is
    D = a·d (brightness constancy). Block 0 carries D through its layers (centre taps of 1, PReLU
    slopes of 1, residual blocks at zero) and its flow head outputs ∓D/(2a) per input, which is the
    true backward flow from t = 0.5: −d/2 into the first frame and +d/2 into the second. Blocks 1
    and 2 add nothing. Any slip in which output is which flow, its sign or its scale shows.
    """
    network = IFNet()
    state = {k: torch.zeros_like(v) for k, v in network.state_dict().items()}
    for name, value in state.items():
        if name.endswith(".1.weight") and value.dim() == 1 and "conv1" not in name and "conv2" not in name:
            value.fill_(1.0)  # PReLU slopes of 1: identity
    state["block0.conv0.0.0.weight"][0, 0:3, 1, 1] = 1 / 3
    state["block0.conv0.0.0.weight"][0, 3:6, 1, 1] = -1 / 3
    state["block0.conv0.1.0.weight"][0, 0, 1, 1] = 1.0
    state["block0.conv1.0.weight"][0, 0] = 0.25  # a 4×4 stride-2 transposed convolution: 4 taps reach each pixel
    state["block0.conv1.1.weight"].fill_(1.0)
    # block0 runs at 1/4 scale and its flow is multiplied by 4 on the way back up.
    gain = 1 / (2 * RAMP_SLOPE) / 4
    state["block0.conv1.2.weight"][0, 0] = -0.25 * gain
    state["block0.conv1.2.weight"][0, 2] = 0.25 * gain
    saved = {f"module.{k}": v for k, v in state.items()}
    saved["module.block_tea.conv0.0.0.weight"] = torch.zeros(45, 14, 3, 3)  # RIFE's training-only block
    return saved


class ConstantFlow(torch.nn.Module):
    """A stand-in flow module: flows of (1, 1) and (−1, −1) pixels and a constant mask, whatever it
    sees; it records the size of the frames it was given."""

    def __init__(self, mask: float) -> None:
        super().__init__()
        self.mask = mask
        self.seen: list[tuple[int, ...]] = []

    def forward(self, image1, image2, t, prior=None):  # type: ignore[no-untyped-def]
        self.seen.append(tuple(image1.shape))
        flow = torch.ones(image1.shape[0], 2, *image1.shape[-2:])
        return flow, -flow, torch.full((image1.shape[0], 1, *image1.shape[-2:]), self.mask)


def ramp_frames(shift: float, height: int = 64, width: int = 192) -> list[np.ndarray]:
    """First, middle and last frame of a horizontal ramp moving right by ``shift`` pixels in all."""
    xs = np.arange(width, dtype=np.float64)
    frames = []
    for fraction in (0.0, 0.5, 1.0):
        row = 0.2 + RAMP_SLOPE * (xs - fraction * shift)
        frames.append(np.repeat(np.repeat(row[None, :, None], height, 0), 3, 2))
    return frames


def test_ifnet_loads_rifes_state_dict_and_returns_backward_flows_in_pixels(tmp_path: Path) -> None:
    path = tmp_path / "flownet.pkl"
    torch.save(ramp_estimator_state(), path)
    network = load_ifnet(path)
    shift = 6.0
    first, middle, last = (torch.from_numpy(f).permute(2, 0, 1)[None].float() for f in ramp_frames(shift, height=50, width=180))
    flow1, flow2, mask, frame = ifnet_interpolate(network, first, last)
    assert flow1.shape == flow2.shape == (1, 2, 50, 180) and mask.shape == (1, 1, 50, 180) and frame.shape == (1, 3, 50, 180)
    inner = (slice(None), slice(None), slice(12, -12), slice(28, -28))  # away from the borders (and the padding)
    assert flow1[:, 0][inner[0], inner[2], inner[3]].mean().item() == pytest.approx(-shift / 2, abs=0.05)
    assert flow2[:, 0][inner[0], inner[2], inner[3]].mean().item() == pytest.approx(shift / 2, abs=0.05)
    assert flow1[:, 1].abs().max().item() < 1e-4 and torch.allclose(mask, torch.full_like(mask, 0.5))
    assert (frame - middle)[inner].abs().max().item() < 2e-3
    # The same weights read from safetensors.
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in ramp_estimator_state().items()}, str(tmp_path / "flownet.safetensors"))
    again = ifnet_interpolate(load_ifnet(tmp_path / "flownet.safetensors"), first, last)
    assert torch.equal(again[0], flow1)


def test_ifnet_refuses_anything_but_a_state_dict_of_its_tensors(tmp_path: Path) -> None:
    pickled = tmp_path / "object.pkl"
    torch.save({"weights": np.zeros(3)}, pickled)  # a numpy array needs the full unpickler
    with pytest.raises(VfiError, match="not a plain state dict"):
        load_ifnet(pickled)
    wrong = tmp_path / "wrong.pkl"
    torch.save({"conv.weight": torch.zeros(3)}, wrong)
    with pytest.raises(VfiError, match="does not hold RIFE HDv3 weights"):
        load_ifnet(wrong)
    with pytest.raises(VfiError, match="not found"):
        TeacherSpec.parse(f"rife:{tmp_path / 'missing.pkl'}")
    with pytest.raises(VfiError, match="unknown teacher"):
        TeacherSpec.parse("raft:x")


def test_distillation_target_trusts_flows_that_rebuild_the_middle_frame() -> None:
    first, middle, last = (torch.from_numpy(f).permute(2, 0, 1)[None].float() for f in ramp_frames(16.0))
    right = torch.zeros(1, 2, 64, 192)
    right[:, 0] = -8.0
    wrong = right  # the second frame sampled the first one's way: 16 px off
    target = distillation_target(right, -right, torch.full((1, 1, 64, 192), 0.5), first, last, middle)
    assert target.shape == (8, 64, 192)
    inner = np.s_[12:-12, 28:-28]
    assert target[5][inner].min() > 0.99 and target[6][inner].min() > 0.99 and target[7][inner].min() > 0.99
    target = distillation_target(right, wrong, torch.full((1, 1, 64, 192), 0.5), first, last, middle)
    assert target[5][inner].min() > 0.99 and target[6][inner].max() < target[5][inner].min() / 2


def test_distillation_loss_counts_only_where_the_teacher_is_weighted() -> None:
    teacher = torch.zeros(1, 8, 4, 4)
    teacher[:, 0] = 3.0  # teacher flow 1 = (3, 0)
    teacher[:, 4] = 0.8
    teacher[:, 5, :, :2] = 1.0  # flow 1 trusted on the left half only
    teacher[:, 7] = 1.0
    flow1 = torch.zeros(1, 2, 4, 4, requires_grad=True)
    flow2 = torch.zeros(1, 2, 4, 4)
    mask = torch.full((1, 1, 4, 4), 0.5)
    flow_term, mask_term = distillation_loss(flow1, flow2, mask, teacher)
    assert flow_term.item() == pytest.approx(3.0, rel=1e-3) and mask_term.item() == pytest.approx(0.3, rel=1e-5)
    flow_term.backward()
    assert flow1.grad[..., 2:].abs().sum() == 0 and flow1.grad[..., :2].abs().sum() > 0
    teacher[:, 5:] = 0  # a silent teacher teaches nothing
    assert distillation_loss(flow1, flow2, mask, teacher)[0].item() == 0


def test_motion_scale_weighs_the_teachers_moving_pixels_more() -> None:
    """--teacher-motion-scale 2: a teacher flow of 6 px weighs 1 + 6/2 = 4 times a still one, so an
    error where the teacher sees motion costs more than the same error where it sees none."""
    from vfi_cli.config import TrainConfig
    from vfi_cli.model.network import InterpolatorOutput
    from vfi_cli.training.objective import Objective

    teacher = torch.zeros(1, 8, 4, 4)
    teacher[:, 0, :, 2:] = 6.0  # flow 1: still on the left, 6 px on the right
    teacher[:, 5] = 1.0  # flow 1 trusted everywhere, flow 2 nowhere
    mask = torch.full((1, 1, 4, 4), 0.5)
    for side, plain, weighted in ((np.s_[2:], 0.5, 0.8), (np.s_[:2], 0.5, 0.2)):
        flow1 = teacher[:, 0:2].clone()
        flow1[:, 0, :, side] += 1.0  # 1 px off on one half
        assert distillation_loss(flow1, torch.zeros_like(flow1), mask, teacher)[0].item() == pytest.approx(plain, abs=1e-3)
        assert distillation_loss(flow1, torch.zeros_like(flow1), mask, teacher, motion_scale=2.0)[0].item() == pytest.approx(weighted, abs=1e-3)
    # The run's setting reaches the loss the trainer computes.
    config = TrainConfig(run_dir="unused", steps=1, stage="flow", flow_teacher="rife:unused", teacher_motion_scale=2.0)
    image = torch.zeros(1, 3, 4, 4)
    out = InterpolatorOutput(flow1=flow1, flow2=torch.zeros_like(flow1), mask=mask, coarse=image, refined=image)
    losses = Objective(config, None).generator_losses(out, {"target": image, "teacher": teacher}, step=0)
    assert losses["teacher"].item() == pytest.approx(0.2 * config.losses.teacher, abs=1e-3)


def test_teacher_motion_scale_reaches_the_run_config(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from tests.conftest import TINY_CONFIG
    from vfi_cli.cli import main

    (tmp_path / "model.json").write_text(json.dumps(TINY_CONFIG.to_dict()))
    args = ["train", "--run-dir", str(tmp_path / "r"), "--data", "synthetic", "--model-config", str(tmp_path / "model.json"),
            "--crop", "32", "--batch-size", "2", "--workers", "0", "--steps", "1", "--prepare-only", "-q"]
    assert CliRunner().invoke(main, [*args, "--teacher-motion-scale", "2"]).exit_code == 0
    assert json.loads((tmp_path / "r" / "config.json").read_text())["teacher_motion_scale"] == 2.0
    refused = CliRunner().invoke(main, [*args[:2], str(tmp_path / "s"), *args[3:], "--teacher-motion-scale", "-1"])
    assert refused.exit_code == 2


@pytest.mark.parametrize("stage", ["full", "flow"])
def test_a_tiny_distillation_run_learns_the_teachers_flows(tmp_path: Path, stage: str) -> None:
    """vfi train --teacher rife:PATH: the cache is filled once, and training lowers the student's flow
    error against the teacher (photometric losses off, so only the teacher can teach it). The flow
    stage (--stage flow) does so without touching the features or the synthesis."""
    from vfi_cli.config import LossWeights, TrainConfig
    from vfi_cli.training.items import collate_triplets
    from vfi_cli.training.trainer import Trainer

    weights = tmp_path / "flownet.pkl"
    torch.save(ramp_estimator_state(), weights)
    frames = []
    for k in range(16):  # a ramp moving 3 px per frame (the last 20%: a held-out triplet), with a texture riding on it so crops differ
        xs = np.arange(192) - 3.0 * k
        row = 0.2 + RAMP_SLOPE * xs + 0.02 * np.sin(xs / 5.0)
        frames.append((np.repeat(np.repeat(row[None, :, None], 128, 0), 3, 2) * 255).round().astype(np.uint8))
    clip = write_video(tmp_path / "ramp.mp4", frames, 10)
    config = TrainConfig(
        run_dir=str(tmp_path / "run"), data=[{"kind": "videos", "root": str(clip), "weight": 1.0}],
        model=ModelConfig(unet_channels=(8, 16, 16), feature_channels=4, synthesis_channels=4, flow_downsample=2).to_dict(),
        crop=64, batch_size=4, workers=0, steps=1, lr=3e-3, adversarial="none" if stage == "full" else "instance", num_rois=4,
        flow_teacher=f"rife:{weights}", stage=stage,
        # In the flow stage the frame term is on: it would train the features and synthesis if they were not left out.
        losses=LossWeights(photometric=0 if stage == "full" else 1.0, perceptual=0, smoothness=0, teacher=1.0, teacher_mask=0.1),
    )
    trainer = Trainer(config)
    assert trainer.prepare_teacher() == len(trainer.train_data.teacher_indices()) > 0
    cached = list((tmp_path / "run" / "cache").glob("teacher-rife-*/*.npy"))
    assert len(cached) == trainer.prepare_teacher()  # a second pass finds every triplet cached
    torch.manual_seed(0)
    np.random.seed(0)
    items = [trainer.train_data[i % len(trainer.train_data)] for i in range(16)]
    taught = [item for item in items if item["teacher"][5].mean() > 0.5][:4]
    assert len(taught) == 4
    batch = collate_triplets(taught)

    def flow_error() -> float:
        with torch.no_grad():
            out = trainer.model(batch["image1"], batch["image2"], batch["t"])
        return float(distillation_loss(out.flow1, out.flow2, out.mask, batch["teacher"])[0])

    before = flow_error()
    start = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    for _ in range(60):
        logged = trainer.train_step(batch)
    after = flow_error()
    assert before > 1.0 and after < 0.5 * before, (before, after)
    if stage == "flow":
        changed = {k.split(".")[0] for k, v in trainer.model.state_dict().items() if not torch.equal(v, start[k])}
        assert changed == {"flow"}
        assert trainer.discriminator is None and "adversarial" not in logged and "perceptual" not in logged
        assert set(trainer.validate()) == {"val_psnr", "val_ssim", "val_blend_psnr"}


def test_a_gpu_runs_the_teacher_warm_up_in_its_own_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """On CUDA the warm-up cannot use forked DataLoader workers: it runs in the training process with
    the teacher on the GPU, then puts the teacher back on the CPU for the workers (here the GPU is
    faked: the device switches are recorded and the network stays on the CPU)."""
    from vfi_cli.config import TrainConfig
    from vfi_cli.training import trainer as trainer_module
    from vfi_cli.training.teachers.cache import TeacherCache

    weights = tmp_path / "flownet.pkl"
    torch.save(ramp_estimator_state(), weights)
    clip = write_video(tmp_path / "moving.mp4", [np.full((64, 96, 3), 40 + 8 * k, np.uint8) for k in range(10)], 10)
    config = TrainConfig(run_dir=str(tmp_path / "run"), data=[{"kind": "videos", "root": str(clip), "weight": 1.0}],
                         model=ModelConfig(unet_channels=(8, 16, 16), feature_channels=4, synthesis_channels=4).to_dict(),
                         crop=32, batch_size=2, workers=1, steps=1, stage="flow", flow_teacher=f"rife:{weights}")
    trainer = trainer_module.Trainer(config)
    switches: list[str] = []
    monkeypatch.setattr(TeacherCache, "use_device", lambda self, device: switches.append(torch.device(device).type))
    monkeypatch.setattr(trainer.env, "device", torch.device("cuda"))
    monkeypatch.setattr(trainer_module, "DataLoader", None)  # no worker processes
    reported: list[tuple[int, int]] = []
    covered = trainer.prepare_teacher(lambda done, total: reported.append((done, total)))
    pending = len(trainer.train_data.teacher_indices())
    assert covered == pending > 0 and reported[-1] == (pending, pending)
    assert switches == ["cuda", "cpu"]
    assert len(list((tmp_path / "run" / "cache").glob("teacher-rife-*/*.npy"))) == covered


UNET = ModelConfig(unet_channels=(8, 16, 16), feature_channels=4, synthesis_channels=4, flow_downsample=4)


@pytest.mark.parametrize("config", [
    UNET, dataclasses.replace(UNET, flow_prior="coarse"), dataclasses.replace(UNET, symmetric_flow=True),
    dataclasses.replace(UNET, symmetric_flow=True, flow_scales=2),
    ModelConfig(flow_module="ifnet", ifnet_width=16, feature_channels=4, synthesis_channels=4, symmetric_flow=True),
], ids=["unet", "coarse-to-fine", "symmetric", "two-scales", "ifnet"])
def test_the_prior_free_model_is_pure_tensor_work(monkeypatch: pytest.MonkeyPatch, config: ModelConfig) -> None:
    """No numpy, OpenCV or host round trip in the forward pass: it runs on the meta device (where
    any copy to the host fails) and with numpy's array constructors patched to fail; the
    coarse-to-fine model's prior is a network too, a symmetric one batches both frame orders, the
    fusion of flow scales weighs them on the device, and IFNet's time input is a tensor too."""
    with torch.device("meta"):
        model = Interpolator.from_config(config)
        image = torch.rand(2, 3, 64, 128)
        out = model(image, image, torch.full((2,), 0.5))
    assert out.refined.device.type == "meta" and out.flow1.shape == (2, 2, 64, 128)

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("numpy used in the forward pass")

    for name in ("array", "asarray", "ascontiguousarray", "empty", "zeros"):
        monkeypatch.setattr(np, name, refuse)
    model = Interpolator.from_config(config).eval()
    image = torch.rand(1, 3, 64, 128)
    with torch.no_grad():
        out = model(image, image, torch.tensor([0.5]))
    assert torch.isfinite(out.refined).all()


def test_flow_downsample_estimates_flow_on_shrunk_frames() -> None:
    """flow_downsample n: the U-Net sees frames n times smaller and its flows come back in full-size pixels."""
    base = Interpolator.from_config(ModelConfig(unet_channels=(8, 16), feature_channels=4, synthesis_channels=4, flow_downsample=4))
    flow = ConstantFlow(0.5)
    model = Interpolator(flow, base.features, base.synthesis, stride=2, flow_downsample=4)
    assert model.multiple() == 8 and model.multiple(0.5) == 16
    image = torch.rand(1, 3, 32, 48)
    out = model(image, image, torch.tensor([0.5]))
    assert flow.seen == [(1, 3, 8, 12)]
    assert torch.allclose(out.flow1, torch.full_like(out.flow1, 4.0)) and torch.allclose(out.flow2, torch.full_like(out.flow2, -4.0))
    assert torch.allclose(out.coarse, 0.5 * backward_warp(image, out.flow1) + 0.5 * backward_warp(image, out.flow2))
    with pytest.raises(ValueError, match="multiple of 8"):
        model(image[..., :28, :], image[..., :28, :], torch.tensor([0.5]))


def test_coarse_to_fine_hands_the_coarse_flows_to_the_fine_u_net() -> None:
    """flow_prior "coarse": the coarse U-Net sees the fine one's frames shrunk twice more; its flows
    reach the fine U-Net in the fine one's pixels, with the frames warped by them, and a fine U-Net
    at its zero start returns them unchanged (so a coarse-to-fine model can start from a trained
    single U-Net as its coarse one)."""
    config = ModelConfig(unet_channels=(8, 16), feature_channels=4, synthesis_channels=4, flow_downsample=2, flow_prior="coarse")
    model = Interpolator.from_config(config)
    coarse = model.coarse_flow = ConstantFlow(0.25)
    assert model.multiple() == 8 and model.multiple(0.5) == 16
    torch.manual_seed(0)
    image1, image2 = torch.rand(1, 3, 32, 48), torch.rand(1, 3, 32, 48)
    with torch.no_grad():
        out = model(image1, image2, torch.tensor([0.5]))
    assert coarse.seen == [(1, 3, 8, 12)]  # 2 (flow_downsample) x 2 (coarse) smaller
    # 1 px of the coarse grid is 2 px of the fine U-Net's and 4 px of the full frame's.
    assert torch.allclose(out.flow1, torch.full_like(out.flow1, 4.0)) and torch.allclose(out.flow2, torch.full_like(out.flow2, -4.0))
    assert torch.allclose(out.mask, torch.full_like(out.mask, 0.25), atol=1e-3)
    model.flow.head.weight.data.normal_(std=0.1)  # a trained fine U-Net corrects the coarse flows
    with torch.no_grad():
        assert not torch.allclose(model(image1, image2, torch.tensor([0.5])).flow1, out.flow1)
    with pytest.raises(ValueError, match="only with it"):
        Interpolator(model.flow, model.features, model.synthesis, stride=2, flow_prior="dis", coarse_flow=ConstantFlow(0.5))


@pytest.mark.parametrize("flow_prior", ["none", "coarse", "dis"])
def test_a_symmetric_flow_module_averages_both_frame_orders(flow_prior: str) -> None:
    """symmetric_flow: the flows and mask are the mean of the model's own estimates for (I1, I2, t)
    and, swapped back, for (I2, I1, 1−t), computed here with the same weights one order at a time;
    so reversing the pair swaps the flows and mirrors the mask exactly."""
    config = ModelConfig(unet_channels=(8, 16, 16), feature_channels=4, synthesis_channels=4, flow_downsample=2, flow_prior=flow_prior)
    torch.manual_seed(0)
    plain = Interpolator.from_config(config).eval()
    with torch.no_grad():
        plain.flow.head.weight.normal_(std=0.3)  # flows of a few pixels (a prior model's head starts at zero)
    symmetric = Interpolator.from_config(dataclasses.replace(config, symmetric_flow=True)).eval()
    symmetric.load_state_dict(plain.state_dict())
    image1, image2 = torch.rand(2, 3, 32, 64), torch.rand(2, 3, 32, 64)
    image2[:, :, :, 2:] = image1[:, :, :, :-2]  # some motion for the DIS prior to find
    t = torch.tensor([0.5, 0.25])
    with torch.no_grad():
        forward, backward = plain(image1, image2, t), plain(image2, image1, 1 - t)
        both = symmetric(image1, image2, t)
        reversed_pair = symmetric(image2, image1, 1 - t)
    assert torch.allclose(both.flow1, (forward.flow1 + backward.flow2) / 2, atol=1e-5)
    assert torch.allclose(both.flow2, (forward.flow2 + backward.flow1) / 2, atol=1e-5)
    assert torch.allclose(both.mask, (forward.mask + 1 - backward.mask) / 2, atol=1e-5)
    assert not torch.allclose(both.flow1, forward.flow1, atol=1e-3)  # the reversed pass did change something
    assert torch.allclose(reversed_pair.flow1, both.flow2, atol=1e-5) and torch.allclose(reversed_pair.mask, 1 - both.mask, atol=1e-5)
    assert symmetric.state_dict().keys() == plain.state_dict().keys()  # the same parameters
    assert ModelConfig.from_dict(config.to_dict()).symmetric_flow is False  # weights saved before the option load as before
    with pytest.raises(ValueError, match="symmetric_flow"):
        ModelConfig(symmetric_flow="yes")  # type: ignore[arg-type]


@pytest.mark.parametrize(("shift", "right_scale"), [(2, 0), (4, 1)])
def test_flow_scales_keep_the_scale_whose_warped_frames_agree(shift: int, right_scale: int) -> None:
    """flow_scales 2: the same flow module runs on the frames and on them shrunk twice; a constant
    flow of one of its pixels is 1 full pixel at the first scale and 2 at the second. The frames
    move by 2 (or 4) pixels, so only the first (or second) scale's flows align them, and the fused
    frame, flows and mask are that scale's away from the borders (where rolling wraps the frames)."""
    base = Interpolator.from_config(ModelConfig(unet_channels=(8, 16), feature_channels=4, synthesis_channels=4))
    flow = ConstantFlow(0.5)
    model = Interpolator(flow, base.features, base.synthesis, stride=2, flow_scales=2).eval()
    assert model.multiple() == 4 and model.multiple(0.5) == 8
    torch.manual_seed(0)
    image1 = torch.rand(1, 3, 64, 64)  # noise: a misaligned pair disagrees everywhere
    image2 = torch.roll(image1, shifts=(-shift, -shift), dims=(2, 3))  # I2(x) = I1(x + shift)
    with torch.no_grad():
        out = model(image1, image2, torch.tensor([0.5]))
    assert flow.seen == [(1, 3, 64, 64), (1, 3, 32, 32)]
    step = 2**right_scale  # that scale's flows in full pixels: (step, step) into I1, −(step, step) into I2
    middle = torch.roll(image1, shifts=(-step, -step), dims=(2, 3))  # the true frame at t = 0.5 (shift = 2·step)
    inner = (..., slice(16, -16), slice(16, -16))
    assert torch.allclose(out.coarse[inner], middle[inner], atol=1e-5)
    assert torch.allclose(out.flow1[inner], torch.full_like(out.flow1[inner], float(step)), atol=1e-4)
    assert torch.allclose(out.flow2[inner], -out.flow1[inner]) and torch.allclose(out.mask, torch.full_like(out.mask, 0.5))


def test_consistency_weights_sum_to_one_and_favour_agreement() -> None:
    errors = [torch.rand(2, 1, 32, 48), torch.rand(2, 1, 32, 48), torch.rand(2, 1, 32, 48) * 0.01]
    weights = consistency_weights(errors)
    assert len(weights) == 3 and all(w.shape == (2, 1, 32, 48) for w in weights)
    assert torch.allclose(sum(weights), torch.ones_like(weights[0]), atol=1e-5)
    assert (weights[2] > 0.9).all()  # the estimate whose warped frames agree everywhere wins everywhere
    same = consistency_weights([errors[0], errors[0].clone()])
    assert torch.allclose(same[0], torch.full_like(same[0], 0.5))
    with pytest.raises(ValueError, match="flow_scales"):
        ModelConfig(flow_prior="dis", flow_scales=2)
    assert ModelConfig(flow_downsample=2, flow_scales=3).multiple == 32 * 2 * 4
    assert ModelConfig.from_dict(ModelConfig().to_dict()).flow_scales == 1


def test_rife_teacher_teaches_only_the_middle_time(tmp_path: Path) -> None:
    path = tmp_path / "flownet.pkl"
    torch.save(ramp_estimator_state(), path)
    teacher = RifeTeacher(path)
    assert teacher.applies(0.5) and not teacher.applies(0.25)
    first, middle, last = ((f * 255).round().astype(np.uint8) for f in ramp_frames(6.0))
    out = teacher(first, middle, last, 0.5)
    assert out.shape == (8, 64, 192) and out.dtype == np.float32
    with pytest.raises(ValueError, match="t = 0.5 only"):
        teacher(first, middle, last, 0.25)


def test_the_card_records_the_teacher_as_a_deviation_from_the_paper() -> None:
    from vfi_cli.training.export import deviations

    config = {"flow_teacher": "rife:/x/flownet.pkl", "model": {"flow_prior": "none", "flow_downsample": 2},
              "perceptual_source": "offline:laplacian-pyramid-l1-5", "losses": {"mse": 0.0}, "cpu_amp": True}
    found = deviations(config)
    assert any("RIFE HDv3" in line and "teacher" in line for line in found)
    assert any("1/2 resolution" in line for line in found) and any("Laplacian" in line for line in found)
    assert deviations({"model": {}}) == []
    staged = deviations({"stage": "flow", "model": {"flow_prior": "coarse", "symmetric_flow": True}})
    assert any("flow stage" in line for line in staged) and any("coarse to fine" in line for line in staged)
    assert any("reversed pair" in line for line in staged)


def test_a_vfi_weights_file_teaches_its_own_flows_at_any_time(tmp_path: Path) -> None:
    """vfi:WEIGHTS: the model's flows and mask at the triplet's t, with the trust of each."""
    from vfi_cli.model.padding import Padder
    from vfi_cli.model.weights import save_weights
    from vfi_cli.training.teachers import VfiTeacher

    config = ModelConfig(unet_channels=(8, 16, 16), feature_channels=4, synthesis_channels=4)
    torch.manual_seed(0)
    model = Interpolator.from_config(config).eval()
    with torch.no_grad():
        model.flow.head.weight.normal_(std=0.5)  # flows of a few pixels
    weights = tmp_path / "teacher.safetensors"
    save_weights(model, config, weights)
    teacher = VfiTeacher(weights)
    assert teacher.applies(0.25) and teacher.applies(0.5) and not teacher.applies(1.0)
    first, middle, last = ((f * 255).round().astype(np.uint8) for f in ramp_frames(8.0, height=30, width=50))
    out = teacher(first, middle, last, 0.25)
    assert out.shape == (8, 30, 50) and ((out[5:] >= 0) & (out[5:] <= 1)).all()
    image1, image2 = (torch.from_numpy(f).permute(2, 0, 1)[None].float() / 255 for f in (first, last))
    padder = Padder(30, 50, model.multiple())
    with torch.no_grad():
        expected = model(padder.pad(image1), padder.pad(image2), torch.tensor([0.25]))
    assert np.allclose(out[0:2], padder.unpad(expected.flow1)[0].numpy(), atol=1e-5)
    assert np.allclose(out[4], padder.unpad(expected.mask)[0, 0].numpy(), atol=1e-6)
    assert np.abs(out[0:2]).mean() > 0.05  # the comparison above is not between two zero flows


def test_motion_crops_are_drawn_where_the_teacher_sees_motion(tmp_path: Path) -> None:
    """--motion-crops 1: crops land on the one moving object of an otherwise still clip; anywhere
    (the default), most of them miss it."""
    from vfi_cli.config import TrainConfig
    from vfi_cli.training.trainer import Trainer

    rng = np.random.default_rng(0)
    background = rng.integers(0, 256, (128, 192, 3)).astype(np.uint8)
    background = np.asarray(torch.nn.functional.avg_pool2d(torch.from_numpy(background).permute(2, 0, 1).float()[None], 3, 1, 1)[0]
                            .permute(1, 2, 0).round().byte())
    square = rng.integers(0, 256, (24, 24, 3)).astype(np.uint8)
    frames = []
    for k in range(8):
        frame = background.copy()
        frame[92:116, 130 + 4 * k : 154 + 4 * k] = square
        frames.append(frame)
    clip = write_video(tmp_path / "square.mp4", frames, 10)

    def moving_share(motion_crops: float) -> float:
        config = TrainConfig(
            run_dir=str(tmp_path / f"run{motion_crops}"), data=[{"kind": "videos", "root": str(clip), "weight": 1.0}],
            model=ModelConfig(unet_channels=(8, 16, 16), feature_channels=4, synthesis_channels=4).to_dict(),
            crop=64, batch_size=4, workers=0, steps=1, adversarial="none", num_rois=4, flow_teacher="dis",
            cache_dir=str(tmp_path / "cache"), motion_crops=motion_crops,
        )
        data = Trainer(config).train_data
        np.random.seed(1)
        items = [data[i % len(data)] for i in range(40)]
        moving = [float(np.hypot(item["teacher"][0], item["teacher"][1]).max()) > 0.3 for item in items]
        return sum(moving) / len(moving)

    biased, anywhere = moving_share(1.0), moving_share(0.0)
    assert biased >= 0.9 and anywhere <= 0.5, (biased, anywhere)
