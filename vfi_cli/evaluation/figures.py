"""Pictures of an evaluation: side-by-side panels with an error heat map, and PSNR per triplet (OpenCV only)."""

from __future__ import annotations

import math

import cv2
import numpy as np

from vfi_cli.datasets.base import ScoredTriplet
from vfi_cli.evaluation.methods import blend

_HEAT_RANGE = 64.0  # colour-difference norm shown at full heat
_TILE_WIDTH = 1024


def side_by_side(triplet: ScoredTriplet, outputs: dict[str, np.ndarray]) -> np.ndarray:
    """Ground truth, each method (and the blend), and the first method's error as a heat map, labelled."""
    tiles = [("ground truth", triplet.truth)] + list(outputs.items())
    if "blend" not in outputs:
        tiles.append(("blend", blend(triplet.first, triplet.second)))
    first_name, first_output = next(iter(outputs.items()))
    error = np.sqrt(np.sum((first_output.astype(np.float64) - triplet.truth) ** 2, axis=2))
    heat = cv2.applyColorMap(np.clip(error * 255 / _HEAT_RANGE, 0, 255).astype(np.uint8), cv2.COLORMAP_INFERNO)[:, :, ::-1]
    tiles.append((f"error of {first_name} (0-{_HEAT_RANGE:.0f})", heat))
    return np.concatenate([_labelled(label, image) for label, image in tiles], axis=1)


def _labelled(label: str, image: np.ndarray) -> np.ndarray:
    if image.shape[1] > _TILE_WIDTH:
        height = round(image.shape[0] * _TILE_WIDTH / image.shape[1])
        image = cv2.resize(image, (_TILE_WIDTH, height), interpolation=cv2.INTER_AREA)
    strip = np.full((22, image.shape[1], 3), 255, np.uint8)
    cv2.putText(strip, label, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([strip, image], axis=0)


_PALETTE = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75)]


def psnr_plot(curves: dict[str, list[float]], size: tuple[int, int] = (420, 840)) -> np.ndarray:
    """A line chart of PSNR per triplet, one line per method (RGB uint8), drawn with OpenCV."""
    height, width = size
    left, right, top, bottom = 56, 150, 30, 40
    image = np.full((height, width, 3), 255, np.uint8)
    values = [v for curve in curves.values() for v in curve if math.isfinite(v)]
    low, high = (min(values), max(values)) if values else (0.0, 1.0)
    step = _nice_step((high - low) or 1.0)
    low, high = math.floor(low / step) * step, math.ceil(high / step) * step + (step if high == low else 0)
    count = max(len(curve) for curve in curves.values())

    def point(index: int, value: float) -> tuple[int, int]:
        x = left + (index / max(count - 1, 1)) * (width - left - right)
        y = top + (high - value) / (high - low) * (height - top - bottom)
        return round(x), round(y)

    text = dict(fontFace=cv2.FONT_HERSHEY_SIMPLEX, fontScale=0.4, color=(60, 60, 60), thickness=1, lineType=cv2.LINE_AA)
    for tick in np.arange(low, high + step / 2, step):
        y = point(0, tick)[1]
        cv2.line(image, (left, y), (width - right, y), (225, 225, 225), 1)
        cv2.putText(image, f"{tick:g}", (6, y + 4), **text)
    for index in sorted({round(x) for x in np.linspace(0, count - 1, min(count, 8))}):
        x = point(index, low)[0]
        cv2.putText(image, str(index), (x - 4, height - bottom + 16), **text)
    cv2.rectangle(image, (left, top), (width - right, height - bottom), (120, 120, 120), 1)
    cv2.putText(image, "PSNR per triplet (dB)", (left, 20), **(text | {"fontScale": 0.5}))
    cv2.putText(image, "triplet", ((left + width - right) // 2 - 20, height - 8), **text)
    for number, (name, curve) in enumerate(curves.items()):
        colour = _PALETTE[number % len(_PALETTE)]
        points = [point(i, v) for i, v in enumerate(curve) if math.isfinite(v)]
        if len(points) > 1:
            cv2.polylines(image, [np.array(points, np.int32)], False, colour, 2, cv2.LINE_AA)
        for p in points:
            cv2.circle(image, p, 3, colour, -1, cv2.LINE_AA)
        y = top + 10 + 20 * number
        cv2.line(image, (width - right + 10, y), (width - right + 30, y), colour, 2)
        cv2.putText(image, name, (width - right + 36, y + 4), **text)
    return image


def _nice_step(span: float) -> float:
    """A 1-2-5 grid step giving about five lines over ``span``."""
    raw = span / 5
    magnitude = 10 ** math.floor(math.log10(raw))
    return next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
