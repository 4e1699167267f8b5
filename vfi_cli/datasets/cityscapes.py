"""CityScapes: the ``leftImg8bit_sequence`` layout, its training source (§3.5) and its scored triplets.

Training takes one triplet of consecutive frames per 30-frame snippet; evaluation takes the
annotated frame (index 19) as the truth, with trimaps of the 'human' and 'vehicle' pixels of
``gtFine`` (the paper's Fig. 5–6) when the labels are there.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from pathlib import Path

import cv2
import numpy as np

from vfi_cli.config import TRIMAP_WIDTHS
from vfi_cli.datasets.base import Source, ScoredTriplet, Triplet, TripletSource, spread
from vfi_cli.datasets.images import read_rgb, resize_mask, resize_rgb
from vfi_cli.errors import VfiError
from vfi_cli.metrics import dilate

CITYSCAPES_HUMAN = (24, 25)  # person, rider (gtFine labelIds)
CITYSCAPES_VEHICLE = tuple(range(26, 34))  # car, truck, bus, caravan, trailer, train, motorcycle, bicycle
CITYSCAPES_ANNOTATED = 19  # index of the annotated frame in each 30-frame snippet
_CITYSCAPES_NAME = re.compile(r"^(?P<city>.+)_(?P<seq>\d+)_(?P<frame>\d+)_leftImg8bit\.png$")


def cityscapes_base(root: Path, split: str) -> Path | None:
    """The folder of a split's ``<city>/*_leftImg8bit.png`` sequence frames, or None."""
    for base in (root / "leftImg8bit_sequence" / split, root / split):
        if base.is_dir() and any(base.glob("*/*_leftImg8bit.png")):
            return base
    return None


def cityscapes_snippets(base: Path) -> dict[tuple[str, str], dict[int, Path]]:
    """Sequence frames grouped by (city, sequence), keyed by frame number."""
    snippets: dict[tuple[str, str], dict[int, Path]] = {}
    for image in base.glob("*/*_leftImg8bit.png"):
        match = _CITYSCAPES_NAME.match(image.name)
        if match:
            snippets.setdefault((match["city"], match["seq"]), {})[int(match["frame"])] = image
    return snippets


def cityscapes_triplets(
    root: Path,
    *,
    split: str = "val",
    stride: int = 1,
    max_triplets: int | None = None,
    start_fraction: float = 0.0,
    resize: tuple[int, int] | None = None,
    trimap_widths: Sequence[int] = TRIMAP_WIDTHS,
) -> TripletSource:
    """One triplet per 30-frame snippet, with the annotated frame (index 19) as truth.

    When ``gtFine/<split>`` is beside the sequences, the 'human' (person, rider) and 'vehicle'
    (car ... bicycle) pixels of the annotated frame, dilated by each trimap width, become regions.
    """
    base = cityscapes_base(root, split)
    if base is None:
        raise VfiError(f"no CityScapes frames in {root} (expected leftImg8bit_sequence/{split}/<city>/*_leftImg8bit.png)")
    labels_base = base.parent.parent / "gtFine" / split
    plans = []
    for (city, seq), frames in sorted(cityscapes_snippets(base).items()):
        numbers = sorted(frames)
        runs = np.split(np.array(numbers), np.flatnonzero(np.diff(numbers) != 1) + 1)
        for run in runs:
            truth = int(run[CITYSCAPES_ANNOTATED]) if len(run) > CITYSCAPES_ANNOTATED else int(run[len(run) // 2])
            if truth - stride in frames and truth + stride in frames:
                plans.append((city, seq, truth, frames))
    if not plans:
        raise VfiError(f"no CityScapes snippet in {base} has frames {stride} before and after its annotated frame")
    chosen = spread(plans, max_triplets, start_fraction)

    def generate() -> Iterator[ScoredTriplet]:
        for city, seq, truth, frames in chosen:
            first, middle, second = (resize_rgb(read_rgb(frames[n]), resize) for n in (truth - stride, truth, truth + stride))
            regions = {}
            labels_path = labels_base / city / f"{city}_{seq}_{truth:06d}_gtFine_labelIds.png"
            if labels_path.is_file():
                labels = cv2.imread(str(labels_path), cv2.IMREAD_UNCHANGED)
                objects = resize_mask(np.isin(labels, CITYSCAPES_HUMAN + CITYSCAPES_VEHICLE), resize)
                regions = {f"trimap-{width}": dilate(objects, width) for width in trimap_widths}
            yield ScoredTriplet(f"{city}_{seq}_{truth:06d}", first, middle, second, regions)

    return TripletSource("cityscapes", root, len(chosen), generate())


class CityscapesSource(Source):
    """``leftImg8bit_sequence/<split>/<city>/*_leftImg8bit.png``: one triplet per 30-frame snippet (§3.5)."""

    kind = "cityscapes"

    def __init__(self, root: Path, split: str, train_scale: float, seed: int) -> None:
        self.train_scale = train_scale
        base = cityscapes_base(root, split)
        if base is None:
            raise VfiError(f"no CityScapes {split} sequences under {root} (expected leftImg8bit_sequence/{split}/<city>/*_leftImg8bit.png)")
        self.triplets: list[tuple[Path, Path, Path]] = []
        for number, (_, frames) in enumerate(sorted(cityscapes_snippets(base).items())):
            starts = [n for n in sorted(frames) if n + 1 in frames and n + 2 in frames]
            if starts:
                n = starts[int(np.random.default_rng([seed, number]).integers(len(starts)))]
                self.triplets.append((frames[n], frames[n + 1], frames[n + 2]))
        if not self.triplets:
            raise VfiError(f"no CityScapes snippets with three consecutive frames under {base}")

    def __len__(self) -> int:
        return len(self.triplets)

    def triplet(self, index: int, rng: np.random.Generator, split: str) -> Triplet:
        first, middle, last = (read_rgb(path) for path in self.triplets[index])
        return Triplet(first, middle, last, 0.5, self.triplets[index][1].stem)
