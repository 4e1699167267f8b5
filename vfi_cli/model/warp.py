"""The one backward-warping helper, g(I, f) of Eq. 1–2."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def backward_warp(image: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Sample ``image`` at ``x + flow(x)`` for every pixel ``x`` of the target grid.

    ``flow`` is ``[B, 2, H, W]`` in pixels, channel 0 horizontal (+right) and channel 1 vertical
    (+down). Bilinear; samples outside the image take the nearest border pixel.

    The grid is built on the flow's device and always in float32: in float16 a normalised
    coordinate has about 2e-3 resolution, which is more than a pixel on a 2K or 4K frame.
    """
    if image.dim() != 4 or flow.dim() != 4 or flow.shape[1] != 2:
        raise ValueError(f"expected image [B,C,H,W] and flow [B,2,H,W], got {tuple(image.shape)} and {tuple(flow.shape)}")
    if image.shape[0] != flow.shape[0] or image.shape[2:] != flow.shape[2:]:
        raise ValueError(f"image {tuple(image.shape)} and flow {tuple(flow.shape)} differ in batch or size")
    _, _, height, width = flow.shape
    flow32 = flow.float()
    ys = torch.arange(height, device=flow.device, dtype=torch.float32)
    xs = torch.arange(width, device=flow.device, dtype=torch.float32)
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    sample_x = grid_x + flow32[:, 0]
    sample_y = grid_y + flow32[:, 1]
    # align_corners=True maps -1 and +1 to the centres of the first and last pixels. The last grid
    # coordinate is the size − 1 as a tensor: an exported (ONNX) graph then keeps the size dynamic.
    norm_x = 2.0 * sample_x / xs[-1:].clamp(min=1.0) - 1.0
    norm_y = 2.0 * sample_y / ys[-1:].clamp(min=1.0) - 1.0
    grid = torch.stack((norm_x, norm_y), dim=-1)
    warped = F.grid_sample(image.float(), grid, mode="bilinear", padding_mode="border", align_corners=True)
    return warped.to(image.dtype)
