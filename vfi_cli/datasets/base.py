"""What every source yields, the ``--data`` spec, and the one rule for the held-out part of a clip."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vfi_cli.config import DATA_KINDS
from vfi_cli.errors import VfiError

VAL_FRACTION = 0.2  # the tail of every clip held out for validation (and scored by `vfi eval --start-fraction 0.8`)


@dataclass(frozen=True)
class DataSpec:
    """One ``--data`` source: its kind, its root folder (not for synthetic) and its share of the mix."""

    kind: str
    root: Path | None = None
    weight: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in DATA_KINDS:
            raise VfiError(f"unknown --data kind {self.kind!r} (use {', '.join(DATA_KINDS)})")
        if self.kind != "synthetic":
            if self.root is None:
                raise VfiError(f"--data {self.kind} needs a root folder (--data-root or --data {self.kind}:PATH)")
            if not Path(self.root).exists():
                raise VfiError(f"data root not found: {self.root}")
        if not self.weight > 0:
            raise VfiError("data mix weights must be positive")


@dataclass(frozen=True)
class Triplet:
    """Full-resolution frames of one training example; ``key`` names it for per-triplet caches."""

    first: np.ndarray
    middle: np.ndarray
    last: np.ndarray
    t: float
    key: str
    teachable: bool = False  # consecutive frames of a video: the triplets a network teacher's cache covers
    motion: np.ndarray | None = None  # the exact target of a scene with known motion, packed as a network teacher's


class Source:
    """A training source: ``len(source)`` items, each a :class:`Triplet` drawn with ``rng``
    (None: the item's fixed triplet) for ``split`` "train" or "val"."""

    kind: str
    train_scale: float

    def __len__(self) -> int:
        raise NotImplementedError

    def triplet(self, index: int, rng: np.random.Generator | None, split: str) -> Triplet:
        raise NotImplementedError


@dataclass
class ScoredTriplet:
    """A scored triplet: two inputs, the true frame half-way between them, and masks (regions)
    scored besides the whole frame (UCF101 motion masks, CityScapes trimaps)."""

    name: str
    first: np.ndarray
    truth: np.ndarray
    second: np.ndarray
    regions: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class TripletSource:
    """Triplets of one source. ``skipped`` fills while iterating (triplets across a hard cut)."""

    kind: str
    path: Path
    planned: int
    triplets: Iterator[ScoredTriplet]
    skipped: list[str] = field(default_factory=list)


def tail_start(count: int, start_fraction: float) -> int:
    """Index of the first of ``count`` items in the part after ``start_fraction``: rounded to the
    nearest item, the rule `vfi train` uses to hold out a clip's last 20%, so that
    ``--start-fraction 0.8`` scores exactly the frames training never saw (no more, no fewer)."""
    return int(round(count * start_fraction))


def spread(candidates: Sequence[Any], limit: int | None, start_fraction: float = 0.0) -> list[Any]:
    """``limit`` items evenly spread over the candidates from ``start_fraction`` of the way on (all if no limit)."""
    tail = list(candidates)[tail_start(len(candidates), start_fraction) :]
    if not limit or limit >= len(tail):
        return tail
    picks = sorted({round(x) for x in np.linspace(0, len(tail) - 1, limit)})
    return [tail[i] for i in picks]


def split_range(count: int, split: str) -> range:
    """Frames of a clip in a split: the first 80% train, the last 20% validate (the frames that
    ``vfi eval --start-fraction 0.8`` scores)."""
    boundary = tail_start(count, 1 - VAL_FRACTION)
    return range(0, boundary) if split == "train" else range(boundary, count)
