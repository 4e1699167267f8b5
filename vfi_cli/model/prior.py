"""A classical optical-flow prior for the flow U-Net: DIS flow both ways, projected to time t.

Why: a flow U-Net learns large motion only after days of GPU training. The prior hands it
the answer of a classical method (OpenCV's DIS, bidirectional, forward-projected to t with
occlusion-aware weights, after Baker et al. 2011 and Sundaram et al. 2010), so the network
only has to learn corrections. It is an addition to the paper, switched on by
``ModelConfig.flow_prior = "dis"``; with ``"none"`` the network is the paper's.

DIS runs outside any exported graph: a prior model's ONNX graph takes :func:`dis_prior`'s output,
computed on the U-Net's frames by :meth:`Interpolator.flow_prior_of
<vfi_cli.model.network.Interpolator.flow_prior_of>` (see :mod:`vfi_cli.model.export`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from vfi_cli.model.dis import dis_flow
from vfi_cli.model.warp import backward_warp

_LUMA = (0.299, 0.587, 0.114)


@dataclass
class FlowPrior:
    """Flows from frame t into each input (the convention of :class:`InterpolatorOutput`)
    and the weight of input 1, all ``[B,·,H,W]`` float32."""

    flow1: torch.Tensor
    flow2: torch.Tensor
    mask: torch.Tensor


def dis_flows(image1: torch.Tensor, image2: torch.Tensor, preset: str = "medium") -> tuple[torch.Tensor, torch.Tensor]:
    """DIS flow 1→2 and 2→1 of ``[B,3,H,W]`` images in [0,1], computed on the CPU in 8-bit grey
    (DIS has no GPU or batched form) and returned as float32 on the images' device."""
    weights = torch.tensor(_LUMA, dtype=torch.float32, device=image1.device).view(1, 3, 1, 1)

    def grey(image: torch.Tensor) -> np.ndarray:
        luma = (image.float() * weights).sum(1).clamp(0, 1) * 255
        return luma.round().to(torch.uint8).cpu().numpy()

    grey1, grey2 = grey(image1), grey(image2)
    forward = np.stack([dis_flow(a, b, preset) for a, b in zip(grey1, grey2)])
    backward = np.stack([dis_flow(b, a, preset) for a, b in zip(grey1, grey2)])

    def tensor(flow: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(flow).permute(0, 3, 1, 2).contiguous().to(image1.device)

    return tensor(forward), tensor(backward)


def consistency(flow_a: torch.Tensor, flow_b: torch.Tensor) -> torch.Tensor:
    """Soft forward-backward check of ``flow_a`` against the opposite flow ``flow_b``, in (0,1].

    Where a pixel is visible in both frames, following a and then b returns to the start; the
    tolerance grows with the motion, as in Sundaram et al. (ECCV 2010).
    """
    back = backward_warp(flow_b, flow_a)
    error = (flow_a + back).square().sum(1, keepdim=True)
    scale = 0.01 * (flow_a.square().sum(1, keepdim=True) + back.square().sum(1, keepdim=True)) + 0.5
    return torch.exp(-error / scale)


def forward_splat(values: torch.Tensor, flow: torch.Tensor, weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Push every source pixel's ``values`` to ``x + flow(x)`` with bilinear weights times
    ``weight``; returns the weighted sums and the sums of the weights (float32)."""
    batch, channels, height, width = values.shape
    ys = torch.arange(height, device=flow.device, dtype=torch.float32).view(1, height, 1)
    xs = torch.arange(width, device=flow.device, dtype=torch.float32).view(1, 1, width)
    x = (xs + flow[:, 0].float()).reshape(batch, -1)
    y = (ys + flow[:, 1].float()).reshape(batch, -1)
    x0, y0 = x.floor(), y.floor()
    fx, fy = x - x0, y - y0
    payload = torch.cat((values.float() * weight, weight.float()), 1).reshape(batch, channels + 1, -1)
    total = torch.zeros_like(payload)
    for dx, dy, share in ((0, 0, (1 - fx) * (1 - fy)), (1, 0, fx * (1 - fy)), (0, 1, (1 - fx) * fy), (1, 1, fx * fy)):
        xi, yi = x0 + dx, y0 + dy
        inside = (xi >= 0) & (xi < width) & (yi >= 0) & (yi < height)
        index = (yi.clamp(0, height - 1) * width + xi.clamp(0, width - 1)).long()
        total.scatter_add_(2, index.unsqueeze(1).expand_as(payload), payload * (share * inside).unsqueeze(1))
    total = total.view(batch, channels + 1, height, width)
    return total[:, :channels], total[:, channels:]


def fill_holes(values: torch.Tensor, weight: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    """Normalise splatted sums and fill pixels nothing landed on from ever coarser averages
    (push-pull), so disoccluded regions take the motion of their surroundings."""
    filled = values / weight.clamp_min(eps)
    hole = weight < eps
    if not bool(hole.any()) or min(values.shape[-2:]) < 2:
        return torch.where(hole, torch.zeros_like(filled), filled)
    coarse_values = F.avg_pool2d(values, 2, ceil_mode=True)
    coarse_weight = F.avg_pool2d(weight, 2, ceil_mode=True)
    coarse = fill_holes(coarse_values, coarse_weight, eps / 4)
    up = F.interpolate(coarse, size=values.shape[-2:], mode="bilinear", align_corners=False)
    return torch.where(hole, up, filled)


def dis_prior(image1: torch.Tensor, image2: torch.Tensor, t: torch.Tensor, preset: str = "medium") -> FlowPrior:
    """Classical interpolation flows for time ``t`` ([B]) between two ``[B,3,H,W]`` images."""
    with torch.no_grad():
        flow12, flow21 = dis_flows(image1, image2, preset)
        conf1 = consistency(flow12, flow21)
        conf2 = consistency(flow21, flow12)
        tt = t.float().view(-1, 1, 1, 1)
        # A pixel of I1 is at x + t·f12 at time t, where the flow back to I1 is -t·f12 and on
        # to I2 is (1-t)·f12; a pixel of I2 is at x + (1-t)·f21, with flows t·f21 and -(1-t)·f21.
        sum1, weight1 = forward_splat(torch.cat((-tt * flow12, (1 - tt) * flow12), 1), tt * flow12, conf1 + 1e-3)
        sum2, weight2 = forward_splat(torch.cat((tt * flow21, -(1 - tt) * flow21), 1), (1 - tt) * flow21, conf2 + 1e-3)
        flows = fill_holes(sum1 + sum2, weight1 + weight2)
        flow1, flow2 = flows[:, :2], flows[:, 2:]
        # Each input counts by how near it is in time and how sure its sample point's flow is.
        vote1 = (1 - tt) * backward_warp(conf1, flow1)
        vote2 = tt * backward_warp(conf2, flow2)
        unsure = (vote1 + vote2) < 0.05
        vote1 = torch.where(unsure, (1 - tt).expand_as(vote1), vote1)
        vote2 = torch.where(unsure, tt.expand_as(vote2), vote2)
        mask = vote1 / (vote1 + vote2)
    return FlowPrior(flow1=flow1, flow2=flow2, mask=mask)
