"""The objective of §3.4: the losses wired to the network's outputs and to the discriminator's inputs.

L = λ0·Lph + λ1·Lpe + λ2·Ls on both Ît and Ĩt (Eq. 7), plus the optional squared error and flow
teacher (not in the paper, decaying to zero); the discriminator sees RoIs zoomed to ``roi_size``
(instance), or whole crops (image), of the high-resolution truth (real) and of Ĩt (fake).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from vfi_cli.config import TrainConfig
from vfi_cli.model.network import InterpolatorOutput
from vfi_cli.training.losses import distillation_loss, photometric_loss, smoothness_loss, squared_error, teacher_flow_loss
from vfi_cli.training.proposals import roi_patches


def decay(start: float, steps: int, step: int) -> float:
    """Linear decay from ``start`` to 0 over ``steps`` steps."""
    return start * max(0.0, 1.0 - step / steps) if steps > 0 else 0.0


class NonFinite(Exception):
    """A loss became NaN or infinite; ``losses`` holds every term's value."""

    def __init__(self, losses: dict[str, float]) -> None:
        super().__init__(str(losses))
        self.losses = losses


class Objective:
    """The generator's loss terms and the discriminator's patches of one run (``config``)."""

    def __init__(self, config: TrainConfig, perceptual: nn.Module | None) -> None:
        self.config = config
        self.perceptual = perceptual

    def generator_losses(self, out: InterpolatorOutput, batch: dict[str, Any], step: int) -> dict[str, torch.Tensor]:
        """The weighted generator terms of one batch at training step ``step`` (the teacher's weight decays with it)."""
        w = self.config.losses
        target = batch["target"]
        # The flow stage has no Ĩt (refined is Ît) and no perceptual term: its steps teach the flows alone.
        outputs = [out.coarse.float()] if self.config.stage == "flow" else [out.coarse.float(), out.refined.float()]
        losses = {"photometric": w.photometric * sum(photometric_loss(image, target) for image in outputs)}
        if self.perceptual is not None:
            losses["perceptual"] = w.perceptual * sum(self.perceptual(image, target) for image in outputs)
        losses["smoothness"] = w.smoothness * smoothness_loss(out.flow1.float(), out.flow2.float(), out.mask.float())
        if w.mse > 0:
            losses["mse"] = w.mse * sum(squared_error(image, target) for image in outputs)
        if self.config.flow_teacher is not None:
            weight = decay(w.teacher, self.config.teacher_decay_steps, step)
            if weight > 0 and batch["teacher"].shape[1] == 5:  # DIS: flows and a confidence
                losses["teacher"] = weight * teacher_flow_loss(out.flow1.float(), out.flow2.float(), batch["teacher"])
            elif weight > 0:  # a network teacher: flows, mask and their weights
                flow_term, mask_term = distillation_loss(out.flow1.float(), out.flow2.float(), out.mask.float(), batch["teacher"],
                                                         self.config.teacher_motion_scale)
                losses["teacher"] = weight * flow_term
                losses["teacher_mask"] = decay(w.teacher_mask, self.config.teacher_decay_steps, step) * mask_term
        return losses

    def patches(self, out: InterpolatorOutput, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        """(real, fake) discriminator inputs: RoIs zoomed to roi_size (instance) or whole crops (image)."""
        if self.config.adversarial == "image":
            return batch["target"], out.refined.float()
        boxes = batch["boxes"]
        fake = roi_patches(out.refined.float(), boxes, 1.0, self.config.roi_size)
        scales = [float(s) for s in batch["hr_scale"]]
        real = roi_patches(batch["target_hr"], boxes, scales, self.config.roi_size)
        return real, fake
