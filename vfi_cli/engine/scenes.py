"""Hard-cut and duplicate-frame detection on cheap, downscaled copies of two frames.

A cut is a pair whose pictures cannot be matched to each other, even allowing for what happens
inside a shot: camera and object motion (each part of the second frame is searched for in the
first, within a sixth of the width for 16-pixel blocks and a quarter for the centre as a whole),
brightness and contrast changes (patches are compared after normalising their contrast, so a fade
only changes their scale) and dissolves (each step between two dissolving pictures is small).
Colour histograms, the usual cheap measure, miss cuts between shots of one setting and take fades
for cuts, so they are not used.
"""

from __future__ import annotations

import cv2
import numpy as np

from vfi_cli.config import DEFAULT_CUT_THRESHOLD

THUMBNAIL_WIDTH = 64
_CONTRAST_FLOOR = 6.0  # grey levels: patches with less standard deviation than this count as flat
_BLOCK = 16  # side of the blocks matched one by one, in thumbnail pixels
_BLOCK_RANGE = 1 / 6  # how far (fraction of the width) a block is searched for
_CENTRE_MARGIN = 1 / 4  # the centre template leaves this much of each side, so it may move that far
_BEST_SHARE = 0.6  # blocks' score: the best-matched 60 % (by contrast), so a new edge or a passing object does not count
_FLAT_JUMP = 128.0  # between two flat pictures, a mean change of this many levels counts fully


def thumbnail(rgb: np.ndarray) -> np.ndarray:
    """A float32 copy 64 pixels wide, area-averaged (which also removes noise and grain).

    Large frames are first sampled down to about 8 samples per thumbnail pixel each way, which
    makes a 4K frame's thumbnail several times cheaper; the area average still removes aliasing.
    """
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.shape[0] < 1 or rgb.shape[1] < 1:
        raise ValueError(f"expected an HxWx3 RGB array, got shape {rgb.shape}")
    height = int(np.clip(round(rgb.shape[0] * THUMBNAIL_WIDTH / rgb.shape[1]), _BLOCK, 4 * THUMBNAIL_WIDTH))
    step = max(1, rgb.shape[1] // (8 * THUMBNAIL_WIDTH))
    sampled = np.ascontiguousarray(rgb[::step, ::step])
    small = cv2.resize(sampled, (THUMBNAIL_WIDTH, height), interpolation=cv2.INTER_AREA).astype(np.float32)
    if rgb.dtype != np.uint8:  # the uint16 RGB of 10-bit video: measure in 8-bit levels all the same
        small *= 255.0 / np.iinfo(rgb.dtype).max
    return small


def _contrast_weight(variance: np.ndarray | float) -> np.ndarray | float:
    """variance / (variance + floor²): about 1 for textured patches, 0 for flat ones."""
    return variance / (variance + _CONTRAST_FLOOR**2)


def _match(search: np.ndarray, template: np.ndarray) -> tuple[float, float]:
    """Best match of ``template`` anywhere inside ``search``: (distance, the template's contrast weight).

    The distance is half the mean squared difference of the two patches after each is centred and
    divided by its contrast (its standard deviation, with a floor): 0 for patches that differ only
    in brightness and contrast, about 1 for unrelated textured ones, small for two flat ones.
    """
    th, tw = template.shape[:2]
    n = th * tw * 3
    centred = template - template.reshape(-1, 3).mean(axis=0)
    var_t = float((centred**2).sum() / n)
    # Sums over every placement from integral images (windowed means and variances of the search area).
    sums, squares = cv2.integral2(search, sdepth=cv2.CV_64F)

    def window(table: np.ndarray) -> np.ndarray:
        return table[th:, tw:] - table[:-th, tw:] - table[th:, :-tw] + table[:-th, :-tw]

    means = window(sums) / (th * tw)  # [placements_y, placements_x, 3]
    var_s = np.maximum(window(squares).sum(axis=2) / n - (means**2).sum(axis=2) / 3, 0.0)
    cov = cv2.matchTemplate(search, centred, cv2.TM_CCORR).astype(np.float64) / n
    floor = _CONTRAST_FLOOR**2
    distance = 0.5 * (_contrast_weight(var_s) + _contrast_weight(var_t)) - cov / np.sqrt((var_s + floor) * (var_t + floor))
    return float(np.clip(distance.min(), 0.0, 1.0)), float(_contrast_weight(var_t))


def _centre_distance(first: np.ndarray, second: np.ndarray) -> float:
    """The centre of ``second`` (half its width and height) searched for in all of ``first``."""
    height, width = second.shape[:2]
    my, mx = max(1, round(height * _CENTRE_MARGIN)), max(1, round(width * _CENTRE_MARGIN))
    return _match(first, second[my : height - my, mx : width - mx])[0]


def _block_distance(first: np.ndarray, second: np.ndarray) -> float:
    """Each block of ``second`` searched for near its place in ``first``; the best-matched share counts."""
    height, width = second.shape[:2]
    reach = round(width * _BLOCK_RANGE)
    ys = np.linspace(0, height, max(1, round(height / _BLOCK)) + 1).astype(int)
    xs = np.linspace(0, width, max(1, round(width / _BLOCK)) + 1).astype(int)
    results = []
    for y0, y1 in zip(ys[:-1], ys[1:]):
        for x0, x1 in zip(xs[:-1], xs[1:]):
            search = first[max(0, y0 - reach) : y1 + reach, max(0, x0 - reach) : x1 + reach]
            results.append(_match(search, second[y0:y1, x0:x1]))
    distances, weights = (np.array(values) for values in zip(*sorted(results)))
    weights = weights + 1e-3  # all-flat pictures still get an (unweighted) mean
    kept = np.cumsum(weights) - weights < _BEST_SHARE * weights.sum()
    return float((distances[kept] * weights[kept]).sum() / weights[kept].sum())


def thumbnail_distance(first: np.ndarray, second: np.ndarray, exact_above: float = -1.0) -> float:
    """The cut score of two thumbnails (see :meth:`SceneDetector.score`).

    A score at or below ``exact_above`` may come back as an upper bound instead: the block search,
    the costly part, is skipped when the centre match alone keeps the score that low (most pairs).
    """
    if first.shape != second.shape:
        return 1.0
    # Flat pictures (black, a plain card) have no structure to compare: a big jump in colour is a cut.
    flatness = 1.0 - max(_contrast_weight(float(first.var(axis=(0, 1)).mean())),
                         _contrast_weight(float(second.var(axis=(0, 1)).mean())))
    jump = flatness * float(np.abs(first.mean(axis=(0, 1)) - second.mean(axis=(0, 1))).mean()) / _FLAT_JUMP
    structure = max(_centre_distance(first, second), _centre_distance(second, first))
    if structure > exact_above:  # a cut is unmatched both as a whole and block by block
        structure = min(structure, max(_block_distance(first, second), _block_distance(second, first)))
    return float(min(1.0, max(structure, jump)))


class SceneDetector:
    """Decides whether two consecutive frames straddle a hard cut (still pairs: :func:`is_still`).

    The streaming engine keeps each frame's :func:`thumbnail` and calls :func:`thumbnail_distance`,
    so every frame is downscaled once; :meth:`score` does both for a single pair.
    """

    def __init__(self, threshold: float = DEFAULT_CUT_THRESHOLD) -> None:
        if not 0.0 < threshold < 1.0:
            raise ValueError(f"scene threshold must lie between 0 and 1, got {threshold}")
        self.threshold = threshold

    def score(self, first: np.ndarray, second: np.ndarray) -> float:
        """0 for the same picture (moved, brightened or faded), about 0.5 or more across a hard cut, at most 1."""
        return thumbnail_distance(thumbnail(first), thumbnail(second))

    def is_cut(self, first: np.ndarray, second: np.ndarray) -> bool:
        return self.is_cut_between(thumbnail(first), thumbnail(second))

    def is_cut_between(self, first_thumbnail: np.ndarray, second_thumbnail: np.ndarray) -> bool:
        """:meth:`is_cut` for frames already reduced with :func:`thumbnail`."""
        return thumbnail_distance(first_thumbnail, second_thumbnail, exact_above=self.threshold) > self.threshold


def is_still(first: np.ndarray, second: np.ndarray, noise: float = 0.0) -> bool:
    """Whether two frames show the same still picture: the one rule for "static" pairs.

    ``noise`` 0 (the default) asks for bit-identical frames: what ``vfi interpolate`` copies
    instead of synthesising, so a still picture stays pixel-identical (a sparse sample is compared
    first, so that the usual answer, no, costs little on 4K frames). Training passes the level of
    compression noise (a mean absolute difference below ``noise`` levels counts as still), because
    it skips triplets in which nothing moves rather than copying pixels.
    """
    if first.shape != second.shape:
        return False
    if noise > 0:
        return bool(np.abs(first.astype(np.int32) - second).mean() < noise)
    if not np.array_equal(first[::16, ::16], second[::16, ::16]):
        return False
    return bool(np.array_equal(first, second))


DUPLICATE_BLOCK = 8  # pixels: the side of the blocks whose mean difference :func:`frame_difference` takes the largest of


def frame_difference(first: np.ndarray, second: np.ndarray) -> float:
    """How far apart two frames are for duplicate detection, in 8-bit levels: the largest mean absolute
    difference of any 8×8 block (over R, G and B), as ffmpeg's mpdecimate measures.

    Compression noise spreads thin (a held drawing re-encoded differs by 8–21 levels at a few pixels
    but a block mean of 1–3), while a moving mouth or hand shifts whole blocks by tens of levels.
    """
    if first.shape != second.shape:
        return float("inf")
    diff = cv2.absdiff(first, second)
    if diff.dtype != np.uint8:
        diff = diff.astype(np.float32) * (255.0 / np.iinfo(first.dtype).max)
    height, width = diff.shape[:2]
    rows, columns = max(1, height // DUPLICATE_BLOCK), max(1, width // DUPLICATE_BLOCK)
    blocks = cv2.resize(diff[: rows * DUPLICATE_BLOCK or height, : columns * DUPLICATE_BLOCK or width], (columns, rows),
                        interpolation=cv2.INTER_AREA).astype(np.float32)
    return float(blocks.reshape(rows, columns, -1).mean(axis=2).max())


def is_duplicate(first: np.ndarray, second: np.ndarray, tolerance: float) -> bool:
    """Whether ``second`` repeats ``first`` (a held drawing): bit-identical for ``tolerance`` 0, else a
    :func:`frame_difference` of at most ``tolerance`` levels."""
    if tolerance <= 0:
        return is_still(first, second)
    return frame_difference(first, second) <= tolerance
