"""The eager PyTorch backend."""

from __future__ import annotations

import contextlib
from typing import Any

import torch


class TorchBackend:
    """The model in eager PyTorch, channels-last on the CPU (oneDNN's fast layout), autocast to ``dtype``.

    ``channels_last`` False keeps the default layout (what ``vfi bench --backend all`` times as the
    reference). The model's parameters are converted in place.
    """

    name = "torch"

    def __init__(
        self, model: torch.nn.Module, device: torch.device, dtype: torch.dtype, flow_scale: float = 1.0, channels_last: bool | None = None
    ) -> None:
        self.device = device
        self.dtype = dtype
        self.flow_scale = flow_scale
        if channels_last is None:
            channels_last = device.type == "cpu"
        self.layout = torch.channels_last if channels_last else torch.contiguous_format
        self.model = model.to(device).eval().to(memory_format=self.layout)

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.dtype == torch.float32:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.dtype)

    def features(self, image: torch.Tensor) -> torch.Tensor:
        with self._autocast():
            return self.model.features(image.contiguous(memory_format=self.layout))

    def refine(
        self, image1: torch.Tensor, image2: torch.Tensor, t: torch.Tensor,
        features1: torch.Tensor | None = None, features2: torch.Tensor | None = None,
    ) -> torch.Tensor:
        image1, image2 = (x.contiguous(memory_format=self.layout) for x in (image1, image2))
        with self._autocast():
            return self.model(image1, image2, t, features1, features2, flow_scale=self.flow_scale).refined.float()
