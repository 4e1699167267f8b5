"""Large frames within a memory budget: whole frames when they fit, else overlapping feathered tiles.

The model's working memory grows linearly with the pixels it sees at once (about 2 KB per pixel
for the default network in float32 on the CPU, see :func:`bytes_per_pixel`). A 4K frame needs
~17 GB, an 8K one ~70 GB. :func:`plan_memory` keeps the estimated peak under a budget by, in order:
running whole frames with fewer pairs per model call, then cutting frames into tiles.

Tiles overlap by a band of ``overlap`` pixels. Across the band each tile's weight is 0 in the
quarter nearest its own edge (context only: the flow there lacks what lies beyond the tile) and
falls linearly from 1 to 0 over the middle half, so neighbouring weights sum to 1 and no seam can
show. A pixel therefore comes only from tiles in which it lies at least ``overlap/4`` pixels from
the edge: motion up to that distance, plus the reach of the convolutions, is seen as untiled.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import nn

from vfi_cli.config import ModelConfig
from vfi_cli.errors import VfiError
from vfi_cli.memory import available_memory
from vfi_cli.model.ifnet import IFNet
from vfi_cli.units import format_memory

CPU_SHARE = 0.5  # of MemAvailable: decoding, encoding, queues and other programs need the rest
CUDA_SHARE = 0.8  # of the device's free memory: the allocator's fragmentation and cuDNN workspaces
SAFETY = 1.1  # on the estimate below, which matched measured peaks to within -10%..+15%
BLEND_BYTES = 32  # per tile pixel: Ĩt in float32, its weighted copy and the weight

def free_memory(device: torch.device) -> int:
    """Free device memory (CUDA) or the RAM that can be had without swapping (the CPU, and Apple's
    MPS, whose GPU shares the RAM)."""
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free)
    return available_memory()


def default_budget(device: torch.device) -> int:
    """The automatic ``--max-memory``: a share of what is free when the run starts."""
    share = CUDA_SHARE if device.type == "cuda" else CPU_SHARE
    return int(free_memory(device) * share)


def _widths(model: nn.Module) -> tuple[tuple[int, ...], int, int]:
    """U-Net, feature and synthesis widths read off the modules; the default config's where a part
    is not the standard one (e.g. a test's analytic flow)."""
    default = ModelConfig()
    encoders = getattr(getattr(model, "flow", None), "encoders", None)
    unet = tuple(block[0].out_channels for block in encoders) if encoders else default.unet_channels
    conv = getattr(getattr(model, "features", None), "conv", None)
    features = conv.out_channels if isinstance(conv, nn.Conv2d) else default.feature_channels
    layers = getattr(getattr(model, "synthesis", None), "layers", None)
    synthesis = layers[0].out_channels if layers is not None else default.synthesis_channels
    return unet, features, synthesis


def bytes_per_pixel(model: nn.Module, flow_scale: float, dtype: torch.dtype) -> float:
    """Peak working memory of one forward pass per pixel of one pair, from the network's widths.

    The peak is the larger of two phases (counted in values per pixel):
    flow — both feature maps held (2F) and the images (6), while the finest decoder level of the
    U-Net holds its upsampled input, the concatenation, two convolution outputs and oneDNN's
    reordered copy (3·c1 + 4·c0 + 13), at 1/n² of the pixels (n = the U-Net's shrink, see
    ``Interpolator.flow_shrink``); synthesis — the held
    features, the warped and blended features and the concatenation (5F) and two 9×9 outputs
    with a reorder (3S). Measured on the CPU in float32 (peak RSS growth of one forward pass at
    512×1024, torch 2.14, see README): default config 1930 B/px (estimate 2084 before the safety
    factor); at flow_scale 0.5: 2011 (2084); 0.25: 1893 (2084); feature/synthesis width 32: 1546
    (1560); TINY (8,16,16)/8/8: 471 (460); U-Net (64,128,128) with 16/16: 2424 (2764).
    Under fp16/bf16 autocast activations take 2 bytes but warping runs in float32 (the F
    warped values); that part is derived, not measured. A DIS flow prior adds its float32 flows,
    confidences, splatting sums and the U-Net's 11 extra input planes (counted as 44 values; the
    compact shipped config measured +172 B/px: 894 without the prior, 1066 with it). A symmetric
    flow module runs the U-Net on a batch of two (both frame orders), which doubles its part
    (derived, not measured). With k ``flow_scales`` the U-Net runs on one scale after the other, the
    first the largest, so its peak is unchanged; each scale's flows, mask and error (6) and two
    warped frames (6) are held at the U-Net's size until they are fused there. Measured for the
    shipped vfi-fast (k = 3, symmetric, flow_downsample 2; float32, 512×1024): 539–561 B/px, estimate
    750 (629 for the same network at one scale, estimate 724).

    An IFNet flow module (:mod:`vfi_cli.model.ifnet`) holds at full resolution its flows, mask and
    warped frames (11, float32 in any precision) and, per frame order, its finest block's input
    and a copy (2·12) and its upsampled heads (5); its activations lie at 1/4 to 1/16 of the
    pixels (0.5625·width per order). Measured for width 90, symmetric, 8/8 features and synthesis
    (512×1024, two runs): float32 508–545 B/px (estimate 845), bf16 autocast 447–502 (623).
    """
    if isinstance(getattr(model, "flow", None), IFNet):
        return _ifnet_bytes_per_pixel(model, dtype)
    unet, features, synthesis = _widths(model)
    c0, c1 = unet[0], unet[1]
    held = 2 * features + 6
    prior = 44 if getattr(model, "flow_prior", "none") != "none" else 0
    shrink = model.flow_shrink(flow_scale) if hasattr(model, "flow_shrink") else round(1 / flow_scale)
    orders = 2 if getattr(model, "symmetric_flow", False) else 1
    scales = getattr(model, "flow_scales", 1)
    fusion = (6 * scales + 6) / shrink**2 if scales > 1 else 0
    flow_phase = held + fusion + orders * (3 * c1 + 4 * c0 + 13 + prior) / shrink**2
    synthesis_phase = 5 * features + 3 * synthesis + 9
    values = max(flow_phase, synthesis_phase)
    if dtype == torch.float32:
        return SAFETY * 4 * values
    return SAFETY * (2 * values + 4 * 2 * features)


def _ifnet_bytes_per_pixel(model: nn.Module, dtype: torch.dtype) -> float:
    """:func:`bytes_per_pixel` of a model whose flow module is an IFNet (see there)."""
    _, features, synthesis = _widths(model)
    orders = 2 if model.flow.symmetric else 1
    width = model.flow.block0.convblock0[0][0].out_channels
    activation = 4 if dtype == torch.float32 else 2
    flow_phase = 4 * (2 * features + 6 + 11 + orders * 29) + activation * orders * 0.5625 * width
    synthesis_phase = activation * (5 * features + 3 * synthesis + 9) + (0 if dtype == torch.float32 else 4 * 2 * features)
    return SAFETY * max(flow_phase, synthesis_phase)


def cache_bytes_per_pixel(model: nn.Module, dtype: torch.dtype) -> float:
    """What a prepared whole frame keeps: its float32 image and its features (in the autocast dtype)."""
    features = _widths(model)[1]
    return 12 + (4 if dtype == torch.float32 else 2) * features


def default_overlap(height: int, width: int) -> int:
    """128 pixels up to 1080p, then 1/15 of the long side (256 at 4K, 512 at 8K), a multiple of 16:
    motion between frames, and so the context a tile needs, grows with the resolution."""
    return max(128, 16 * math.ceil(max(height, width) / 15 / 16))


@dataclass(frozen=True)
class TileGrid:
    """Tiles of ``tile_height``×``tile_width`` at multiples of the network's stride over a padded frame.

    Starting on the stride keeps the U-Net's pooling grid that of the whole frame, so with
    enough context a tile computes exactly what the whole frame would.
    """

    height: int
    width: int
    tile_height: int
    tile_width: int
    overlap: int
    starts_y: tuple[int, ...]
    starts_x: tuple[int, ...]

    def __len__(self) -> int:
        return len(self.starts_y) * len(self.starts_x)

    def windows(self, device: torch.device) -> Iterator[tuple[slice, slice, torch.Tensor]]:
        """(rows, columns, weight [1,1,h,w]) of every tile; the weights sum to 1 at every pixel."""
        weights_y = _axis_weights(self.starts_y, self.tile_height, self.height, self.overlap, device)
        weights_x = _axis_weights(self.starts_x, self.tile_width, self.width, self.overlap, device)
        for y, wy in zip(self.starts_y, weights_y):
            for x, wx in zip(self.starts_x, weights_x):
                weight = (wy[:, None] * wx[None, :]).view(1, 1, self.tile_height, self.tile_width)
                yield slice(y, y + self.tile_height), slice(x, x + self.tile_width), weight


def _axis_starts(length: int, tile: int, overlap: int, multiple: int) -> tuple[int, ...]:
    """Evenly spread starts, multiples of ``multiple``, neighbours sharing at least ``overlap``."""
    if tile >= length:
        return (0,)
    step = (tile - overlap) // multiple * multiple
    if step < multiple:
        raise ValueError(f"tile {tile} leaves no room beyond the overlap {overlap}")
    count = -(-(length - tile) // step) + 1
    return tuple((i * (length - tile) // (count - 1)) // multiple * multiple for i in range(count))


def _axis_weights(starts: tuple[int, ...], tile: int, length: int, overlap: int, device: torch.device) -> list[torch.Tensor]:
    """1-D feather weights per tile: 0 in the outer quarter of the band, a linear ramp over the middle
    half, 1 inside and at the frame's own borders; normalised so that they sum to 1."""
    margin, ramp = overlap // 4, max(overlap // 2, 1)
    raw = []
    for index, start in enumerate(starts):
        position = torch.arange(tile, device=device, dtype=torch.float32) + 0.5
        weight = torch.ones(tile, device=device)
        if index > 0:
            weight = torch.minimum(weight, ((position - margin) / ramp).clamp(0, 1))
        if index < len(starts) - 1:
            weight = torch.minimum(weight, ((tile - margin - position) / ramp).clamp(0, 1))
        raw.append(weight)
    total = torch.zeros(length, device=device)
    for start, weight in zip(starts, raw):
        total[start : start + tile] += weight
    return [weight / total[start : start + tile] for start, weight in zip(starts, raw)]


@dataclass(frozen=True)
class MemoryPlan:
    """How frames go through the model: whole or in ``tiles``, ``pairs_per_call`` pairs per call."""

    budget: int
    peak: int  # estimated bytes at the peak
    pairs_per_call: int
    tiles: TileGrid | None = None

    def describe(self) -> str:
        if self.tiles is None:
            how = f"whole frames, {self.pairs_per_call} pair(s) per call"
        elif len(self.tiles) == 1:
            how = "whole frames, 1 pair per call, features not cached"
        else:
            grid = self.tiles
            how = (f"{len(grid.starts_x)}x{len(grid.starts_y)} tiles of {grid.tile_width}x{grid.tile_height} "
                   f"overlapping {grid.overlap} px")
        return f"{how}; estimated peak {format_memory(self.peak)} of a {format_memory(self.budget)} budget"


def plan_memory(
    height: int,
    width: int,
    multiple: int,
    *,
    model_bpp: float,
    cache_bpp: float,
    batch_size: int,
    budget: int,
    tile: int | None = None,
    overlap: int | None = None,
) -> MemoryPlan:
    """Choose whole frames or tiles for padded frames of ``height``×``width`` (multiples of ``multiple``).

    ``model_bpp`` is one pair's working memory per pixel; ``cache_bpp`` what each prepared whole
    frame keeps (image and features); ``batch_size`` + 1 frames are prepared at once. Tiles keep
    only the float32 image per frame (features are recomputed per tile: a whole frame's would cost
    ``cache_bpp``, 2 GB per 4K frame) plus one float32 output being assembled, and each tile pixel
    costs ``BLEND_BYTES`` more. A given ``tile`` side forces tiling.
    """
    if height % multiple or width % multiple:
        raise ValueError(f"padded size {height}x{width} is not a multiple of {multiple}")
    pixels = height * width
    frames = batch_size + 1
    if tile is None:
        whole_cache = frames * cache_bpp * pixels
        fit = int((budget - whole_cache) // (model_bpp * pixels)) if budget > whole_cache else 0
        if fit >= 1:
            pairs = min(batch_size, fit)
            return MemoryPlan(budget, int(whole_cache + pairs * model_bpp * pixels), pairs)
    if overlap is None:
        overlap = default_overlap(height, width)
    if overlap < 4:
        raise VfiError(f"tile overlap {overlap} is too small (at least 4 pixels)")
    tiled_cache = (frames * 12 + 12) * pixels
    model_bpp += BLEND_BYTES
    if tile is None:
        room = budget - tiled_cache
        side = math.isqrt(int(room / model_bpp)) // multiple * multiple if room > 0 else 0
        short, long_ = sorted((height, width))
        if side >= short:  # a strip as tall (or as wide) as the frame
            span = int(room / model_bpp / short) // multiple * multiple
            tile_height, tile_width = (height, span) if short == height else (span, width)
        else:
            tile_height = tile_width = side
    else:
        side = max(tile // multiple, 1) * multiple
        tile_height, tile_width = min(side, height), min(side, width)
    tile_height, tile_width = min(tile_height, height), min(tile_width, width)
    needed = overlap + multiple
    too_small = [s for s, full in ((tile_height, height), (tile_width, width)) if s < full and s - overlap < multiple]
    if too_small and tile is not None:
        raise VfiError(f"tiles of {tile} px are too small for an overlap of {overlap} px: use --tile {needed} or more")
    if too_small:
        raise VfiError(
            f"a memory budget of {format_memory(budget)} allows tiles of only {tile_width}x{tile_height} px, too small for "
            f"an overlap of {overlap} px (tiles need at least {needed} px): raise --max-memory, lower --tile-overlap, "
            "or lower --batch-size"
        )
    grid = TileGrid(
        height=height, width=width, tile_height=tile_height, tile_width=tile_width, overlap=overlap,
        starts_y=_axis_starts(height, tile_height, overlap, multiple),
        starts_x=_axis_starts(width, tile_width, overlap, multiple),
    )
    return MemoryPlan(budget, int(tiled_cache + model_bpp * tile_height * tile_width), 1, grid)
