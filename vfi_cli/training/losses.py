"""The training objectives of §3.4: L = λ0·Lph + λ1·Lpe + λ2·Ls (Eq. 7) + λ3·Ld + λ4·Lg (Eq. 8).

Choices the paper leaves open, and what is used here:

- Charbonnier ρ(x) = (x² + ε²)^α (Eq. 5): the paper cites Sun et al. [25] and EV-FlowNet [30]
  for it, both of which use α = 0.45, ε = 1e-3; so does this module.
- The perceptual loss (Eq. 6) uses "latent features from VGG-16" without naming the layer;
  relu4_3 (after conv4_3) is used, as Super SloMo does. VGG-16's ImageNet weights are read from a
  local file or the torch hub cache and downloaded only on request. Without them an offline
  substitute is active (a fixed Laplacian-pyramid L1, a deviation from the paper) and
  ``PerceptualLoss.source`` says so, so a run can record which loss it trained with.
- ``squared_error`` is not in the paper and is off unless ``--lambda mse=W`` asks for it. The
  losses above are ℓ1-like: where the two frames disagree (an occlusion) they settle on one
  of them, while the mean squared error that PSNR measures is lowest for their blend. A short
  last stage with it buys PSNR at a little sharpness.
- Eq. 8 as printed lost its leading minus signs; it is the usual hinge loss of SAGAN / SN-GAN:
  Ld = E[max(0, 1 − D(P))] + E[max(0, 1 + D(P̃))], Lg = −E[D(P̃)].
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from vfi_cli.errors import VfiError
from vfi_cli.model.features import IMAGENET_MEAN, IMAGENET_STD
from vfi_cli.pretrained import VGG16, load_pretrained

CHARBONNIER_EPS = 1e-3
CHARBONNIER_ALPHA = 0.45
TEACHER_EPS = 1e-6

# torchvision's vgg16().features indices of the convolutions up to conv4_3; a 2×2 max-pool
# follows the ones listed in VGG_POOL_AFTER.
VGG_CONVS = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21)
VGG_POOL_AFTER = (2, 7, 14)
VGG_LAYER = "relu4_3"
LAPLACIAN_LEVELS = 5

log = logging.getLogger(__name__)


def _check_pair(pred: torch.Tensor, target: torch.Tensor) -> None:
    """Losses compare like with like: a broadcast of mismatched shapes would train on the wrong pairs."""
    if pred.shape != target.shape:
        raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} differ")


def charbonnier(x: torch.Tensor, eps: float = CHARBONNIER_EPS, alpha: float = CHARBONNIER_ALPHA) -> torch.Tensor:
    """ρ(x) of Eq. 5, elementwise: a differentiable robust ℓ1."""
    return (x * x + eps * eps).pow(alpha)


def _dx(x: torch.Tensor) -> torch.Tensor:
    return x[..., :, 1:] - x[..., :, :-1]


def _dy(x: torch.Tensor) -> torch.Tensor:
    return x[..., 1:, :] - x[..., :-1, :]


def photometric_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Lph of Eq. 4: ρ of the colour difference plus ρ of the x and y gradient differences.

    Each term is a mean over all elements, so the loss does not grow with batch or crop size.
    Its minimum (identical images) is 3·ε^(2α) ≈ 6e-3, not 0; that constant has no gradient.
    """
    _check_pair(pred, target)
    diff = pred - target
    return charbonnier(diff).mean() + charbonnier(_dx(diff)).mean() + charbonnier(_dy(diff)).mean()


def squared_error(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared colour error: the quantity PSNR is computed from."""
    _check_pair(pred, target)
    return F.mse_loss(pred, target)


def _first_order(x: torch.Tensor) -> torch.Tensor:
    return _dx(x).abs().mean() + _dy(x).abs().mean()


def smoothness_loss(flow1: torch.Tensor, flow2: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Ls: L1 of the first-order x/y differences of f1→t, f2→t (pixels) and the blending mask b."""
    return _first_order(flow1) + _first_order(flow2) + _first_order(mask)


def teacher_flow_loss(flow1: torch.Tensor, flow2: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Confidence-weighted Charbonnier end-point error against a classical flow (not in the paper).

    ``teacher`` is [B,5,H,W]: teacher f1→t, teacher f2→t, confidence in [0,1]. The error is averaged
    over the two flows and normalised by the confidence sum, so the loss is an error in pixels
    whatever fraction of the frame the teacher trusts, and 0 where it trusts nothing.
    """
    if teacher.dim() != 4 or teacher.shape[1] != 5:
        raise ValueError(f"teacher must be [B,5,H,W], got {tuple(teacher.shape)}")
    if flow1.shape != teacher[:, :2].shape or flow2.shape != flow1.shape:
        raise ValueError(f"flows {tuple(flow1.shape)}, {tuple(flow2.shape)} do not match teacher {tuple(teacher.shape)}")
    teacher = teacher.detach().to(flow1.dtype)
    confidence = teacher[:, 4:5]
    error1 = _endpoint_charbonnier(flow1 - teacher[:, 0:2])
    error2 = _endpoint_charbonnier(flow2 - teacher[:, 2:4])
    return (confidence * (error1 + error2) / 2).sum() / (confidence.sum() + TEACHER_EPS)


def distillation_loss(
    flow1: torch.Tensor, flow2: torch.Tensor, mask: torch.Tensor, teacher: torch.Tensor, motion_scale: float = 0.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """(flow, mask) errors against a network teacher, where the teacher is right (not in the paper).

    ``teacher`` is [B,8,H,W] as :func:`vfi_cli.training.teachers.distillation_target` packs it: two
    flows, a mask and a weight for each. The flow term is the weighted Charbonnier end-point error
    in pixels and the mask term the weighted absolute error, each normalised by its weight sum, so
    both are 0 where the teacher is silent (weight 0) and neither shrinks with the share it covers.

    ``motion_scale`` > 0 multiplies each flow's weight by 1 + |teacher flow| / ``motion_scale``
    (pixels), so that the few pixels that move far are not drowned by the many that barely move.
    """
    if teacher.dim() != 4 or teacher.shape[1] != 8:
        raise ValueError(f"teacher must be [B,8,H,W], got {tuple(teacher.shape)}")
    if flow1.shape != teacher[:, :2].shape or flow2.shape != flow1.shape or mask.shape != teacher[:, 4:5].shape:
        raise ValueError(f"flows {tuple(flow1.shape)} and mask {tuple(mask.shape)} do not match teacher {tuple(teacher.shape)}")
    teacher = teacher.detach().to(flow1.dtype)
    weight1, weight2, weight_mask = teacher[:, 5:6], teacher[:, 6:7], teacher[:, 7:8]
    if motion_scale > 0:
        weight1 = weight1 * (1 + teacher[:, 0:2].norm(dim=1, keepdim=True) / motion_scale)
        weight2 = weight2 * (1 + teacher[:, 2:4].norm(dim=1, keepdim=True) / motion_scale)
    flow_error = weight1 * _endpoint_charbonnier(flow1 - teacher[:, 0:2]) + weight2 * _endpoint_charbonnier(flow2 - teacher[:, 2:4])
    flow_term = flow_error.sum() / (weight1.sum() + weight2.sum() + TEACHER_EPS)
    mask_term = (weight_mask * (mask.to(flow1.dtype) - teacher[:, 4:5]).abs()).sum() / (weight_mask.sum() + TEACHER_EPS)
    return flow_term, mask_term


def _endpoint_charbonnier(difference: torch.Tensor) -> torch.Tensor:
    """sqrt(|Δf|² + ε²) per pixel: the end-point error, smooth at 0 (where a plain norm's gradient is not)."""
    return (difference.pow(2).sum(dim=1, keepdim=True) + CHARBONNIER_EPS**2).sqrt()


def hinge_discriminator_loss(d_real: torch.Tensor, d_fake: torch.Tensor) -> torch.Tensor:
    """Ld of Eq. 8: push real scores above +1 and fake scores below −1."""
    return F.relu(1.0 - d_real).mean() + F.relu(1.0 + d_fake).mean()


def hinge_generator_loss(d_fake: torch.Tensor) -> torch.Tensor:
    """Lg of Eq. 8: raise the discriminator's score of synthesised patches."""
    return -d_fake.mean()


# ----------------------------------------------------------------------------- perceptual


def _laplacian_pyramid(image: torch.Tensor, kernel: torch.Tensor, levels: int) -> list[torch.Tensor]:
    """Band-pass levels (finest first) and the low-pass residual."""
    bands = []
    current = image
    channels = image.shape[1]
    weight = kernel.expand(channels, 1, *kernel.shape[-2:])
    for _ in range(levels - 1):
        if min(current.shape[-2:]) < 2:
            break
        blurred = F.conv2d(F.pad(current, (2, 2, 2, 2), mode="replicate"), weight, groups=channels)
        down = blurred[..., ::2, ::2]
        up = F.interpolate(down, size=current.shape[-2:], mode="bilinear", align_corners=False)
        bands.append(current - up)
        current = down
    bands.append(current)
    return bands


class PerceptualLoss(nn.Module):
    """Lpe of Eq. 6: L1 between VGG-16 relu4_3 features of prediction and ground truth.

    The network is held in non-persistent buffers: it moves with ``.to(device)``, has no
    parameters for an optimiser to find and adds nothing to a checkpoint. Without VGG-16 weights
    (``source`` starts with ``offline:``) the loss is an L1 over a 5-level Laplacian pyramid with a
    fixed binomial kernel: it compares edges and textures band by band like a feature loss does,
    but it is a deviation from the paper.
    """

    def __init__(self, weights: Path | None, allow_download: bool = False) -> None:
        super().__init__()
        loaded = load_pretrained(VGG16, weights, allow_download)
        self.uses_vgg = loaded is not None
        if loaded is None:
            binomial = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0]) / 16
            self.register_buffer("kernel", (binomial[:, None] * binomial[None, :]).view(1, 1, 5, 5), persistent=False)
            self.source = f"offline:laplacian-pyramid-l1-{LAPLACIAN_LEVELS}"
            log.warning("no VGG-16 weights (%s): the perceptual loss is %s, a deviation from the paper",
                        VGG16.hint("--vgg-weights"), self.source)
            return
        state, origin = loaded
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        for number, index in enumerate(VGG_CONVS):
            try:
                weight, bias = state[f"features.{index}.weight"], state[f"features.{index}.bias"]
            except KeyError:
                raise VfiError(f"{origin} is not a torchvision VGG-16 state dict (no features.{index})") from None
            if weight.dim() != 4 or weight.shape[0] != bias.shape[0]:
                raise VfiError(f"{origin} is not a torchvision VGG-16 state dict (features.{index} is {tuple(weight.shape)})")
            self.register_buffer(f"conv{number}_weight", weight.detach().float().clone(), persistent=False)
            self.register_buffer(f"conv{number}_bias", bias.detach().float().clone(), persistent=False)
        if self.conv9_weight.shape[0] != 512 or self.conv0_weight.shape[1] != 3:
            raise VfiError(f"{origin} is not a torchvision VGG-16 state dict (conv4_3 is {tuple(self.conv9_weight.shape)})")
        self.source = f"vgg16-{VGG_LAYER}:{origin}"
        log.info("perceptual loss: %s", self.source)

    def features(self, image: torch.Tensor) -> torch.Tensor:
        """VGG-16 relu4_3 of an RGB image in [0,1]."""
        x = (image - self.mean) / self.std
        for number, index in enumerate(VGG_CONVS):
            x = F.relu(F.conv2d(x, getattr(self, f"conv{number}_weight"), getattr(self, f"conv{number}_bias"), padding=1))
            if index in VGG_POOL_AFTER:
                x = F.max_pool2d(x, 2)
        return x

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        _check_pair(pred, target)
        if self.uses_vgg:
            with torch.no_grad():
                reference = self.features(target)
            return F.l1_loss(self.features(pred), reference)
        pred_bands = _laplacian_pyramid(pred, self.kernel, LAPLACIAN_LEVELS)
        target_bands = _laplacian_pyramid(target, self.kernel, LAPLACIAN_LEVELS)
        return sum(F.l1_loss(p, t) for p, t in zip(pred_bands, target_bands)) / len(pred_bands)
