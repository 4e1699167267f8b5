"""The interpolator: features + flow + warping + synthesis, assembled from its parts."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
import torch.nn.functional as F

from vfi_cli.architecture import COARSE_SHRINK
from vfi_cli.config import ModelConfig
from vfi_cli.model.features import FeatureExtractor
from vfi_cli.model.flow import FlowUNet
from vfi_cli.model.ifnet import IFNet
from vfi_cli.model.prior import FlowPrior, dis_prior
from vfi_cli.model.synthesis import Synthesis
from vfi_cli.model.warp import backward_warp

# The fusion of flow scales (ModelConfig.flow_scales) compares the two frames each scale's flows warp,
# at the U-Net's resolution, over a box of FUSION_WINDOW pixels there, and weights the scales by
# softmax(−error / FUSION_TEMPERATURE), the error being a mean absolute difference of RGB values in
# [0, 1]. Chosen on 8 triplets of each of the 9 dev hold-out clips with the shipped vfi-fast (distill11
# @11,000; flow_downsample 2, 3 scales): +0.16 dB over its first scale alone (box 9 or 33: +0.14;
# temperature 0.0025: +0.15, 0.01: +0.14, 0.02: +0.09). Fusing the warped frames at full resolution
# instead gained 0.03 dB more at 1.5× the time in OpenVINO; choosing the best scale per 9-pixel box
# with the ground truth, an upper bound, +0.44.
FUSION_WINDOW = 17
FUSION_TEMPERATURE = 0.005


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

    Images are float RGB in [0,1], ``[B,3,H,W]`` with H and W multiples of
    :meth:`multiple` (use :class:`~vfi_cli.model.padding.Padder`). Features can be passed in so
    that a frame shared by two neighbouring pairs is encoded once.
    """

    def __init__(
        self, flow: nn.Module, features: nn.Module, synthesis: nn.Module, stride: int, flow_prior: str = "none", flow_downsample: int = 1,
        coarse_flow: nn.Module | None = None, symmetric_flow: bool = False, flow_scales: int = 1,
    ) -> None:
        super().__init__()
        if (coarse_flow is not None) != (flow_prior == "coarse"):
            raise ValueError('a coarse flow module goes with flow_prior "coarse", and only with it')
        if flow_scales > 1 and flow_prior == "dis":
            raise ValueError('flow_scales above 1 needs flow_prior "none" or "coarse"')
        self.flow_downsample = flow_downsample
        self.coarse_flow = coarse_flow
        self.flow = flow
        self.features = features
        self.synthesis = synthesis
        self.stride = stride
        self.flow_prior = flow_prior
        self.symmetric_flow = symmetric_flow
        self.flow_scales = flow_scales

    @classmethod
    def from_config(cls, config: ModelConfig) -> Interpolator:
        if config.flow_module == "ifnet":
            flow: nn.Module = IFNet(config.ifnet_width, time_input=True, symmetric=config.symmetric_flow)
        else:
            flow = FlowUNet(config.unet_channels, use_prior=config.flow_prior != "none")
        return cls(
            flow=flow,
            features=FeatureExtractor(config.feature_channels, config.feature_kernel),
            synthesis=Synthesis(config.feature_channels, config.synthesis_channels, config.synthesis_kernel),
            stride=config.stride,
            flow_prior=config.flow_prior,
            flow_downsample=config.flow_downsample,
            coarse_flow=FlowUNet(config.unet_channels) if config.flow_prior == "coarse" else None,
            symmetric_flow=config.symmetric_flow,
            flow_scales=config.flow_scales,
        )

    def architecture(self) -> dict[str, object]:
        """Every setting besides the tensors that changes what the forward pass computes: an
        exported graph is cached under these and the tensors (``backends.weights_digest``)."""
        return {"flow_downsample": self.flow_downsample, "flow_prior": self.flow_prior, "symmetric_flow": self.symmetric_flow,
                "flow_scales": self.flow_scales}

    def multiple(self, flow_scale: float = 1.0) -> int:
        """The factor both image sides must be a multiple of: the U-Net sees frames shrunk n times
        (n = the config's ``flow_downsample`` over ``flow_scale``), which must themselves be
        multiples of ``stride``, so the full ones of n·stride (2n·stride with a coarse U-Net, whose
        frames are shrunk twice more; 2^(k−1) times more with k ``flow_scales``, whose last sees
        frames shrunk that much more)."""
        coarse = COARSE_SHRINK if self.coarse_flow is not None else 1
        return self.stride * self.flow_shrink(flow_scale) * coarse * 2 ** (self.flow_scales - 1)

    def flow_shrink(self, flow_scale: float = 1.0) -> int:
        """How many times smaller than the input the U-Net's frames are at ``flow_scale``."""
        return self.flow_downsample * flow_factor(flow_scale)

    def forward(
        self,
        image1: torch.Tensor,
        image2: torch.Tensor,
        t: torch.Tensor,
        features1: torch.Tensor | None = None,
        features2: torch.Tensor | None = None,
        flow_scale: float = 1.0,
        prior: FlowPrior | None = None,
        refine: bool = True,
    ) -> InterpolatorOutput:
        """``flow_scale`` < 1 estimates the flows on frames shrunk by that factor more than the
        config's ``flow_downsample`` (as RIFE's --scale): large motions become small for the U-Net
        and its memory falls by the square of the factor; warping and synthesis stay at full
        resolution.

        ``prior`` is the classical flow prior of a prior model as :meth:`flow_prior_of` computes
        it; None computes it here. An exported graph takes it as inputs (DIS runs outside graphs).

        ``refine=False`` stops at Ît (``refined`` is then ``coarse``): the flow stage of training
        teaches the flow U-Net alone and need not pay for the full-resolution features and synthesis."""
        factor = self.flow_shrink(flow_scale)
        self._check(image1, image2, t, self.multiple(flow_scale))
        flow1, flow2, mask = self._flow(image1, image2, t, factor, prior)
        coarse = mask * backward_warp(image1, flow1) + (1 - mask) * backward_warp(image2, flow2)
        if not refine:
            return InterpolatorOutput(flow1=flow1, flow2=flow2, mask=mask, coarse=coarse, refined=coarse)
        if features1 is None:
            features1 = self.features(image1)
        if features2 is None:
            features2 = self.features(image2)
        warped_features = mask * backward_warp(features1, flow1) + (1 - mask) * backward_warp(features2, flow2)
        refined = self.synthesis(coarse, warped_features)
        return InterpolatorOutput(flow1=flow1, flow2=flow2, mask=mask, coarse=coarse, refined=refined)

    def flow_prior_of(self, image1: torch.Tensor, image2: torch.Tensor, t: torch.Tensor, flow_scale: float = 1.0) -> FlowPrior | None:
        """The classical prior the forward pass at ``flow_scale`` computes (DIS, on the CPU, on the
        frames shrunk to the U-Net's resolution), or None for a model without one (a coarse U-Net's
        prior is computed inside the forward pass, and inside an exported graph)."""
        if self.flow_prior != "dis":
            return None
        factor = self.flow_shrink(flow_scale)
        return dis_prior(shrink(image1, factor), shrink(image2, factor), t)

    def _flow(
        self, image1: torch.Tensor, image2: torch.Tensor, t: torch.Tensor, factor: int, prior: FlowPrior | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Flows and mask at full resolution, estimated on frames shrunk ``factor`` times (the
        classical or coarse prior too, when the config asks for one and none is given).

        Area averaging and bilinear upsampling with align_corners=False agree on where a coarse
        pixel's centre lies, so a constant flow comes back exactly; flows are upsampled in float32
        and multiplied by ``factor`` (a coarse pixel spans ``factor`` full ones).

        With k ``flow_scales`` the U-Net also runs on those frames shrunk 2 … 2^(k−1) times more;
        the estimates, brought to the first scale's size, are fused there by
        :func:`fuse_by_agreement`, so warping and synthesis run once, at full size, as for one scale.
        """
        if isinstance(self.flow, IFNet):  # it shrinks the frames itself, block by block
            return self.flow(image1, image2, t, shrink=factor)
        image1, image2 = shrink(image1, factor), shrink(image2, factor)
        estimates = [self._unet_flow(image1, image2, t, prior)]
        for level in range(1, self.flow_scales):
            step = 2**level
            estimates.append(upsample_flows(*self._unet_flow(shrink(image1, step), shrink(image2, step), t), step))
        flow1, flow2, mask = fuse_by_agreement(image1, image2, estimates) if len(estimates) > 1 else estimates[0]
        return upsample_flows(flow1, flow2, mask, factor)

    def _unet_flow(
        self, image1: torch.Tensor, image2: torch.Tensor, t: torch.Tensor, prior: FlowPrior | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Flows and mask at the size of the frames given: the U-Net (with its prior, computed here
        unless given).

        A symmetric model also runs the pair reversed, (I2, I1, 1−t), in the same batch: its flows
        into I2 and I1 and its weight of I2 estimate this pair's flow2, flow1 and 1 − mask, and
        the two estimates are averaged.
        """
        if prior is None and self.flow_prior == "dis":
            prior = dis_prior(image1, image2, t)
        batch = image1.shape[0]
        if self.symmetric_flow:
            image1, image2, t = torch.cat((image1, image2)), torch.cat((image2, image1)), torch.cat((t, 1 - t))
            if prior is not None:
                prior = FlowPrior(torch.cat((prior.flow1, prior.flow2)), torch.cat((prior.flow2, prior.flow1)),
                                  torch.cat((prior.mask, 1 - prior.mask)))
        if prior is None and self.coarse_flow is not None:
            coarse = self.coarse_flow(shrink(image1, COARSE_SHRINK), shrink(image2, COARSE_SHRINK), t)
            prior = FlowPrior(*upsample_flows(*coarse, COARSE_SHRINK))
        flow1, flow2, mask = self.flow(image1, image2, t, prior)
        if self.symmetric_flow:
            flow1, flow2, mask = (flow1[:batch] + flow2[batch:]) / 2, (flow2[:batch] + flow1[batch:]) / 2, (mask[:batch] + 1 - mask[batch:]) / 2
        return flow1, flow2, mask

    def _check(self, image1: torch.Tensor, image2: torch.Tensor, t: torch.Tensor, multiple: int) -> None:
        if image1.dim() != 4 or image1.shape[1] != 3 or image1.shape != image2.shape:
            raise ValueError(f"expected two [B,3,H,W] images of one shape, got {tuple(image1.shape)} and {tuple(image2.shape)}")
        height, width = image1.shape[-2:]
        if height % multiple or width % multiple:
            raise ValueError(f"image size {height}x{width} is not a multiple of {multiple}; pad it first")
        if t.shape != (image1.shape[0],):
            raise ValueError(f"expected t of shape ({image1.shape[0]},), got {tuple(t.shape)}")


def fuse_by_agreement(
    image1: torch.Tensor, image2: torch.Tensor, estimates: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One estimate of (flow1, flow2, mask) from several of the same size as the frames: each is
    weighted, pixel by pixel, by how well the two frames warped by its flows agree around that
    pixel (:func:`consistency_weights`). Where they agree, the flows that brought them together
    are trusted; no ground truth is needed, so this runs at inference."""
    errors = [(backward_warp(image1, flow1) - backward_warp(image2, flow2)).abs().mean(1, keepdim=True) for flow1, flow2, _ in estimates]
    weights = consistency_weights(errors)
    return tuple(sum(w.to(e[i].dtype) * e[i] for w, e in zip(weights, estimates)) for i in range(3))  # type: ignore[return-value]


def consistency_weights(errors: list[torch.Tensor]) -> list[torch.Tensor]:
    """Per-pixel weights, summing to one, of k estimates from their warp errors (``[B,1,H,W]``
    each: how far apart the two warped frames are): the errors are averaged over a FUSION_WINDOW
    box, a box rather than the pixel because two wrong flows can agree on a flat patch, and the
    weights are a softmax of −error / FUSION_TEMPERATURE, in float32. The box is two 1-D passes
    (the same average, count_include_pad=False clipping it at the borders, at 2·17 additions a
    pixel instead of 17²)."""
    error = torch.cat(errors, dim=1).float()
    half = FUSION_WINDOW // 2
    error = F.avg_pool2d(error, (FUSION_WINDOW, 1), stride=1, padding=(half, 0), count_include_pad=False)
    error = F.avg_pool2d(error, (1, FUSION_WINDOW), stride=1, padding=(0, half), count_include_pad=False)
    return list(torch.softmax(-error / FUSION_TEMPERATURE, dim=1).split(1, dim=1))


def upsample_flows(flow1: torch.Tensor, flow2: torch.Tensor, mask: torch.Tensor, factor: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Flows and mask of frames shrunk ``factor`` times, at full size: bilinear, flows in float32
    and multiplied by ``factor`` (a coarse pixel spans ``factor`` full ones)."""
    if factor == 1:
        return flow1, flow2, mask

    def upsample(x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, scale_factor=factor, mode="bilinear", align_corners=False)

    return upsample(flow1.float()) * factor, upsample(flow2.float()) * factor, upsample(mask)


def shrink(image: torch.Tensor, factor: int) -> torch.Tensor:
    """``image`` averaged over ``factor``×``factor`` blocks: the U-Net's view of it."""
    return F.avg_pool2d(image, factor) if factor > 1 else image


def flow_factor(flow_scale: float) -> int:
    """The integer n of ``flow_scale`` = 1/n; other scales would make the padding inexact."""
    factor = round(1 / flow_scale) if flow_scale > 0 else 0
    if factor < 1 or abs(factor * flow_scale - 1) > 1e-9:
        raise ValueError(f"flow_scale must be 1/n for a whole n (1, 0.5, 0.25 ...), got {flow_scale}")
    return factor
