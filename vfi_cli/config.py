"""Architecture configuration: the single description every model variant is built from."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

FLOW_PRIORS = ("none", "dis")


@dataclass(frozen=True)
class ModelConfig:
    """Shape of the interpolation network (paper §3.1–3.2).

    ``unet_channels`` lists the width of each U-Net level, finest first; each level after the
    first halves the resolution, so inputs must be padded to ``stride`` = 2**(levels-1).
    ``flow_prior`` "dis" feeds the U-Net a classical DIS optical-flow estimate to correct
    (:mod:`vfi_cli.model.prior`, an addition to the paper); "none" is the paper's network.
    ``flow_downsample`` n runs the U-Net on frames shrunk n times and upsamples its flows and mask
    (as RIFE estimates flow coarse): the U-Net's cost falls by n², warping and synthesis stay at
    full resolution. The paper's network is n = 1.
    """

    unet_channels: tuple[int, ...] = (32, 64, 96, 128, 192, 256)
    feature_channels: int = 64
    feature_kernel: int = 7
    synthesis_channels: int = 64
    synthesis_kernel: int = 9
    flow_prior: str = "none"
    flow_downsample: int = 1

    def __post_init__(self) -> None:
        object.__setattr__(self, "unet_channels", tuple(int(c) for c in self.unet_channels))
        if len(self.unet_channels) < 2:
            raise ValueError("unet_channels needs at least two levels")
        if any(c <= 0 for c in self.unet_channels):
            raise ValueError("unet_channels must be positive")
        for name in ("feature_channels", "synthesis_channels"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")
        if isinstance(self.flow_downsample, bool) or not isinstance(self.flow_downsample, int) or not 1 <= self.flow_downsample <= 8:
            raise ValueError(f"flow_downsample must be a whole number from 1 to 8, got {self.flow_downsample!r}")
        if self.flow_prior not in FLOW_PRIORS:
            raise ValueError(f"flow_prior must be one of {FLOW_PRIORS}, got {self.flow_prior!r}")
        for name in ("feature_kernel", "synthesis_kernel"):
            if getattr(self, name) % 2 != 1:
                raise ValueError(f"{name} must be odd so that padding keeps the size")

    @property
    def stride(self) -> int:
        """The factor both image sides must be a multiple of."""
        return 2 ** (len(self.unet_channels) - 1)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["unet_channels"] = list(self.unet_channels)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown model config keys: {sorted(unknown)}")
        return cls(**data)
