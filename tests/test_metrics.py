"""IE, PSNR and SSIM against known values and scikit-image; masks and trimaps."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vfi_cli.metrics import PSNR_CAP, dilate, interpolation_error, measure, psnr, ssim

structural_similarity = pytest.importorskip("skimage.metrics").structural_similarity


def random_pair(shape: tuple[int, int, int], spread: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 256, shape, dtype=np.uint8)
    noise = rng.integers(-spread, spread + 1, shape)
    return np.clip(truth.astype(int) + noise, 0, 255).astype(np.uint8), truth


def test_identical_images() -> None:
    image = random_pair((16, 20, 3), 0, 0)[1]
    assert psnr(image, image) == PSNR_CAP
    assert interpolation_error(image, image) == 0.0
    assert ssim(image, image) == pytest.approx(1.0, abs=1e-12)


def test_constant_error_known_values() -> None:
    """An error of 10 in every channel: MSE 100, PSNR 10·log10(255²/100), IE = √(3·100)."""
    truth = np.full((12, 14, 3), 100, np.uint8)
    pred = truth + 10
    assert psnr(pred, truth) == pytest.approx(10 * math.log10(255**2 / 100))
    assert interpolation_error(pred, truth) == pytest.approx(math.sqrt(300))
    # Error in one channel only: IE is the RGB norm per pixel, not the per-value RMS.
    pred = truth.copy()
    pred[:, :, 1] += 12
    assert interpolation_error(pred, truth) == pytest.approx(12.0)
    assert psnr(pred, truth) == pytest.approx(10 * math.log10(255**2 / 48))


@pytest.mark.parametrize(("shape", "spread", "seed"), [((7, 7, 3), 60, 1), ((33, 47, 3), 20, 2), ((96, 128, 3), 90, 3)])
def test_ssim_matches_scikit_image(shape: tuple[int, int, int], spread: int, seed: int) -> None:
    pred, truth = random_pair(shape, spread, seed)
    expected = structural_similarity(truth, pred, channel_axis=2, data_range=255)
    assert ssim(pred, truth) == pytest.approx(expected, abs=1e-9)
    assert 0 < expected < 1


def test_masked_metrics_only_see_the_mask() -> None:
    pred, truth = random_pair((40, 50, 3), 30, 4)
    mask = np.zeros((40, 50), bool)
    mask[10:30, 5:25] = True
    # Beyond the mask and the reach of SSIM's 7x7 window, anything may happen without changing the values.
    spoiled = np.zeros_like(pred)
    spoiled[7:33, 2:28] = pred[7:33, 2:28]
    for metric in (psnr, interpolation_error, ssim):
        assert metric(spoiled, truth, mask) == pytest.approx(metric(pred, truth, mask), abs=1e-12)
        assert metric(pred, truth, np.ones((40, 50), bool)) == pytest.approx(metric(pred, truth), abs=1e-12)
    # The masked IE is the IE of the masked pixels alone.
    region = (slice(10, 30), slice(5, 25))
    assert interpolation_error(pred, truth, mask) == pytest.approx(interpolation_error(pred[region], truth[region]))
    assert psnr(pred, truth, mask.astype(np.uint8) * 255) == pytest.approx(psnr(pred[region], truth[region]))


def test_empty_mask_is_nan_and_bad_shapes_are_refused() -> None:
    pred, truth = random_pair((20, 20, 3), 10, 5)
    assert math.isnan(psnr(pred, truth, np.zeros((20, 20), bool)))
    with pytest.raises(ValueError):
        psnr(pred, truth, np.ones((10, 20), bool))
    with pytest.raises(ValueError):
        ssim(pred[:, :10], truth)


def test_measure_agrees_with_the_single_metrics() -> None:
    pred, truth = random_pair((30, 40, 3), 25, 6)
    mask = np.zeros((30, 40), bool)
    mask[5:20, 10:30] = True
    results = measure(pred, truth, {"all": None, "mask": mask})
    for name, region in (("all", None), ("mask", mask)):
        assert results[name]["psnr"] == pytest.approx(psnr(pred, truth, region))
        assert results[name]["ie"] == pytest.approx(interpolation_error(pred, truth, region))
        assert results[name]["ssim"] == pytest.approx(ssim(pred, truth, region))


def test_dilate_is_a_euclidean_band() -> None:
    mask = np.zeros((41, 41), bool)
    mask[20, 20] = True
    grown = dilate(mask, 5)
    yy, xx = np.mgrid[:41, :41]
    assert np.array_equal(grown, (yy - 20) ** 2 + (xx - 20) ** 2 <= 25)
    assert np.array_equal(dilate(mask, 0), mask)
