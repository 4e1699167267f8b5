"""Image-quality metrics of Table 1 (IE, PSNR, SSIM) on uint8 RGB frames, optionally under a mask.

Definitions (pred = interpolated frame, truth = ground truth, both ``HxWx3`` uint8 RGB compared
as float64 in 0..255, N = the number of pixels counted: all H·W, or those inside the mask):

- **PSNR** = 10·log10(255² / MSE), MSE = mean over the N pixels and 3 channels of (pred − truth)²;
  capped at 100 dB (identical frames). Averaged over frames as the mean of the per-frame dB.
- **SSIM** = scikit-image ``structural_similarity(truth, pred, channel_axis=2, data_range=255)``
  with its defaults: 7×7 uniform window, K1 = 0.01, K2 = 0.03, sample covariance (49/48), the SSIM
  map averaged over the pixels at least 3 from the border, per channel, then over R, G, B.
  Under a mask, the channel-averaged SSIM map is averaged over the masked pixels of that interior.
- **IE** (Middlebury, Baker et al. 2011) = sqrt( (1/N) · Σ_pixels ‖pred(x) − truth(x)‖₂² ), the
  norm over the three RGB differences; that is √3 × the per-value RMSE. (RIFE's benchmark code
  reports the mean absolute difference under the name IE instead.)

These match the peer harness's ``metrics.py``. A mask is boolean ``HxW`` (any nonzero counts); an
empty mask gives NaN, so that means over many frames can skip it (``numpy.nanmean``).
"""

from __future__ import annotations

import math

import cv2
import numpy as np

PSNR_CAP = 100.0
SSIM_WINDOW = 7
_K1, _K2 = 0.01, 0.03
_RANGE = 255.0


MAX_SIDE = 16384  # the largest frame side FFmpeg's encoders take
MAX_PIXELS = 8192 * 8192


def check_frame_size(size: tuple[int, int], option: str, smallest: int = 1) -> None:
    """Refuse a frame size (height, width) that is too small to score or absurdly large, in one line."""
    height, width = size
    if min(height, width) < smallest:
        raise ValueError(f"{option} {height}x{width}: frames need at least {smallest}x{smallest} pixels"
                         + (f" (SSIM's {SSIM_WINDOW}x{SSIM_WINDOW} window)" if smallest == SSIM_WINDOW else ""))
    if max(height, width) > MAX_SIDE or height * width > MAX_PIXELS:
        raise ValueError(f"{option} {height}x{width} is too large (at most {MAX_SIDE} pixels a side and "
                         f"{MAX_PIXELS:,d} pixels in all)")


def _check(pred: np.ndarray, truth: np.ndarray, mask: np.ndarray | None) -> np.ndarray | None:
    if pred.shape != truth.shape:
        raise ValueError(f"shape mismatch: prediction {pred.shape} vs truth {truth.shape}")
    if pred.ndim != 3 or pred.shape[2] != 3:
        raise ValueError(f"expected HxWx3 RGB frames, got {pred.shape}")
    if mask is None:
        return None
    mask = np.asarray(mask)
    if mask.ndim == 3 and mask.shape[2] == 1:
        mask = mask[:, :, 0]
    if mask.shape != pred.shape[:2]:
        raise ValueError(f"mask of shape {mask.shape} does not fit frames of {pred.shape[:2]}")
    return mask.astype(bool)


def _squared_error(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Per-pixel sum over RGB of the squared difference, HxW float64."""
    difference = pred.astype(np.float64) - truth.astype(np.float64)
    return np.einsum("hwc,hwc->hw", difference, difference)


def _masked_mean(values: np.ndarray, mask: np.ndarray | None) -> float:
    if mask is None:
        return float(values.mean())
    if not mask.any():
        return math.nan
    return float(values[mask].mean())


def _psnr_of(mse: float) -> float:
    if math.isnan(mse):
        return math.nan
    if mse == 0:
        return PSNR_CAP
    return min(PSNR_CAP, 10.0 * math.log10(_RANGE**2 / mse))


def psnr(pred: np.ndarray, truth: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Peak signal-to-noise ratio in dB over all RGB values (under ``mask``), capped at 100 dB."""
    mask = _check(pred, truth, mask)
    return _psnr_of(_masked_mean(_squared_error(pred, truth), mask) / 3.0)


def interpolation_error(pred: np.ndarray, truth: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Middlebury IE: root mean square over pixels of the RGB colour-difference norm."""
    mask = _check(pred, truth, mask)
    return math.sqrt(_masked_mean(_squared_error(pred, truth), mask))


def ssim_map(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Channel-averaged SSIM of each pixel's 7×7 window (HxW float64; the 3-pixel border is padded, not valid)."""
    _check(pred, truth, None)
    if min(pred.shape[:2]) < SSIM_WINDOW:
        raise ValueError(f"SSIM needs frames of at least {SSIM_WINDOW}x{SSIM_WINDOW} pixels, got {pred.shape[:2]}")
    x = truth.astype(np.float64)
    y = pred.astype(np.float64)

    def mean(image: np.ndarray) -> np.ndarray:
        return cv2.boxFilter(image, cv2.CV_64F, (SSIM_WINDOW, SSIM_WINDOW), normalize=True, borderType=cv2.BORDER_REFLECT)

    ux, uy = mean(x), mean(y)
    covariance_norm = SSIM_WINDOW**2 / (SSIM_WINDOW**2 - 1.0)  # sample covariance, as scikit-image
    vx = covariance_norm * (mean(x * x) - ux * ux)
    vy = covariance_norm * (mean(y * y) - uy * uy)
    vxy = covariance_norm * (mean(x * y) - ux * uy)
    c1, c2 = (_K1 * _RANGE) ** 2, (_K2 * _RANGE) ** 2
    numerator = (2 * ux * uy + c1) * (2 * vxy + c2)
    denominator = (ux * ux + uy * uy + c1) * (vx + vy + c2)
    return (numerator / denominator).mean(axis=2)


def ssim(pred: np.ndarray, truth: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Structural similarity as scikit-image computes it on RGB (see the module docstring)."""
    mask = _check(pred, truth, mask)
    return _ssim_under(ssim_map(pred, truth), mask)


def _ssim_under(values: np.ndarray, mask: np.ndarray | None) -> float:
    border = (SSIM_WINDOW - 1) // 2
    interior = values[border:-border, border:-border]
    return _masked_mean(interior, None if mask is None else mask[border:-border, border:-border])


def measure(pred: np.ndarray, truth: np.ndarray, regions: dict[str, np.ndarray | None]) -> dict[str, dict[str, float]]:
    """IE, PSNR and SSIM under each named region (None = the whole frame), sharing the per-pixel work."""
    _check(pred, truth, None)
    squared = _squared_error(pred, truth)
    structure = ssim_map(pred, truth)
    results = {}
    for name, mask in regions.items():
        mask = _check(pred, truth, mask)
        mean_squared = _masked_mean(squared, mask)
        results[name] = {
            "ie": math.sqrt(mean_squared),
            "psnr": _psnr_of(mean_squared / 3.0),
            "ssim": _ssim_under(structure, mask),
        }
    return results


def dilate(mask: np.ndarray, width: int) -> np.ndarray:
    """Pixels within ``width`` pixels (Euclidean) of ``mask``: the trimap region of paper Fig. 5."""
    mask = np.asarray(mask).astype(bool)
    if width <= 0 or not mask.any():
        return mask
    distance = cv2.distanceTransform((~mask).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    return distance <= width
