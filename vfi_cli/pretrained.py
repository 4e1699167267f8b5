"""The one resolver for third-party pretrained weights: offline first, downloads only on request.

Looked up in this order: a path the user gives, the torch hub cache (``$TORCH_HOME/hub/checkpoints``,
where torchvision keeps what it downloads), and only with ``allow_download`` the publisher's URL.
Files are read on the CPU without pickle: ``.safetensors`` with safetensors, anything else with
``torch.load(weights_only=True)``, which refuses all but tensors and plain containers.
Nothing happens at import time.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from vfi_cli.errors import VfiError, first_line

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class Pretrained:
    """A published checkpoint: its name in messages, its file pattern in the torch cache, its URL."""

    name: str
    cache_pattern: str
    url: str

    @property
    def filename(self) -> str:
        return self.url.rsplit("/", 1)[-1]

    def hint(self, option: str) -> str:
        """What a user can do when no weights are at hand (for messages)."""
        return (f"pass {option} FILE, put {self.filename} (from {self.url}) in {cache_dir()}, "
                "or allow the download with --allow-download")


RESNET18 = Pretrained("ResNet-18", "resnet18-*.pth", "https://download.pytorch.org/models/resnet18-f37072fd.pth")
VGG16 = Pretrained("VGG-16", "vgg16-*.pth", "https://download.pytorch.org/models/vgg16-397923af.pth")
MASKRCNN = Pretrained(
    "Mask R-CNN", "maskrcnn_resnet50_fpn_coco-*.pth", "https://download.pytorch.org/models/maskrcnn_resnet50_fpn_coco-bf2d0c1e.pth"
)


def cache_dir() -> Path:
    """torchvision's download folder in the torch hub cache (it may not exist)."""
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints"


def cached_file(spec: Pretrained) -> Path | None:
    """The first file in the torch cache that matches ``spec``, if any."""
    folder = cache_dir()
    found = sorted(folder.glob(spec.cache_pattern)) if folder.is_dir() else []
    return found[0] if found else None


def load_pretrained(
    spec: Pretrained, path: Path | str | None = None, allow_download: bool = False
) -> tuple[dict[str, torch.Tensor], str] | None:
    """``spec``'s state dict and where it came from (a path or the URL).

    Args:
        spec: which checkpoint.
        path: a local file to use instead of the cache; it must exist.
        allow_download: fetch from ``spec.url`` (into the cache) when neither gives a file.

    Returns:
        (state dict on the CPU, origin), or None when no file is at hand and downloading is not allowed:
        the caller decides whether that is an error or calls for a fallback.

    Raises:
        VfiError: ``path`` does not exist, or the file found cannot be read as a state dict.
    """
    import torch

    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise VfiError(f"{spec.name} weights not found: {path}")
    else:
        path = cached_file(spec)
    if path is None:
        if not allow_download:
            return None
        return fetch(spec.url), spec.url
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path), device="cpu"), str(path)
        return torch.load(path, map_location="cpu", weights_only=True), str(path)
    except Exception as exc:  # noqa: BLE001 - any unreadable file gets the same one-line answer
        raise VfiError(f"unreadable {spec.name} weights {path}: {first_line(exc)}") from exc


def fetch(url: str) -> dict[str, torch.Tensor]:
    """Weights downloaded into the torch hub cache and read with ``weights_only=True``: a pickle from
    the network never runs code. torchvision's own ``WeightsEnum.get_state_dict`` unpickles without
    it in this torch, so every download comes here; the sha256 prefix in torchvision's file names
    is checked. Offline, a bad hash or a refused pickle: one line each."""
    import torch

    try:
        return torch.hub.load_state_dict_from_url(url, map_location="cpu", progress=False, check_hash=True, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any failure gets the same one-line answer
        raise VfiError(f"cannot download {url}: {first_line(exc)}") from None
