"""The spectral-norm patch discriminator: any input size, unit spectral norms, learns; instance noise."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

from vfi_cli.training.discriminator import PatchDiscriminator, add_instance_noise
from vfi_cli.training.losses import hinge_discriminator_loss


@pytest.mark.parametrize("size", [(64, 64), (32, 32), (256, 256), (40, 72)])
def test_scores_one_value_per_image_of_any_size(size: tuple[int, int]) -> None:
    scores = PatchDiscriminator(channels=8)(torch.rand(5, 3, *size))
    assert scores.shape == (5,) and torch.isfinite(scores).all()


def test_rejects_inputs_it_cannot_judge() -> None:
    with pytest.raises(ValueError):
        PatchDiscriminator(channels=8)(torch.rand(2, 3, 16, 64))
    with pytest.raises(ValueError):
        PatchDiscriminator(channels=8)(torch.rand(2, 1, 64, 64))


def test_every_layer_is_spectrally_normalised() -> None:
    torch.manual_seed(0)
    model = PatchDiscriminator(channels=8).train()
    layers = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert layers and all(parametrize.is_parametrized(m, "weight") for m in layers)
    for _ in range(30):  # power iterations run in training forwards
        model(torch.rand(1, 3, 32, 32))
    for layer in layers:
        sigma = torch.linalg.matrix_norm(layer.weight.detach().flatten(1), ord=2)
        assert sigma.item() == pytest.approx(1.0, abs=0.05)


@pytest.fixture
def one_thread() -> Iterator[None]:
    """Tiny convolutions run fastest on one thread, and do not stall when other jobs share the cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_learns_to_tell_sharp_from_flat_patches_with_gradients_to_its_input(one_thread: None) -> None:
    torch.manual_seed(0)
    model = PatchDiscriminator(channels=8)
    optimiser = torch.optim.Adam(model.parameters(), lr=2e-3, betas=(0.5, 0.999))
    real = torch.rand(8, 3, 32, 32)
    fake = real.mean(dim=(2, 3), keepdim=True).expand_as(real).clone()
    losses = []
    for _ in range(25):
        loss = hinge_discriminator_loss(model(real), model(fake))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
    image = fake[:2].clone().requires_grad_(True)
    model(image).sum().backward()
    assert image.grad.abs().sum() > 0


def test_instance_noise() -> None:
    images = torch.rand(4, 3, 64, 64)
    assert add_instance_noise(images, 0.0) is images
    torch.manual_seed(3)
    noisy = add_instance_noise(images, 0.1)
    difference = noisy - images
    assert difference.std().item() == pytest.approx(0.1, rel=0.03) and abs(difference.mean().item()) < 3e-3
    torch.manual_seed(3)
    assert torch.equal(add_instance_noise(images, 0.1), noisy)  # draws from torch's RNG: resumable runs repeat it
    seeded = [add_instance_noise(images, 0.1, torch.Generator().manual_seed(7)) for _ in range(2)]
    assert torch.equal(seeded[0], seeded[1]) and not torch.equal(seeded[0], noisy)
    with pytest.raises(ValueError):
        add_instance_noise(images, -0.1)
