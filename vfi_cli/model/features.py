"""Conv1-shaped context features F1, F2 (as in Context-aware Synthesis), optionally from ResNet-18.

The paper extracts features with a pre-trained network. ImageNet weights cannot be downloaded
at run time, so the default is a layer of the same shape learned with the rest of the network;
``init_from_resnet18`` copies ResNet-18's conv1 (with its batch norm folded in) from a local
file or the torch hub cache, and downloads only when the caller explicitly allows it.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from vfi_cli.errors import VfiError, first_line

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
RESNET18_URL = "https://download.pytorch.org/models/resnet18-f37072fd.pth"


class FeatureExtractor(nn.Module):
    """ImageNet-normalised RGB -> k×k convolution -> ReLU, at full resolution (stride 1)."""

    def __init__(self, channels: int, kernel: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.conv = nn.Conv2d(3, channels, kernel, padding=kernel // 2)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.conv((image - self.mean) / self.std))


def resnet18_cache_file() -> Path | None:
    """The ResNet-18 ImageNet checkpoint in the torch hub cache ($TORCH_HOME), if one is there."""
    checkpoints = Path(torch.hub.get_dir()) / "checkpoints"
    found = sorted(checkpoints.glob("resnet18-*.pth")) if checkpoints.is_dir() else []
    return found[0] if found else None


def load_resnet18_state(path: Path | None = None, allow_download: bool = False) -> dict[str, torch.Tensor]:
    """ResNet-18 weights from ``path``, else the torch cache, else (only if allowed) the internet.

    ``.safetensors`` files are read without pickle; ``.pth`` files with ``weights_only=True``,
    which refuses anything but tensors.
    """
    if path is None:
        path = resnet18_cache_file()
    if path is None:
        if not allow_download:
            raise VfiError(
                "no ResNet-18 weights found: pass a local file or put resnet18-f37072fd.pth in the "
                f"torch cache ({Path(torch.hub.get_dir()) / 'checkpoints'}); downloading needs an explicit opt-in"
            )
        from vfi_cli.model.weights import fetch_state_dict

        return fetch_state_dict(RESNET18_URL)
    path = Path(path)
    if not path.is_file():
        raise VfiError(f"ResNet-18 weights not found: {path}")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path), device="cpu")
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file gets the same one-line answer
        raise VfiError(f"unreadable ResNet-18 weights {path}: {first_line(exc)}") from None


def init_from_resnet18(extractor: FeatureExtractor, state: dict[str, torch.Tensor]) -> None:
    """Copy conv1 and fold bn1 (eval-mode statistics) into the extractor's convolution."""
    missing = [k for k in ("conv1.weight", "bn1.weight", "bn1.bias", "bn1.running_mean", "bn1.running_var") if k not in state]
    if missing:
        raise VfiError(f"not a ResNet-18 state dict: missing {', '.join(missing)}")
    weight = state["conv1.weight"].float()
    if extractor.conv.weight.shape != weight.shape:
        raise VfiError(
            f"ResNet-18 conv1 is {tuple(weight.shape)}, the feature extractor is {tuple(extractor.conv.weight.shape)}: "
            "use feature_channels=64 and feature_kernel=7"
        )
    scale = state["bn1.weight"].float() / torch.sqrt(state["bn1.running_var"].float() + 1e-5)
    with torch.no_grad():
        extractor.conv.weight.copy_(weight * scale.view(-1, 1, 1, 1))
        extractor.conv.bias.copy_(state["bn1.bias"].float() - state["bn1.running_mean"].float() * scale)
