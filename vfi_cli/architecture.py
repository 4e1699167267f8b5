"""The architecture of the interpolation network as data: :class:`ModelConfig`, checked for types and
sizes before anything is built (a config read from a weights file, a card or a run's config cannot
make the network allocate absurd memory).

Standard library only, like :mod:`vfi_cli.config`, which re-exports it beside the other options.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

FLOW_PRIORS = ("none", "dis", "coarse")
FLOW_MODULES = ("unet", "ifnet")  # the paper's U-Net, or RIFE's coarse-to-fine IFNet (vfi_cli.model.ifnet)
IFNET_MULTIPLE = 16  # IFNet's coarsest block works at 1/16 of the frame
COARSE_SHRINK = 2  # the coarse U-Net (flow_prior "coarse") sees the U-Net's frames shrunk this many times more
MAX_FLOW_SCALES = 4  # flow_scales: the coarsest of 4 scales sees frames shrunk 8 times more than the first

# Bounds on what a config may describe (the default network: 6 levels, 256 channels at most, 4.8M parameters).
MAX_LEVELS = 8
MAX_CHANNELS = 2048
MAX_KERNEL = 15
MAX_PARAMETERS = 200_000_000


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _check_int(name: str, value: Any, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be a whole number, got {_shown(value)}")
    if not low <= value <= high:
        raise ValueError(f"{name} must be from {low} to {high}, got {value}")


def _conv(inputs: int, outputs: int, kernel: int) -> int:
    return inputs * outputs * kernel * kernel + outputs


def _unet_parameters(widths: tuple[int, ...], inputs: int) -> int:
    """A flow U-Net's parameters (:class:`~vfi_cli.model.flow.FlowUNet`): two 3×3 convolutions per
    level down and up, and a 5-channel head."""
    total = 0
    for width in widths:
        total += _conv(inputs, width, 3) + _conv(width, width, 3)
        inputs = width
    for level in range(len(widths) - 1):
        total += _conv(widths[level + 1] + widths[level], widths[level], 3) + _conv(widths[level], widths[level], 3)
    return total + _conv(widths[0], 5, 3)


def _ifnet_parameters(width: int) -> int:
    """An IFNet's parameters (:class:`~vfi_cli.model.ifnet.IFNet` with a time input): per block, two
    strided 3×3 convolutions in, 4 residual pairs, and two heads of two 4×4 transposed convolutions;
    each convolution but the heads' last ones has a PReLU (a slope per channel)."""
    half = width // 2
    block = _conv(12, half, 3) + half + _conv(half, width, 3) + width + 8 * (_conv(width, width, 3) + width)
    block += 2 * (_conv(width, half, 4) + half) + _conv(half, 4, 4) + _conv(half, 1, 4)
    return 3 * block


@dataclass(frozen=True)
class ModelConfig:
    """Shape of the interpolation network (paper §3.1–3.2).

    ``flow_module`` "unet" is the paper's flow U-Net, configured by the fields below; "ifnet" is
    RIFE's IFNet instead (:mod:`vfi_cli.model.ifnet`; a deviation from the paper: three blocks of
    ``ifnet_width`` channels refine the flows coarse to fine on frames warped by the flows so far,
    working at 1/16 to 1/4 of the frame, with a time input). It takes none of the U-Net's options
    (prior, downsampling, flow scales); ``symmetric_flow`` runs each of its blocks on both orders.
    ``unet_channels`` lists the width of each U-Net level, finest first; each level after the
    first halves the resolution, so inputs must be padded to ``stride`` = 2**(levels-1).
    ``flow_prior`` "dis" feeds the U-Net a classical DIS optical-flow estimate to correct
    (:mod:`vfi_cli.model.prior`, an addition to the paper); "coarse" a learned one: a second U-Net
    of the same widths estimates the flows on frames shrunk twice more, and the U-Net corrects them
    after warping the frames by them, coarse to fine as RIFE and PWC-Net estimate flow (a plain
    U-Net regresses large motions short: distilled from RIFE it predicted a half to a third of the
    teacher's flow on moving footage); "none" is the paper's network.
    ``flow_downsample`` n runs the U-Net on frames shrunk n times and upsamples its flows and mask
    (as RIFE estimates flow coarse): the U-Net's cost falls by n², warping and synthesis stay at
    full resolution. The paper's network is n = 1.
    ``symmetric_flow`` runs the flow module on (I1, I2, t) and on (I2, I1, 1−t) in one batch and
    averages the two estimates of the same flows (a test-time ensemble built into the network, as
    RIFE's ensemble option): twice the flow module's cost, the same parameters. Switched on for a
    distilled student before any training with it: +0.11 dB mean on 7 dev hold-out clips (every
    triplet), from 0.0 (carphone) to +0.24 (box).
    ``flow_scales`` k > 1 also estimates the flows on frames shrunk 2, 4 … 2^(k−1) times more, with
    the same U-Net, and fuses the k estimates pixel by pixel, each weighted by how well the two
    frames warped by it agree around that pixel (:func:`~vfi_cli.model.network.fuse_by_agreement`):
    a U-Net sees a large motion as a small one on smaller frames, and a fine one only on the larger.
    No parameters are added; it needs no ground truth, so it runs at inference. It cannot be
    combined with the "dis" prior, computed at one scale outside the network.
    """

    unet_channels: tuple[int, ...] = (32, 64, 96, 128, 192, 256)
    feature_channels: int = 64
    feature_kernel: int = 7
    synthesis_channels: int = 64
    synthesis_kernel: int = 9
    flow_prior: str = "none"
    flow_downsample: int = 1
    symmetric_flow: bool = False
    flow_scales: int = 1
    flow_module: str = "unet"
    ifnet_width: int = 90

    def __post_init__(self) -> None:
        """Types and sizes are checked before anything is built: a config read from a file (weights
        metadata, a card, a run's config) cannot make the network allocate absurd memory."""
        if isinstance(self.unet_channels, (str, bytes)) or not isinstance(self.unet_channels, (list, tuple)):
            raise ValueError(f"unet_channels must be a list of whole numbers, got {_shown(self.unet_channels)}")
        if not 2 <= len(self.unet_channels) <= MAX_LEVELS:
            raise ValueError(f"unet_channels needs 2 to {MAX_LEVELS} levels, got {len(self.unet_channels)}")
        for width in self.unet_channels:
            _check_int("each unet_channels entry", width, 1, MAX_CHANNELS)
        object.__setattr__(self, "unet_channels", tuple(self.unet_channels))
        for name in ("feature_channels", "synthesis_channels"):
            _check_int(name, getattr(self, name), 1, MAX_CHANNELS)
        for name in ("feature_kernel", "synthesis_kernel"):
            _check_int(name, getattr(self, name), 1, MAX_KERNEL)
            if getattr(self, name) % 2 != 1:
                raise ValueError(f"{name} must be odd so that padding keeps the size")
        if isinstance(self.flow_downsample, bool) or not isinstance(self.flow_downsample, int) or not 1 <= self.flow_downsample <= 8:
            raise ValueError(f"flow_downsample must be a whole number from 1 to 8, got {_shown(self.flow_downsample)}")
        if not isinstance(self.flow_prior, str) or self.flow_prior not in FLOW_PRIORS:
            raise ValueError(f"flow_prior must be one of {FLOW_PRIORS}, got {_shown(self.flow_prior)}")
        if not isinstance(self.symmetric_flow, bool):
            raise ValueError(f"symmetric_flow must be true or false, got {_shown(self.symmetric_flow)}")
        _check_int("flow_scales", self.flow_scales, 1, MAX_FLOW_SCALES)
        if self.flow_scales > 1 and self.flow_prior == "dis":
            raise ValueError('flow_scales above 1 needs flow_prior "none" or "coarse": the DIS prior is computed at one scale')
        if not isinstance(self.flow_module, str) or self.flow_module not in FLOW_MODULES:
            raise ValueError(f"flow_module must be one of {FLOW_MODULES}, got {_shown(self.flow_module)}")
        _check_int("ifnet_width", self.ifnet_width, 2, MAX_CHANNELS)
        if self.flow_module == "ifnet" and (self.flow_prior != "none" or self.flow_downsample != 1 or self.flow_scales != 1):
            raise ValueError('flow_module "ifnet" estimates flow coarse to fine itself: it takes flow_prior "none", flow_downsample 1'
                             " and flow_scales 1")
        if self.parameter_count() > MAX_PARAMETERS:
            raise ValueError(f"the network would have {self.parameter_count():,d} parameters, more than the {MAX_PARAMETERS:,d} "
                             "vfi builds")

    def parameter_count(self) -> int:
        """The network's parameter count, from the config alone (nothing is built)."""
        if self.flow_module == "ifnet":
            total = _ifnet_parameters(self.ifnet_width)
        else:
            total = _unet_parameters(self.unet_channels, 7 + (11 if self.flow_prior != "none" else 0))  # see FlowUNet
        if self.flow_prior == "coarse":
            total += _unet_parameters(self.unet_channels, 7)
        k, s = self.synthesis_kernel, self.synthesis_channels
        total += _conv(3, self.feature_channels, self.feature_kernel)
        return total + _conv(3 + self.feature_channels, s, k) + _conv(s, s, k) + _conv(s, 3, k)

    @property
    def stride(self) -> int:
        """The factor the flow module's frame sides must be a multiple of."""
        return IFNET_MULTIPLE if self.flow_module == "ifnet" else 2 ** (len(self.unet_channels) - 1)

    @property
    def multiple(self) -> int:
        """The factor full frame sides must be a multiple of (at flow scale 1)."""
        return self.stride * self.flow_downsample * (COARSE_SHRINK if self.flow_prior == "coarse" else 1) * 2 ** (self.flow_scales - 1)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["unet_channels"] = list(self.unet_channels)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        """A config from its JSON form; ValueError names what is wrong (type, unknown key, size)."""
        if not isinstance(data, dict):
            raise ValueError(f"a model config must be a JSON object, got {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown model config keys: {sorted(unknown)}")
        return cls(**data)
