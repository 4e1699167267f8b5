"""DIS optical flow (OpenCV; Kroeger et al., ECCV 2016) between two frames: the one place that runs it.

Used by the network's classical flow prior (:mod:`vfi_cli.model.prior`) and by the DIS flow
teacher of training (:mod:`vfi_cli.training.teachers.dis`). DIS runs on the CPU, on 8-bit grey
images, one pair at a time; it is deterministic.
"""

from __future__ import annotations

import cv2
import numpy as np

PRESETS = {
    "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
    "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
    "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
}


def dis_flow(first: np.ndarray, second: np.ndarray, preset: str = "medium") -> np.ndarray:
    """The flow from ``first`` to ``second``: float32 ``[H,W,2]`` (x right, y down) in pixels, such
    that ``first(p)`` is found at ``second(p + flow(p))``.

    Frames are uint8 RGB ``[H,W,3]`` (made grey with OpenCV's BT.601 luma) or uint8 grey ``[H,W]``
    (a caller with its own grey conversion, such as the prior working from float tensors).

    Raises:
        ValueError: an unknown ``preset``.
    """
    if preset not in PRESETS:
        raise ValueError(f"unknown DIS preset {preset!r}; expected one of {sorted(PRESETS)}")
    grey = [cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) if image.ndim == 3 else image for image in (first, second)]
    return cv2.DISOpticalFlow_create(PRESETS[preset]).calc(grey[0], grey[1], None)
