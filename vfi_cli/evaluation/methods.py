"""What ``vfi eval`` compares: the model through the engine of ``vfi interpolate``, and baselines.

A method maps ``(first, second) -> middle`` on uint8 RGB frames.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch


Method = Callable[[np.ndarray, np.ndarray], np.ndarray]


def blend(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """The rounded average of the two inputs: what a flow of zero gives."""
    return ((first.astype(np.uint16) + second + 1) // 2).astype(np.uint8)


def repeat(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """The first input again: frame duplication, the floor."""
    return first.copy()


BASELINES: dict[str, Method] = {"blend": blend, "repeat": repeat}


def model_method(network: torch.nn.Module, device: torch.device, dtype: torch.dtype, backend: str = "auto") -> Method:
    """The network through the same engine as ``vfi interpolate`` (padding, precision, backend), at t = 0.5."""
    from vfi_cli.engine.runner import FrameInterpolator

    interpolators: dict[tuple[int, int], FrameInterpolator] = {}

    def interpolate(first: np.ndarray, second: np.ndarray) -> np.ndarray:
        size = first.shape[:2]
        if size not in interpolators:
            interpolators[size] = FrameInterpolator(network, device, dtype, *size, backend=backend)
        engine = interpolators[size]
        return engine.synthesize([(engine.prepare(first), engine.prepare(second), 0.5)])[0]

    return interpolate
