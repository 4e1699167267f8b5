"""The flow-estimation U-Net of §3.1: (I1, I2, t) -> f1→t, f2→t and the blending mask b."""

from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F


def _block(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1),
        nn.LeakyReLU(0.1, inplace=True),
        nn.Conv2d(out_channels, out_channels, 3, padding=1),
        nn.LeakyReLU(0.1, inplace=True),
    )


class FlowUNet(nn.Module):
    """U-Net over both frames and a constant plane holding the target time t.

    Feeding t as an input is what lets one model produce any intermediate time, and so any
    target frame rate. The head starts at zero: an untrained network predicts zero flow and
    b = 0.5, i.e. plain frame blending, rather than noise.
    """

    def __init__(self, channels: tuple[int, ...]) -> None:
        super().__init__()
        self.encoders = nn.ModuleList()
        in_channels = 7  # I1 (3) + I2 (3) + t (1)
        for width in channels:
            self.encoders.append(_block(in_channels, width))
            in_channels = width
        self.decoders = nn.ModuleList(
            _block(channels[i + 1] + channels[i], channels[i]) for i in reversed(range(len(channels) - 1))
        )
        self.head = nn.Conv2d(channels[0], 5, 3, padding=1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, image1: torch.Tensor, image2: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Returns (f1→t, f2→t, b) with flows in pixels and b in (0, 1)."""
        batch, _, height, width = image1.shape
        t_plane = t.to(image1.dtype).view(batch, 1, 1, 1).expand(batch, 1, height, width)
        x = torch.cat((image1 - 0.5, image2 - 0.5, t_plane), dim=1)
        skips = []
        for level, encoder in enumerate(self.encoders):
            if level > 0:
                x = F.avg_pool2d(x, 2)
            x = encoder(x)
            skips.append(x)
        skips.pop()
        for decoder in self.decoders:
            x = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
            x = decoder(torch.cat((x, skips.pop()), dim=1))
        out = self.head(x)
        return out[:, 0:2], out[:, 2:4], torch.sigmoid(out[:, 4:5])
