"""YUV <-> RGB on the model's device, so that a GPU uploads and downloads code values, not float RGB.

A 1080p 8-bit 4:2:0 frame is 3 MB of planes against 25 MB of float RGB, and the conversion (about
30 ms per frame and direction with numpy) leaves the decode and encode threads. The numbers are those of
:mod:`vfi_cli.video.color` (its matrices and levels are imported, not copied), and so is the chroma
resampling: swscale's bicubic filter (B=0, C=0.6, chroma sited at the centre, edges repeated), upsampling
with 4 taps and downsampling by 2 with the kernel stretched to 8 taps. Two differences, both below one
code level: the resampling here is in float where swscale's is fixed point, and a deep (>8-bit) frame's
upsampled chroma is rounded to codes as the numpy path's 4:4:4 intermediate frame is, while an 8-bit
frame (which swscale converts to RGB in one pass) is not rounded before the matrix.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from vfi_cli.video.color import ColorInfo, bit_depth, chroma_shift, code_levels, ycbcr_matrix

_B, _C = 0.0, 0.6  # swscale's SWS_BICUBIC parameters


@dataclass(frozen=True)
class YuvLayout:
    """What turning planes of ``pix_fmt`` into RGB (and back) needs: depth, range, matrix and chroma subsampling."""

    pix_fmt: str
    color: ColorInfo

    @property
    def bits(self) -> int:
        return bit_depth(self.pix_fmt)

    @property
    def peak(self) -> int:
        """The RGB peak the numpy path uses for this depth: 255 for 8 bits, 65535 (uint16 RGB) beyond."""
        return 255 if self.bits <= 8 else 65535

    def levels(self) -> tuple[float, float, float, float]:
        return code_levels(self.bits, self.color.range_for(self.pix_fmt).name == "JPEG")


def _bicubic(distance: np.ndarray) -> np.ndarray:
    """The Mitchell-Netravali kernel with swscale's default B and C."""
    x = np.abs(distance)
    near = ((12 - 9 * _B - 6 * _C) * x**3 + (-18 + 12 * _B + 6 * _C) * x**2 + (6 - 2 * _B)) / 6
    far = ((-_B - 6 * _C) * x**3 + (6 * _B + 30 * _C) * x**2 + (-12 * _B - 48 * _C) * x + (8 * _B + 24 * _C)) / 6
    return np.where(x < 1, near, np.where(x < 2, far, 0.0))


@lru_cache(maxsize=32)
def _taps(source: int, target: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices and weights ``[target, taps]`` resampling ``source`` samples to ``target``, centres aligned."""
    scale = source / target
    stretch = max(scale, 1.0)  # downsampling widens the kernel (an anti-aliasing low-pass), as swscale does
    centres = (np.arange(target) + 0.5) * scale - 0.5
    count = int(np.ceil(4 * stretch)) + 1
    indices = np.floor(centres - 2 * stretch)[:, None].astype(np.int64) + 1 + np.arange(count)
    weights = _bicubic((indices - centres[:, None]) / stretch)
    weights /= weights.sum(axis=1, keepdims=True)
    return np.clip(indices, 0, source - 1), weights


def _resample(plane: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """``plane`` ``[..., h, w]`` (float) resampled to ``height`` × ``width``, one axis after the other."""
    for axis, size in ((-1, width), (-2, height)):
        if plane.shape[axis] == size:
            continue
        indices, weights = _taps(plane.shape[axis], size)
        moved = plane.movedim(axis, -1)
        index = torch.from_numpy(indices).to(plane.device)
        weight = torch.from_numpy(weights).to(plane.device, plane.dtype)
        plane = (moved[..., index] * weight).sum(-1).movedim(-1, axis)
    return plane


def _codes(plane: torch.Tensor) -> torch.Tensor:
    """Code values as float32: uint16 planes arrive as int16 (torch has few uint16 kernels) and are unwrapped."""
    if plane.dtype == torch.int16:
        return plane.to(torch.int32).bitwise_and_(0xFFFF).float()
    return plane.float()


def yuv_to_rgb(planes: list[torch.Tensor], layout: YuvLayout) -> torch.Tensor:
    """Y, Cb, Cr code planes (uint8, or int16 holding uint16) -> ``[3,H,W]`` float32 R'G'B' in [0, 1]."""
    y_off, y_scale, c_off, c_scale = layout.levels()
    luma = _codes(planes[0])
    height, width = luma.shape
    chroma = torch.stack([_codes(planes[1]), _codes(planes[2])])
    if chroma.shape[-2:] != luma.shape:
        chroma = _resample(chroma, height, width)
        if layout.bits > 8:  # the numpy path's 4:4:4 intermediate frame holds codes
            chroma = chroma.round_().clamp_(0, (1 << layout.bits) - 1)
    inverse = torch.from_numpy(np.linalg.inv(ycbcr_matrix(layout.color))).to(luma.device, torch.float32)
    ycbcr = torch.cat([((luma - y_off) / y_scale)[None], (chroma - c_off) / c_scale])
    return torch.einsum("ij,jhw->ihw", inverse, ycbcr).clamp_(0, 1)


def rgb_to_yuv(rgb: torch.Tensor, layout: YuvLayout) -> list[torch.Tensor]:
    """``[N,3,H,W]`` R'G'B' in [0, 1] -> Y, Cb, Cr code planes ``[N,h,w]``: uint8, or int16 holding uint16.

    Rounding the output to the depth and range of ``layout`` and chroma downsampled as swscale does.
    """
    y_off, y_scale, c_off, c_scale = layout.levels()
    matrix = torch.from_numpy(ycbcr_matrix(layout.color)).to(rgb.device, torch.float32)
    ycbcr = torch.einsum("ij,njhw->nihw", matrix, rgb.float())
    top = float((1 << layout.bits) - 1)
    luma = (ycbcr[:, 0] * y_scale + y_off).round_().clamp_(0, top)
    chroma = (ycbcr[:, 1:] * c_scale + c_off).round_().clamp_(0, top)  # the numpy path's 4:4:4 codes
    shift_y, shift_x = chroma_shift(layout.pix_fmt)
    height, width = luma.shape[-2:]
    chroma_size = (-(-height >> shift_y), -(-width >> shift_x))
    if chroma.shape[-2:] != chroma_size:
        chroma = _resample(chroma, *chroma_size).round_().clamp_(0, top)
    return [_stored(plane, layout.bits) for plane in (luma, chroma[:, 0], chroma[:, 1])]


def _stored(codes: torch.Tensor, bits: int) -> torch.Tensor:
    """Float codes as the integer type that goes to the host: uint8, or int16 with uint16's bits."""
    if bits <= 8:
        return codes.to(torch.uint8)
    wide = codes.to(torch.int32)
    return torch.where(wide >= 32768, wide - 65536, wide).to(torch.int16)
