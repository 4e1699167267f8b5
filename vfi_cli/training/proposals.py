"""Regions of interest for the instance-level discriminator (§3.3) and the RoIAlign that zooms into them.

Two sources of boxes:

- ``motion_proposals`` (offline default): boxes around what moves in a triplet, which is where
  interpolation goes wrong and where the paper's instances (cars, people) are in practice.
- ``MaskRCNNProposer``: the paper's choice, "a fixed number of RoIs with highest response from
  region proposal network" of Mask R-CNN [6]. It returns the RPN's proposals (after NMS, sorted
  by objectness), not the detector's final boxes: the RPN is class-agnostic, so it also proposes
  objects outside COCO's 80 classes, and it always yields enough boxes for K = 16.

``roi_patches`` cuts 'fake' patches from the low-resolution prediction and 'real' patches from
the high-resolution ground truth with the same boxes, via ``spatial_scale``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from vfi_cli.errors import VfiError, first_line
from vfi_cli.pretrained import MASKRCNN, load_pretrained

MASKRCNN_FILE = MASKRCNN.filename
MOTION_THRESHOLD = 12.0  # grey levels (of 255): below this a change is noise or compression
MOTION_RELATIVE = 0.35  # ... and below this share of the strongest change when everything moves
MIN_COMPONENT_AREA = 16  # pixels: smaller blobs after cleaning are specks, not objects

log = logging.getLogger(__name__)


def random_boxes(count: int, width: int, height: int, rng: np.random.Generator, min_size: int = 16) -> np.ndarray:
    """``count`` boxes inside a width×height image, sides between min_size and half the image."""
    sizes = []
    for extent in (width, height):
        low = min(min_size, extent)
        high = max(low, extent // 2)
        sizes.append(rng.integers(low, high + 1, size=count))
    w, h = sizes
    x1 = rng.integers(0, width - w + 1)
    y1 = rng.integers(0, height - h + 1)
    return np.stack([x1, y1, x1 + w, y1 + h], axis=1).astype(np.float32).reshape(count, 4)


def _fit(low: float, high: float, min_size: int, extent: int) -> tuple[float, float]:
    """Grow [low, high) about its centre to min_size (or the whole extent), then shift it inside [0, extent]."""
    size = max(high - low, min(min_size, extent))
    centre = (low + high) / 2
    low = min(max(centre - size / 2, 0.0), extent - size)
    return max(low, 0.0), min(low + size, float(extent))


def motion_map(first: np.ndarray, second: np.ndarray, middle: np.ndarray) -> np.ndarray:
    """Per-pixel change (grey levels, float32 HxW): how far the middle frame is from the blend of its
    neighbours, or the neighbours from each other, whichever is larger, over the colour channels."""
    import cv2

    a, b, m = (cv2.GaussianBlur(x.astype(np.float32), (5, 5), 1.0) for x in (first, second, middle))
    change = np.maximum(np.abs(m - (a + b) / 2), np.abs(a - b)).max(axis=2)
    return np.ascontiguousarray(change, dtype=np.float32)


def motion_proposals(
    first: np.ndarray,
    second: np.ndarray,
    middle: np.ndarray,
    count: int,
    rng: np.random.Generator,
    min_size: int = 16,
    pad: int = 4,
) -> np.ndarray:
    """Exactly ``count`` boxes (float32 [count,4], x1,y1,x2,y2 in pixels) around the moving regions.

    The change map is thresholded (an absolute floor, raised when the whole frame moves so the
    strongest motion still separates), opened to drop specks, closed to join an object's pieces,
    split into connected components, and ranked by motion energy (summed change). The top
    components are padded by ``pad`` and grown to ``min_size``; random boxes fill up the rest.
    """
    import cv2

    if not (first.shape == second.shape == middle.shape) or first.ndim != 3:
        raise ValueError(f"expected three HxWx3 frames of one size, got {first.shape}, {second.shape}, {middle.shape}")
    height, width = middle.shape[:2]
    change = motion_map(first, second, middle)
    threshold = max(MOTION_THRESHOLD, MOTION_RELATIVE * float(np.percentile(change, 99.5)))
    mask = (change > threshold).astype(np.uint8)
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    join = int(np.clip(min(height, width) // 32, 2, 7)) * 2 + 1
    mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (join, join)))
    number, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    energy = np.bincount(labels.ravel(), weights=change.ravel(), minlength=number)
    components = [c for c in range(1, number) if stats[c, cv2.CC_STAT_AREA] >= MIN_COMPONENT_AREA]
    components.sort(key=lambda c: -energy[c])
    boxes = []
    for c in components[:count]:
        x, y, w, h = (int(stats[c, k]) for k in (cv2.CC_STAT_LEFT, cv2.CC_STAT_TOP, cv2.CC_STAT_WIDTH, cv2.CC_STAT_HEIGHT))
        x1, x2 = _fit(max(x - pad, 0), min(x + w + pad, width), min_size, width)
        y1, y2 = _fit(max(y - pad, 0), min(y + h + pad, height), min_size, height)
        boxes.append((x1, y1, x2, y2))
    found = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    return np.concatenate([found, random_boxes(count - len(found), width, height, rng, min_size)]).astype(np.float32)


class MaskRCNNProposer:
    """RPN proposals of torchvision's Mask R-CNN (ResNet-50 FPN, COCO) from local weights.

    The network is built without any weights (``weights=None, weights_backbone=None``, so nothing
    is fetched) and filled by :mod:`vfi_cli.pretrained`: ``weights``, else the torch hub cache,
    else (only when ``allow_download``) the internet.
    """

    def __init__(self, weights: Path | None, allow_download: bool = False, device: str | torch.device = "cpu") -> None:
        from torchvision.models.detection import maskrcnn_resnet50_fpn

        found = load_pretrained(MASKRCNN, weights, allow_download)
        if found is None:
            raise VfiError(f"--proposals maskrcnn needs Mask R-CNN weights: {MASKRCNN.hint('--detector-weights')}")
        state, origin = found
        self.source = f"maskrcnn_resnet50_fpn:{origin}"
        model = maskrcnn_resnet50_fpn(weights=None, weights_backbone=None)
        try:
            model.load_state_dict(state)
        except (RuntimeError, TypeError, AttributeError) as exc:
            raise VfiError(f"{self.source} is not a torchvision maskrcnn_resnet50_fpn state dict: {first_line(exc)}") from None
        self.device = torch.device(device)
        self.model = model.eval().to(self.device)
        log.info("region proposals: %s", self.source)

    @torch.no_grad()
    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        """float32 [N,4] boxes (x1,y1,x2,y2, pixels of ``rgb``), highest objectness first."""
        from torchvision.models.detection.transform import resize_boxes

        if rgb.ndim != 3 or rgb.shape[2] != 3:
            raise ValueError(f"expected an HxWx3 RGB image, got {rgb.shape}")
        height, width = rgb.shape[:2]
        image = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).float().div(255).to(self.device)
        batch, _ = self.model.transform([image])
        features = self.model.backbone(batch.tensors)
        proposals, _ = self.model.rpn(batch, features)
        boxes = resize_boxes(proposals[0], batch.image_sizes[0], (height, width))
        boxes[:, 0::2] = boxes[:, 0::2].clamp(0, width)
        boxes[:, 1::2] = boxes[:, 1::2].clamp(0, height)
        return boxes.cpu().numpy().astype(np.float32)


def roi_patches(
    images: torch.Tensor | Sequence[torch.Tensor],
    boxes: Sequence[torch.Tensor],
    scale: float | Sequence[float],
    size: int,
) -> torch.Tensor:
    """[sum K, C, size, size] patches of the boxes (low-resolution pixels) from each image.

    ``scale`` is image pixels per box pixel (one per image, or one for all): 1 for the prediction,
    the high-/low-resolution ratio for the real ground truth. RoIAlign with ``aligned=True`` (pixel
    i covers [i, i+1), its centre at i + 0.5) and adaptive sampling (``sampling_ratio=-1``: one
    sample per source pixel or more), so a box zoomed out of a high-resolution frame is averaged
    like an area-downsampled image rather than aliased. Gradients flow back into ``images``.
    """
    from torchvision.ops import roi_align

    count = images.shape[0] if isinstance(images, torch.Tensor) else len(images)
    if count == 0 or len(boxes) != count:
        raise ValueError(f"{count} images but {len(boxes)} box sets")
    scales = [float(scale)] * count if isinstance(scale, (int, float)) else [float(s) for s in scale]
    if len(scales) != count:
        raise ValueError(f"{count} images but {len(scales)} scales")
    if isinstance(images, torch.Tensor) and len(set(scales)) == 1:  # one call for the whole batch
        groups = [(images, list(boxes), scales[0])]
    else:
        groups = [(image[None], [box], factor) for image, box, factor in zip(images, boxes, scales)]
    patches = [
        roi_align(
            batch, [b.to(device=batch.device, dtype=batch.dtype) for b in rois],
            output_size=size, spatial_scale=factor, sampling_ratio=-1, aligned=True,
        )
        for batch, rois, factor in groups
    ]
    return patches[0] if len(patches) == 1 else torch.cat(patches)
