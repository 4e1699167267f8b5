"""The interpolator: features + flow + warping + synthesis, assembled from its parts."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from vfi_cli.config import ModelConfig
from vfi_cli.model.features import FeatureExtractor
from vfi_cli.model.flow import FlowUNet
from vfi_cli.model.synthesis import Synthesis
from vfi_cli.model.warp import backward_warp


@dataclass
class InterpolatorOutput:
    """Everything the forward pass computes; losses and the engine pick what they need."""

    flow1: torch.Tensor  # f1→t: where each pixel of frame t is found in I1, [B,2,H,W] pixels
    flow2: torch.Tensor  # f2→t: the same in I2
    mask: torch.Tensor  # b: weight of warped I1, [B,1,H,W] in (0,1)
    coarse: torch.Tensor  # Ît of Eq. 1
    refined: torch.Tensor  # Ĩt, the synthesis module's output


class Interpolator(nn.Module):
    """Synthesises frame t ∈ (0,1) between I1 (t=0) and I2 (t=1).

    Images are float RGB in [0,1], ``[B,3,H,W]`` with H and W multiples of ``stride`` (use
    :class:`~vfi_cli.model.padding.Padder`). Features can be passed in so that a frame shared by
    two neighbouring pairs is encoded once.
    """

    def __init__(self, flow: nn.Module, features: nn.Module, synthesis: nn.Module, stride: int) -> None:
        super().__init__()
        self.flow = flow
        self.features = features
        self.synthesis = synthesis
        self.stride = stride

    @classmethod
    def from_config(cls, config: ModelConfig) -> Interpolator:
        return cls(
            flow=FlowUNet(config.unet_channels),
            features=FeatureExtractor(config.feature_channels, config.feature_kernel),
            synthesis=Synthesis(config.feature_channels, config.synthesis_channels, config.synthesis_kernel),
            stride=config.stride,
        )

    def forward(
        self,
        image1: torch.Tensor,
        image2: torch.Tensor,
        t: torch.Tensor,
        features1: torch.Tensor | None = None,
        features2: torch.Tensor | None = None,
    ) -> InterpolatorOutput:
        self._check(image1, image2, t)
        if features1 is None:
            features1 = self.features(image1)
        if features2 is None:
            features2 = self.features(image2)
        flow1, flow2, mask = self.flow(image1, image2, t)
        coarse = mask * backward_warp(image1, flow1) + (1 - mask) * backward_warp(image2, flow2)
        warped_features = mask * backward_warp(features1, flow1) + (1 - mask) * backward_warp(features2, flow2)
        refined = self.synthesis(coarse, warped_features)
        return InterpolatorOutput(flow1=flow1, flow2=flow2, mask=mask, coarse=coarse, refined=refined)

    def _check(self, image1: torch.Tensor, image2: torch.Tensor, t: torch.Tensor) -> None:
        if image1.dim() != 4 or image1.shape[1] != 3 or image1.shape != image2.shape:
            raise ValueError(f"expected two [B,3,H,W] images of one shape, got {tuple(image1.shape)} and {tuple(image2.shape)}")
        height, width = image1.shape[-2:]
        if height % self.stride or width % self.stride:
            raise ValueError(f"image size {height}x{width} is not a multiple of {self.stride}; pad it first")
        if t.shape != (image1.shape[0],):
            raise ValueError(f"expected t of shape ({image1.shape[0]},), got {tuple(t.shape)}")
