"""The one padder: grow frames to a multiple of the network's stride, then crop back exactly."""

from __future__ import annotations

import torch
import torch.nn.functional as F


class Padder:
    """Pads ``[..., H, W]`` tensors on the right and bottom to multiples of ``multiple``.

    Padding only on the far sides keeps pixel coordinates (and therefore flows) unchanged.
    Replicated borders avoid the dark edges that zero padding teaches a flow network.
    """

    def __init__(self, height: int, width: int, multiple: int) -> None:
        if height <= 0 or width <= 0 or multiple <= 0:
            raise ValueError(f"invalid padder size {height}x{width} / {multiple}")
        self.height = height
        self.width = width
        self.padded_height = -(-height // multiple) * multiple
        self.padded_width = -(-width // multiple) * multiple

    def pad(self, x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape[-2:]) != (self.height, self.width):
            raise ValueError(f"expected size {self.height}x{self.width}, got {x.shape[-2]}x{x.shape[-1]}")
        pad_h = self.padded_height - self.height
        pad_w = self.padded_width - self.width
        if pad_h == 0 and pad_w == 0:
            return x
        return F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")

    def unpad(self, x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape[-2:]) != (self.padded_height, self.padded_width):
            raise ValueError(
                f"expected padded size {self.padded_height}x{self.padded_width}, got {x.shape[-2]}x{x.shape[-1]}"
            )
        return x[..., : self.height, : self.width]
