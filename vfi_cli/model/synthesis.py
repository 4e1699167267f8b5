"""The image-synthesis layers of §3.2: three 9×9 convolutions over the warped image and features."""

from __future__ import annotations

import torch
from torch import nn


class Synthesis(nn.Module):
    """Refines Ît into Ĩt from [Ît, F̂t].

    The layers predict a correction added to Ît (a deviation from the paper, which states only
    the three layers): with the last layer starting at zero, an untrained module passes the
    flow-warped frame through, and training learns the fine-scale corrections the paper means.
    """

    def __init__(self, feature_channels: int, channels: int, kernel: int) -> None:
        super().__init__()
        pad = kernel // 2
        self.layers = nn.Sequential(
            nn.Conv2d(3 + feature_channels, channels, kernel, padding=pad),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, kernel, padding=pad),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, 3, kernel, padding=pad),
        )
        last = self.layers[-1]
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)

    def forward(self, coarse: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        return coarse + self.layers(torch.cat((coarse, features), dim=1))
