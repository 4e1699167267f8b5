"""Region proposals (motion boxes, Mask R-CNN RPN from local weights) and RoIAlign against a slow reference."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.conftest import smooth_texture
from vfi_cli.errors import VfiError
from vfi_cli.training.proposals import MASKRCNN_FILE, MaskRCNNProposer, motion_proposals, random_boxes, roi_patches


def assert_valid_boxes(boxes: np.ndarray, count: int, width: int, height: int, min_size: int) -> None:
    assert boxes.shape == (count, 4) and boxes.dtype == np.float32
    assert (boxes[:, 0] >= 0).all() and (boxes[:, 1] >= 0).all()
    assert (boxes[:, 2] <= width).all() and (boxes[:, 3] <= height).all()
    assert (boxes[:, 2] - boxes[:, 0] >= min(min_size, width)).all()
    assert (boxes[:, 3] - boxes[:, 1] >= min(min_size, height)).all()


def moving_squares(positions: list[list[tuple[int, int]]], side: int, height: int = 96, width: int = 128) -> list[np.ndarray]:
    """Three frames: a dim textured background, and textured squares at the given (x, y) per frame."""
    background = (smooth_texture(height, width, seed=1) // 2 + 40).astype(np.uint8)
    frames = []
    for k in range(3):
        frame = background.copy()
        for number, track in enumerate(positions):
            x, y = track[k]
            frame[y : y + side, x : x + side] = smooth_texture(side, side, seed=10 + number)
        frames.append(frame)
    return frames


def contains(box: np.ndarray, x1: float, y1: float, x2: float, y2: float) -> bool:
    return bool(box[0] <= x1 and box[1] <= y1 and box[2] >= x2 and box[3] >= y2)


def test_random_boxes_fit_the_image() -> None:
    rng = np.random.default_rng(0)
    boxes = random_boxes(200, 100, 60, rng)
    assert_valid_boxes(boxes, 200, 100, 60, 16)
    assert (boxes[:, 2] - boxes[:, 0] <= 50).all() and (boxes[:, 3] - boxes[:, 1] <= 30).all()
    assert random_boxes(0, 100, 60, rng).shape == (0, 4)
    assert_valid_boxes(random_boxes(5, 10, 12, rng), 5, 10, 12, 16)  # smaller than min_size: the whole extent


def test_motion_proposals_box_a_moving_square() -> None:
    track = [(30, 40), (36, 43), (42, 46)]
    first, middle, second = moving_squares([track], side=20)
    boxes = motion_proposals(first, second, middle, 16, np.random.default_rng(0))
    assert_valid_boxes(boxes, 16, 128, 96, 16)
    top = boxes[0]
    for x, y in track:
        assert contains(top, x, y, x + 20, y + 20), (top, x, y)
    assert (top[2] - top[0]) * (top[3] - top[1]) < 4 * 32 * 26  # tight around the motion, not the frame


def test_motion_proposals_rank_the_stronger_motion_first() -> None:
    fast = [(8, 10), (20, 10), (32, 10)]
    slow = [(90, 60), (92, 60), (94, 60)]
    first, middle, second = moving_squares([fast, slow], side=16)
    boxes = motion_proposals(first, second, middle, 4, np.random.default_rng(1))
    assert contains(boxes[0], 8, 10, 48, 26)
    assert contains(boxes[1], 90, 60, 110, 76)


def test_motion_proposals_without_motion_are_random_but_valid() -> None:
    still = smooth_texture(64, 80, seed=3)
    first = motion_proposals(still, still, still, 16, np.random.default_rng(0))
    second = motion_proposals(still, still, still, 16, np.random.default_rng(1))
    assert_valid_boxes(first, 16, 80, 64, 16)
    assert not np.array_equal(first, second)
    tiny = smooth_texture(10, 12, seed=4)
    assert_valid_boxes(motion_proposals(tiny, tiny, tiny, 3, np.random.default_rng(0)), 3, 12, 10, 16)


# ----------------------------------------------------------------------------- RoIAlign


def reference_roi_align(image: np.ndarray, box: np.ndarray, scale: float, size: int) -> np.ndarray:
    """RoIAlign by explicit bilinear sampling in float64, for boxes whose samples stay inside the image.

    Pixel i covers [i, i+1) with its value at the centre i + 0.5; the box (times ``scale``) is cut
    into size×size bins, each the mean of ceil(extent/size)² evenly spaced samples.
    """
    channels, height, width = image.shape
    x1, y1, x2, y2 = (float(v) * scale for v in box)
    bin_w, bin_h = (x2 - x1) / size, (y2 - y1) / size
    grid_w, grid_h = max(math.ceil((x2 - x1) / size), 1), max(math.ceil((y2 - y1) / size), 1)
    out = np.zeros((channels, size, size))
    for row in range(size):
        for col in range(size):
            total = np.zeros(channels)
            for iy in range(grid_h):
                for ix in range(grid_w):
                    y = y1 + (row + (iy + 0.5) / grid_h) * bin_h - 0.5  # continuous -> index coordinates
                    x = x1 + (col + (ix + 0.5) / grid_w) * bin_w - 0.5
                    assert 0 <= x <= width - 1 and 0 <= y <= height - 1, "reference only covers inner samples"
                    x0, y0 = min(int(x), width - 2), min(int(y), height - 2)
                    fx, fy = x - x0, y - y0
                    total += (
                        image[:, y0, x0] * (1 - fx) * (1 - fy) + image[:, y0, x0 + 1] * fx * (1 - fy)
                        + image[:, y0 + 1, x0] * (1 - fx) * fy + image[:, y0 + 1, x0 + 1] * fx * fy
                    )
            out[:, row, col] = total / (grid_w * grid_h)
    return out


def inner_boxes(rng: np.random.Generator, count: int, width: int, height: int, scale: float) -> np.ndarray:
    """Boxes (fractional coordinates) whose RoIAlign samples stay half a pixel from the border."""
    margin = 0.6 / scale
    w = rng.uniform(3, width / 2, count)
    h = rng.uniform(3, height / 2, count)
    x1 = rng.uniform(margin, width - margin - w)
    y1 = rng.uniform(margin, height - margin - h)
    return np.stack([x1, y1, x1 + w, y1 + h], 1)


@pytest.mark.parametrize("scale", [1.0, 1.5, 2.0])
def test_roi_patches_match_slow_reference(scale: float) -> None:
    rng = np.random.default_rng(int(scale * 10))
    low_h, low_w, size = 20, 24, 5
    images = rng.random((2, 3, round(low_h * scale), round(low_w * scale)))
    boxes = [inner_boxes(rng, 3, low_w, low_h, scale) for _ in range(2)]
    patches = roi_patches(torch.from_numpy(images), [torch.from_numpy(b) for b in boxes], scale, size)
    expected = np.stack([reference_roi_align(images[i], box, scale, size) for i in range(2) for box in boxes[i]])
    assert patches.shape == (6, 3, size, size)
    np.testing.assert_allclose(patches.numpy(), expected, atol=1e-9)


def test_roi_patches_of_a_linear_ramp_are_exact_at_any_scale() -> None:
    """f(x, y) = 0.01x + 0.02y + 0.1 in low-res pixels: a bin's value is f at the bin's centre."""

    def ramp(height: int, width: int, scale: float) -> torch.Tensor:
        ys, xs = torch.meshgrid(torch.arange(height, dtype=torch.float64), torch.arange(width, dtype=torch.float64), indexing="ij")
        return (0.01 * (xs + 0.5) / scale + 0.02 * (ys + 0.5) / scale + 0.1).expand(1, 3, height, width)

    box = torch.tensor([[6.25, 5.5, 20.75, 17.0]], dtype=torch.float64)
    size = 4
    centres_x = 6.25 + (torch.arange(size, dtype=torch.float64) + 0.5) * (20.75 - 6.25) / size
    centres_y = 5.5 + (torch.arange(size, dtype=torch.float64) + 0.5) * (17.0 - 5.5) / size
    expected = 0.01 * centres_x[None, :] + 0.02 * centres_y[:, None] + 0.1
    for scale in (1.0, 2.0, 4.0):
        patch = roi_patches(ramp(round(32 * scale), round(32 * scale), scale), [box], scale, size)
        torch.testing.assert_close(patch[0, 0], expected, atol=1e-12, rtol=0)


def smooth_function(height: int, width: int, scale: float) -> torch.Tensor:
    """A smooth colour image sampled at the pixel centres of a grid ``scale`` times finer than 64×64."""
    ys = (torch.arange(height, dtype=torch.float64) + 0.5) / scale
    xs = (torch.arange(width, dtype=torch.float64) + 0.5) / scale
    channels = [
        0.5 + 0.4 * torch.sin(xs[None, :] / 7 + phase) * torch.cos(ys[:, None] / 9 - phase) for phase in (0.0, 1.0, 2.0)
    ]
    return torch.stack(channels)


def test_low_res_boxes_zoom_into_the_high_res_frame() -> None:
    """Boxes on a 64×64 frame cut the same patches from its exact 128×128 upsampling with scale 2."""
    boxes = [torch.tensor([[4.0, 6.0, 36.0, 30.0], [20.5, 17.25, 60.0, 61.0], [0.0, 0.0, 64.0, 64.0]])]
    low = roi_patches(smooth_function(64, 64, 1.0)[None], boxes, 1.0, 16)
    high = roi_patches([smooth_function(128, 128, 2.0)], boxes, [2.0], 16)
    assert low.shape == high.shape == (3, 3, 16, 16)
    torch.testing.assert_close(high, low, atol=2e-3, rtol=0)
    other = roi_patches([smooth_function(128, 128, 2.0)], [boxes[0] + 3.0], [2.0], 16)
    assert (other - low).abs().max() > 0.02  # the comparison can tell a 3-pixel shift


def test_roi_patches_take_per_image_sizes_and_scales() -> None:
    rng = np.random.default_rng(5)
    sizes, scales = [(20, 24), (40, 48), (30, 36)], [1.0, 2.0, 1.5]
    images = [rng.random((3, h, w)) for h, w in sizes]
    boxes = [inner_boxes(rng, k, 24, 20, s) for k, s in zip((2, 0, 3), scales)]
    patches = roi_patches([torch.from_numpy(im) for im in images], [torch.from_numpy(b) for b in boxes], scales, 4)
    expected = [reference_roi_align(images[i], box, scales[i], 4) for i in range(3) for box in boxes[i]]
    assert patches.shape == (5, 3, 4, 4)
    np.testing.assert_allclose(patches.numpy(), np.stack(expected), atol=1e-9)


def test_roi_patches_pass_gradients_to_the_boxed_pixels() -> None:
    image = torch.rand(1, 3, 32, 32, requires_grad=True)
    roi_patches(image, [torch.tensor([[8.0, 4.0, 20.0, 16.0]])], 1.0, 8).sum().backward()
    touched = image.grad[0, 0] != 0
    rows, cols = touched.nonzero(as_tuple=True)
    assert touched.any() and rows.min() >= 3 and rows.max() <= 16 and cols.min() >= 7 and cols.max() <= 20


# ----------------------------------------------------------------------------- Mask R-CNN


@pytest.fixture(scope="module")
def random_maskrcnn(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised torchvision Mask R-CNN saved under the name torchvision's cache uses."""
    from torchvision.models.detection import maskrcnn_resnet50_fpn

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("hub") / "checkpoints" / MASKRCNN_FILE
    path.parent.mkdir()
    torch.save(maskrcnn_resnet50_fpn(weights=None, weights_backbone=None).state_dict(), path)
    return path


def test_maskrcnn_proposer_loads_local_weights_and_returns_rpn_boxes(random_maskrcnn: Path) -> None:
    proposer = MaskRCNNProposer(random_maskrcnn)
    assert str(random_maskrcnn) in proposer.source
    proposer.model.transform.min_size, proposer.model.transform.max_size = (96,), 160  # keep the CPU test quick
    image = smooth_texture(48, 80, seed=2)
    boxes = proposer(image)
    assert boxes.dtype == np.float32 and boxes.ndim == 2 and boxes.shape[1] == 4 and len(boxes) > 16
    # in the input's pixels (the network saw it at twice the size), inside the image
    assert (boxes[:, :2] >= 0).all() and (boxes[:, 2] <= 80).all() and (boxes[:, 3] <= 48).all()
    assert (boxes[:, 2:] >= boxes[:, :2]).all() and boxes[:, 2].max() > 60


def test_maskrcnn_proposer_finds_the_torch_cache_and_never_downloads_unasked(
    random_maskrcnn: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cached = tmp_path / "home" / "hub" / "checkpoints" / MASKRCNN_FILE
    cached.parent.mkdir(parents=True)
    cached.symlink_to(random_maskrcnn)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "home"))
    assert str(cached) in MaskRCNNProposer(None).source

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))
    with pytest.raises(VfiError, match=f"(?s){MASKRCNN_FILE}.*--allow-download"):
        MaskRCNNProposer(None)
    with pytest.raises(VfiError, match="not found"):
        MaskRCNNProposer(tmp_path / "absent.pth")
    foreign = tmp_path / "foreign.pth"
    torch.save({"conv1.weight": torch.zeros(1)}, foreign)
    with pytest.raises(VfiError, match="not a torchvision maskrcnn"):
        MaskRCNNProposer(foreign)
