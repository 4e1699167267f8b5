"""Losses of §3.4 against hand-computed values; VGG-16 loading from a file, the cache, or not at all."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from vfi_cli.errors import VfiError
from vfi_cli.training.losses import (
    PerceptualLoss,
    hinge_discriminator_loss,
    hinge_generator_loss,
    photometric_loss,
    smoothness_loss,
    teacher_flow_loss,
)


def rho(x: float) -> float:
    """Eq. 5 with the constants of Sun et al. (α = 0.45, ε = 1e-3)."""
    return (x * x + 1e-6) ** 0.45


def test_photometric_loss_matches_eq_4_by_hand() -> None:
    width = 5
    target = (0.1 * torch.arange(width, dtype=torch.float64)).expand(2, 3, 4, width).clone()
    pred = torch.zeros_like(target)
    colour = sum(rho(0.1 * x) for x in range(width)) / width
    expected = colour + rho(0.1) + rho(0.0)  # x gradients differ by 0.1 everywhere, y gradients agree
    assert photometric_loss(pred, target).item() == pytest.approx(expected, rel=1e-9)
    assert photometric_loss(target, target).item() == pytest.approx(3 * rho(0.0), rel=1e-9)
    shifted = target + 0.2  # a brightness offset costs the colour term only
    assert photometric_loss(shifted, target).item() == pytest.approx(rho(0.2) + 2 * rho(0.0), rel=1e-9)


def test_photometric_loss_gradient_reaches_prediction() -> None:
    pred = torch.rand(1, 3, 8, 8, requires_grad=True)
    photometric_loss(pred, torch.rand(1, 3, 8, 8)).backward()
    assert pred.grad is not None and pred.grad.abs().sum() > 0


def test_smoothness_loss_is_l1_of_first_differences() -> None:
    ys, xs = torch.meshgrid(torch.arange(6.0), torch.arange(7.0), indexing="ij")
    flow1 = torch.zeros(1, 2, 6, 7)
    flow1[:, 0] = 2 * xs  # |∂x| = 2 on one of two channels: mean 1
    flow2 = torch.full((1, 2, 6, 7), 3.0)  # constant: no cost
    mask = (0.1 * ys)[None, None]  # |∂y| = 0.1
    assert smoothness_loss(flow1, flow2, mask).item() == pytest.approx(1.1, rel=1e-6)
    assert smoothness_loss(flow2, flow2, torch.full((1, 1, 6, 7), 0.5)).item() == 0.0


def test_teacher_flow_loss_weights_by_confidence() -> None:
    teacher = torch.zeros(2, 5, 8, 8)
    teacher[:, 0] = 1.5
    teacher[:, 3] = -2.0
    teacher[:, 4] = 1.0
    flow1, flow2 = teacher[:, 0:2].clone(), teacher[:, 2:4].clone()
    assert teacher_flow_loss(flow1, flow2, teacher).item() == pytest.approx(1e-3, rel=1e-3)  # Charbonnier floor

    wrong = flow1 + torch.tensor([3.0, 4.0]).view(1, 2, 1, 1)  # end-point error 5 on f1→t, 0 on f2→t
    assert teacher_flow_loss(wrong, flow2, teacher).item() == pytest.approx(2.5, rel=1e-3)

    teacher[:, 4, :, :4] = 0.0  # the teacher is unreliable on the left half, where f1→t is wrong
    wrong_left = flow1.clone()
    wrong_left[:, :, :, :4] += 10.0
    assert teacher_flow_loss(wrong_left, flow2, teacher).item() == pytest.approx(1e-3, rel=1e-3)

    teacher[:, 4] = 0.0
    flow = wrong.clone().requires_grad_(True)
    loss = teacher_flow_loss(flow, flow2, teacher)
    loss.backward()
    assert loss.item() == 0.0 and torch.isfinite(flow.grad).all()


def test_teacher_flow_loss_trains_flow_not_teacher() -> None:
    teacher = torch.rand(1, 5, 6, 6, requires_grad=True)
    flow1 = torch.zeros(1, 2, 6, 6, requires_grad=True)
    flow2 = torch.zeros(1, 2, 6, 6, requires_grad=True)
    teacher_flow_loss(flow1, flow2, teacher).backward()
    assert flow1.grad.abs().sum() > 0 and flow2.grad.abs().sum() > 0 and teacher.grad is None


def test_hinge_losses_of_eq_8() -> None:
    d_real = torch.tensor([2.0, 0.5])
    d_fake = torch.tensor([-2.0, 0.0])
    # real: max(0, 1-2)=0, max(0, 1-0.5)=0.5 -> 0.25; fake: max(0, 1-2)=0, max(0, 1+0)=1 -> 0.5
    assert hinge_discriminator_loss(d_real, d_fake).item() == pytest.approx(0.75)
    assert hinge_generator_loss(d_fake).item() == pytest.approx(1.0)
    assert hinge_discriminator_loss(torch.tensor([1.0, 3.0]), torch.tensor([-1.0, -5.0])).item() == 0.0


# ----------------------------------------------------------------------------- perceptual


@pytest.fixture(scope="module")
def random_vgg(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, torch.nn.Module]:
    """A randomly initialised torchvision VGG-16 saved like vgg16-397923af.pth (conv part only, to stay small)."""
    from torchvision.models import vgg16

    torch.manual_seed(0)
    model = vgg16().eval()
    path = tmp_path_factory.mktemp("vgg") / "vgg16-397923af.pth"
    torch.save({k: v for k, v in model.state_dict().items() if k.startswith("features.")}, path)
    return path, model


@pytest.fixture
def no_download(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("tried to download")

    import torchvision.models._api

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", refuse)
    monkeypatch.setattr(torchvision.models._api, "load_state_dict_from_url", refuse)


def torchvision_relu4_3(model: torch.nn.Module, image: torch.Tensor) -> torch.Tensor:
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    return model.features[:23]((image - mean) / std)  # features[22] is relu4_3


def test_perceptual_loss_loads_vgg16_file(random_vgg: tuple[Path, torch.nn.Module], no_download: None) -> None:
    path, model = random_vgg
    loss = PerceptualLoss(path)
    assert loss.source.startswith("vgg16") and str(path) in loss.source
    assert list(loss.parameters()) == [] and loss.state_dict() == {}  # frozen, and not in any checkpoint

    torch.manual_seed(1)
    pred, target = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    assert loss(target, target).item() == 0.0
    with torch.no_grad():
        expected = F.l1_loss(torchvision_relu4_3(model, pred), torchvision_relu4_3(model, target))
    assert loss(pred, target).item() == pytest.approx(expected.item(), rel=1e-4) and expected > 0

    moving = pred.clone().requires_grad_(True)
    loss(moving, target).backward()
    assert moving.grad.abs().sum() > 0
    assert loss.to(torch.float64).conv0_weight.dtype == torch.float64  # the network moves with the module


def test_perceptual_loss_finds_vgg16_in_torch_cache(
    random_vgg: tuple[Path, torch.nn.Module], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_download: None
) -> None:
    checkpoints = tmp_path / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    (checkpoints / "vgg16-397923af.pth").symlink_to(random_vgg[0])
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    loss = PerceptualLoss(None)
    assert loss.source.startswith("vgg16") and str(checkpoints) in loss.source


def test_perceptual_loss_without_weights_is_an_offline_substitute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_download: None
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # an empty cache
    loss = PerceptualLoss(None)
    assert loss.source.startswith("offline:") and loss.state_dict() == {}
    torch.manual_seed(0)
    sharp = torch.rand(1, 3, 64, 64)
    blurred = F.avg_pool2d(sharp, 5, stride=1, padding=2, count_include_pad=False)
    assert loss(sharp, sharp).item() == 0.0
    assert loss(blurred, sharp).item() > 0.02  # losing detail costs
    # a uniform brightness offset only reaches the low-pass residual, one level of five
    assert loss(sharp + 0.1, sharp).item() == pytest.approx(0.1 / 5, rel=1e-4)


def test_perceptual_loss_rejects_missing_or_foreign_weights(tmp_path: Path) -> None:
    with pytest.raises(VfiError, match="not found"):
        PerceptualLoss(tmp_path / "absent.pth")
    foreign = tmp_path / "foreign.pth"
    torch.save({"conv1.weight": torch.zeros(64, 3, 7, 7)}, foreign)
    with pytest.raises(VfiError, match="not a torchvision VGG-16"):
        PerceptualLoss(foreign)
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(VfiError, match="unreadable"):
        PerceptualLoss(garbage)

