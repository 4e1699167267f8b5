"""Growing a trained flow U-Net into a wider one without changing what it computes.

Distilled students trail their teacher as much on their own training crops as on held-out ones
(large motion: 1.2–1.8 dB), so they lack capacity rather than data. Widening the deep, cheap
levels of the U-Net gives that capacity at almost no cost per frame (measured for ``vfi-fast``,
32-48-64-96-128 → 32-48-96-192-256: 1,004 → 1,016 ms per 1080p frame in OpenVINO), and keeping
the function means training resumes from the narrow model's quality instead of from scratch.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from vfi_cli.config import ModelConfig
from vfi_cli.model.flow import FlowUNet

# The fresh channels' incoming weights: random (so that they differ and learn different things),
# small beside the trained ones.
NEW_CHANNEL_SCALE = 0.1


def can_widen(narrow: ModelConfig, wide: ModelConfig) -> bool:
    """Whether ``wide`` is ``narrow`` with a U-Net at least as wide at every level, and no other change."""
    same_depth = len(narrow.unet_channels) == len(wide.unet_channels)
    wider = same_depth and all(w >= n for n, w in zip(narrow.unet_channels, wide.unet_channels))
    return wider and dataclasses.replace(narrow, unet_channels=wide.unet_channels) == wide


@torch.no_grad()
def widen_flow_unet(narrow: FlowUNet, wide: FlowUNet, generator: torch.Generator | None = None) -> None:
    """Copy ``narrow`` into the wider ``wide`` so that both compute the same flows and mask.

    Each trained channel keeps its place and weights. The new channels get small random weights
    from the old channels, and every layer reads them with weight zero. So they change no output
    at first, yet they have gradients and learn (Net2Net's function-preserving growth, with zero
    instead of copied fan-out so that no symmetry needs breaking).
    """
    narrow_widths = [block[0].out_channels for block in narrow.encoders]
    wide_widths = [block[0].out_channels for block in wide.encoders]
    inputs = list(range(narrow.encoders[0][0].in_channels))
    for level, (old, new) in enumerate(zip(narrow.encoders, wide.encoders)):
        sources = inputs if level == 0 else list(range(narrow_widths[level - 1]))
        _copy_conv(old[0], new[0], sources, generator)
        _copy_conv(old[2], new[2], list(range(narrow_widths[level])), generator)
    levels = list(reversed(range(len(narrow_widths) - 1)))
    for level, old, new in zip(levels, narrow.decoders, wide.decoders):
        # A decoder reads cat(the deeper level upsampled, this level's skip).
        deeper, skip = range(narrow_widths[level + 1]), range(narrow_widths[level])
        _copy_conv(old[0], new[0], [*deeper, *(wide_widths[level + 1] + c for c in skip)], generator)
        _copy_conv(old[2], new[2], list(range(narrow_widths[level])), generator)
    _copy_conv(narrow.head, wide.head, list(range(narrow_widths[0])), generator)


def _copy_conv(old: nn.Conv2d, new: nn.Conv2d, sources: list[int], generator: torch.Generator | None) -> None:
    """``old`` into ``new``: old input channel j is new input ``sources[j]``, old outputs are the
    first of new's. New outputs read the old inputs with small random weights; nothing reads a new
    input (weight zero)."""
    if len(sources) != old.in_channels or old.out_channels > new.out_channels:
        raise ValueError(f"cannot widen a {old.in_channels}->{old.out_channels} convolution into {new.in_channels}->{new.out_channels}")
    weight = torch.zeros_like(new.weight)
    fresh = torch.randn(weight.shape, generator=generator, dtype=weight.dtype) * float(old.weight.std()) * NEW_CHANNEL_SCALE
    weight[old.out_channels :, sources] = fresh[old.out_channels :, sources]
    weight[: old.out_channels, sources] = old.weight
    new.weight.copy_(weight)
    bias = torch.zeros_like(new.bias)
    bias[: old.out_channels] = old.bias
    new.bias.copy_(bias)
