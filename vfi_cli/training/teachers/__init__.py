"""Flow teachers: frozen sources of flows and masks that the flow module is distilled from.

A teacher is not part of the shipped model (a deviation from the paper, recorded on the card): it
runs once per training triplet, on the whole frame, and its output is cached on disk
(:mod:`.cache`, which also flips and reverses it with its item). Three kinds:

- ``dis``: classical DIS optical flow from the true middle frame (:mod:`.dis`), with a confidence;
- ``rife:PATH``: RIFE HDv3's IFNet (:mod:`.rife`), for t = 0.5 only;
- ``vfi:WEIGHTS``: any vfi weights file, at any t.

Network teachers return a :data:`DISTILL_CHANNELS`-channel float32 array per triplet: flow t→first
(2), flow t→last (2), mask (1), and a weight per flow and for the mask that says how well the
teacher's own output reconstructs the true middle frame there (IFRNet's task-oriented flow
distillation): the student is taught only where the teacher is right.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from vfi_cli.config import TEACHER_KINDS
from vfi_cli.datasets.images import image_tensor
from vfi_cli.errors import VfiError

DISTILL_CHANNELS = 8  # f1 (2), f2 (2), mask, weight of f1, weight of f2, weight of the mask
ERROR_SCALE = 0.05  # a mean absolute error (0–1 scale) of this gives weight 1/e


@dataclass(frozen=True)
class TeacherSpec:
    """``--teacher KIND[:PATH]``."""

    kind: str
    path: Path | None = None

    @classmethod
    def parse(cls, text: str) -> TeacherSpec:
        kind, _, path = text.partition(":")
        if kind not in TEACHER_KINDS:
            raise VfiError(f"unknown teacher {kind!r} (use dis, rife:PATH or vfi:WEIGHTS)")
        if kind == "dis":
            if path:
                raise VfiError("the dis teacher takes no path")
            return cls("dis")
        if not path:
            raise VfiError(f"the {kind} teacher needs a weights file: --teacher {kind}:PATH")
        if not Path(path).is_file():
            raise VfiError(f"teacher weights not found: {path}")
        return cls(kind, Path(path))

    def check(self) -> None:
        """Read and check a vfi teacher's weights (architecture, values) before anything is built:
        the network itself is built only when a video triplet first needs it."""
        if self.kind == "vfi":
            from vfi_cli.model.weights import read_weights

            read_weights(self.path)  # type: ignore[arg-type]


class NetworkTeacher(Protocol):
    """What the data pipeline asks of a network teacher."""

    def applies(self, t: float) -> bool:
        """Whether the teacher can teach this time (RIFE HDv3: 0.5 only)."""

    def __call__(self, first: np.ndarray, middle: np.ndarray, last: np.ndarray, t: float) -> np.ndarray:
        """uint8 RGB frames [H,W,3] → float32 [DISTILL_CHANNELS,H,W]."""


def _to_tensor(rgb: np.ndarray) -> torch.Tensor:
    return image_tensor(rgb)[None]


def distillation_target(
    flow1: torch.Tensor, flow2: torch.Tensor, mask: torch.Tensor, first: torch.Tensor, last: torch.Tensor, middle: torch.Tensor
) -> np.ndarray:
    """Pack a teacher's flows and mask with weights from how well each reconstructs ``middle``.

    All tensors are [1,C,H,W]; frames in [0,1]. A flow's weight is exp(−e/σ) with e the per-pixel
    mean absolute error of its warped input against the true frame; the mask's uses the blend.
    """
    from vfi_cli.model.warp import backward_warp

    warped1, warped2 = backward_warp(first, flow1), backward_warp(last, flow2)
    blend = mask * warped1 + (1 - mask) * warped2
    weights = [torch.exp(-(x - middle).abs().mean(dim=1, keepdim=True) / ERROR_SCALE) for x in (warped1, warped2, blend)]
    return torch.cat([flow1, flow2, mask, *weights], dim=1)[0].float().cpu().numpy()


class RifeTeacher:
    """RIFE HDv3 (IFNet) at t = 0.5, on ``device``."""

    def __init__(self, path: Path, device: torch.device | str = "cpu") -> None:
        from vfi_cli.training.teachers.rife import load_ifnet

        self.device = torch.device(device)
        self.network = load_ifnet(path).to(self.device)

    def applies(self, t: float) -> bool:
        return abs(t - 0.5) < 1e-6

    def __call__(self, first: np.ndarray, middle: np.ndarray, last: np.ndarray, t: float) -> np.ndarray:
        from vfi_cli.training.teachers.rife import ifnet_interpolate

        if not self.applies(t):
            raise ValueError(f"RIFE HDv3 teaches t = 0.5 only, not {t}")
        image1, target, image2 = (_to_tensor(x).to(self.device) for x in (first, middle, last))
        flow1, flow2, mask, _ = ifnet_interpolate(self.network, image1, image2)
        return distillation_target(flow1, flow2, mask, image1, image2, target)


class VfiTeacher:
    """A vfi weights file (any architecture it describes, the DIS prior included), at any t, on ``device``."""

    def __init__(self, path: Path, device: torch.device | str = "cpu") -> None:
        from vfi_cli.model.weights import load_weights

        self.device = torch.device(device)
        self.model, _ = load_weights(path, self.device)
        self.model.eval().requires_grad_(False)

    def applies(self, t: float) -> bool:
        return 0 < t < 1

    @torch.no_grad()
    def __call__(self, first: np.ndarray, middle: np.ndarray, last: np.ndarray, t: float) -> np.ndarray:
        from vfi_cli.model.padding import Padder

        image1, target, image2 = (_to_tensor(x).to(self.device) for x in (first, middle, last))
        padder = Padder(image1.shape[-2], image1.shape[-1], self.model.multiple())
        out = self.model(padder.pad(image1), padder.pad(image2), torch.tensor([float(t)], device=self.device))
        flow1, flow2, mask = (padder.unpad(x).float() for x in (out.flow1, out.flow2, out.mask))
        return distillation_target(flow1, flow2, mask, image1, image2, target)


def build_network_teacher(spec: TeacherSpec, device: torch.device | str = "cpu") -> NetworkTeacher:
    """The frozen teacher network of ``spec`` on ``device`` (``dis`` is computed in :mod:`.dis`)."""
    if spec.kind == "rife":
        return RifeTeacher(spec.path, device)  # type: ignore[arg-type]
    if spec.kind == "vfi":
        return VfiTeacher(spec.path, device)  # type: ignore[arg-type]
    raise ValueError(f"{spec.kind} is not a network teacher")
