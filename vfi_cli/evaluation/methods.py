"""What ``vfi eval`` compares: the model through the engine of ``vfi interpolate``, and baselines.

A method maps ``(first, second) -> middle`` on uint8 RGB frames.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

    from vfi_cli.engine.runner import FrameInterpolator


Method = Callable[[np.ndarray, np.ndarray], np.ndarray]


def blend(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """The rounded average of the two inputs: what a flow of zero gives."""
    return ((first.astype(np.uint16) + second + 1) // 2).astype(np.uint8)


def repeat(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """The first input again: frame duplication, the floor."""
    return first.copy()


BASELINES: dict[str, Method] = {"blend": blend, "repeat": repeat}


class ModelMethod:
    """The network as a :data:`Method`, through the same engine as ``vfi interpolate`` (padding,
    precision, backend, flow scale), at t = 0.5: one engine per frame size, made on first use."""

    def __init__(
        self, network: torch.nn.Module, device: torch.device, dtype: torch.dtype, backend: str = "auto", flow_scale: float = 1.0,
    ) -> None:
        self.network, self.device, self.dtype, self.backend, self.flow_scale = network, device, dtype, backend, flow_scale
        self._engines: dict[tuple[int, int], FrameInterpolator] = {}

    def __call__(self, first: np.ndarray, second: np.ndarray) -> np.ndarray:
        from vfi_cli.engine.runner import FrameInterpolator

        size = first.shape[:2]
        if size not in self._engines:
            self._engines[size] = FrameInterpolator(self.network, self.device, self.dtype, *size, backend=self.backend,
                                                    flow_scale=self.flow_scale)
        engine = self._engines[size]
        return engine.synthesize([(engine.prepare(first), engine.prepare(second), 0.5)])[0]

    @property
    def backends_run(self) -> list[str]:
        """The backends that ran, by name: ``auto`` resolved, including its fall-back to torch
        when the preferred runtime failed on this model."""
        return sorted({engine.backend.name for engine in self._engines.values()})
