"""Image files and resizing, as the sources read them (RGB uint8, masks as bool), and an image as the network takes it."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch

from vfi_cli.errors import VfiError


def read_rgb(path: Path) -> np.ndarray:
    """An image file as RGB uint8 [H,W,3]."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise VfiError(f"cannot read image {path}")
    return np.ascontiguousarray(image[:, :, ::-1])


def read_mask(path: Path) -> np.ndarray:
    """A grey image file as a mask: white (above mid-grey) is True."""
    image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if image is None:
        raise VfiError(f"cannot read mask {path}")
    return image > 127


def resize_rgb(rgb: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    """``rgb`` at ``size`` (height, width): area averaging to shrink, bicubic to enlarge; None keeps it."""
    if size is None or rgb.shape[:2] == size:
        return rgb
    shrink = size[0] * size[1] < rgb.shape[0] * rgb.shape[1]
    return cv2.resize(rgb, (size[1], size[0]), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)


def resize_mask(mask: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    """A boolean mask at ``size`` (nearest neighbour); None keeps it."""
    if size is None or mask.shape[:2] == size:
        return mask
    return cv2.resize(mask.astype(np.uint8), (size[1], size[0]), interpolation=cv2.INTER_NEAREST).astype(bool)


def rescale(image: np.ndarray, scale: float) -> np.ndarray:
    """``image`` scaled by ``scale`` (area averaging), at least one pixel each way."""
    if scale == 1.0:
        return image
    height, width = image.shape[:2]
    return cv2.resize(image, (max(1, round(width * scale)), max(1, round(height * scale))), interpolation=cv2.INTER_AREA)


def image_tensor(rgb: np.ndarray) -> torch.Tensor:
    """uint8 RGB [H,W,3] → float [3,H,W] in [0,1]; read-only arrays (memory-mapped cache frames) are copied."""
    rgb = np.ascontiguousarray(rgb)
    return torch.from_numpy(rgb if rgb.flags.writeable else rgb.copy()).permute(2, 0, 1).float().div(255)
