"""The discriminator D of §3.3 and Eq. 8, and the decaying noise added to its 'real' inputs (§3.5).

The paper says only that D uses spectral normalisation [18] and examines 64×64 RoIs. This is a
PatchGAN-style stack (as in pix2pix) of four 4×4 stride-2 convolutions with LeakyReLU and a 3×3
convolution to one score per location, every layer spectrally normalised and no other
normalisation (SN already bounds D's Lipschitz constant). Scores are averaged over locations, so
one network takes 64×64 RoI patches (instance mode: a 4×4 score map whose receptive field, 78
pixels, covers the whole patch) and whole crops of any size ≥ 32 (image mode).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

MIN_SIZE = 32


class PatchDiscriminator(nn.Module):
    """RGB [N,3,S,S] in [0,1] -> realness scores [N] (hinge loss: > 1 real, < -1 fake)."""

    def __init__(self, channels: int = 64) -> None:
        super().__init__()
        widths = [3, channels, channels * 2, channels * 4, channels * 8]
        layers: list[nn.Module] = []
        for c_in, c_out in zip(widths[:-1], widths[1:]):
            layers += [spectral_norm(nn.Conv2d(c_in, c_out, 4, stride=2, padding=1)), nn.LeakyReLU(0.2)]
        layers.append(spectral_norm(nn.Conv2d(widths[-1], 1, 3, padding=1)))
        self.net = nn.Sequential(*layers)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.dim() != 4 or images.shape[1] != 3 or min(images.shape[-2:]) < MIN_SIZE:
            raise ValueError(f"expected RGB [N,3,H,W] with H, W >= {MIN_SIZE}, got {tuple(images.shape)}")
        return self.net(images * 2 - 1).mean(dim=(1, 2, 3))


def add_instance_noise(images: torch.Tensor, sigma: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Gaussian noise of std ``sigma`` (not clipped, which would bias the mean); sigma 0 returns ``images``.

    Blurring the real distribution this way keeps D from separating real and fake too early.
    A ``generator`` seeded per step keeps a resumed run's noise identical to an uninterrupted one's.
    """
    if sigma < 0:
        raise ValueError(f"noise sigma must be >= 0, got {sigma}")
    if sigma == 0:
        return images
    noise = torch.randn(images.shape, generator=generator, device=images.device, dtype=images.dtype)
    return images + sigma * noise
