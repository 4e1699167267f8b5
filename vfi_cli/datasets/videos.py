"""Training triplets from videos: any folder of videos (or one file), and UCF-101 (§3.5).

Triplets are frames i, i+j, i+k of a clip with k ≤ :data:`MAX_GAP` (t = j/k), never across a hard
cut and never all one still picture; validation triplets are i, i+1, i+2 of the held-out tail.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vfi_cli.datasets.base import Source, Triplet, split_range
from vfi_cli.datasets.cache import CachedClip, cache_clip
from vfi_cli.errors import VfiError
from vfi_cli.video.paths import VIDEO_SUFFIXES

MAX_GAP = 4  # triplets span up to 4 frame intervals, so t takes the values j/k, k <= 4
TRIPLETS_PER_UCF_CLIP = 4  # §3.5


def _draw_gap(clip: CachedClip, start: int, limit: int, rng: np.random.Generator, middle_share: float = 0.5) -> tuple[int, int]:
    """(k, j): a span of k intervals from ``start`` with the middle frame j in; k = 2 (t = 0.5) with
    probability ``middle_share``."""
    gaps = [k for k in range(3, MAX_GAP + 1) if start + k < limit and clip.span_ok(start, start + k)]
    k = 2 if not gaps or rng.random() < middle_share else int(rng.choice(gaps))
    return k, int(rng.integers(1, k))


class VideoSource(Source):
    """Every usable start frame of every clip in a folder (recursive) or a single video file.

    ``max_starts`` keeps at most that many start frames per clip, evenly spaced, so that a long
    clip does not outweigh the others and a teacher's cache stays affordable. ``middle_share`` is
    the probability of a t = 0.5 triplet of consecutive frames (the ones a network teacher covers).
    """

    kind = "videos"

    def __init__(
        self, root: Path, split: str, cache_dir: Path, train_scale: float, max_starts: int | None = None, middle_share: float = 0.5
    ) -> None:
        self.train_scale = train_scale
        self.middle_share = middle_share
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES)
        if not files:
            raise VfiError(f"no videos found under {root}")
        self.clips = [cache_clip(p, cache_dir) for p in files]
        self.items: list[tuple[int, int, int]] = []  # (clip, start, end of the split's frames)
        for number, clip in enumerate(self.clips):
            frames = split_range(clip.frame_count, split)
            starts = [i for i in frames if i + 2 < frames.stop and clip.span_ok(i, i + 2)]
            if max_starts is not None and len(starts) > max_starts:
                starts = [starts[int(n)] for n in np.linspace(0, len(starts) - 1, max_starts).round()]
            self.items += [(number, i, frames.stop) for i in starts]

    def __len__(self) -> int:
        return len(self.items)

    def triplet(self, index: int, rng: np.random.Generator, split: str) -> Triplet:
        number, start, limit = self.items[index]
        clip = self.clips[number]
        k, j = (2, 1) if split == "val" or rng is None else _draw_gap(clip, start, limit, rng, self.middle_share)
        frames = clip.frames
        key = f"{clip.directory.name}/{start}-{j}-{k}"
        return Triplet(frames[start], frames[start + j], frames[start + k], j / k, key, teachable=k == 2)


class UCF101Source(Source):
    """The official UCF-101 layout (``UCF-101/<Class>/v_*.avi``): four random triplets per clip (§3.5).

    Clips are decoded lazily, the first time one of their triplets is asked for, so a 13k-clip
    dataset starts at once; the four triplets are drawn from a per-clip seed and never span a cut.
    """

    kind = "ucf101"

    def __init__(self, root: Path, split: str, cache_dir: Path, train_scale: float, seed: int) -> None:
        self.train_scale = train_scale
        base = root / "UCF-101" if (root / "UCF-101").is_dir() else root
        self.files = sorted(base.glob("*/v_*.avi"))
        if not self.files:
            raise VfiError(f"no UCF-101 clips (<Class>/v_*.avi) under {root}")
        self.cache_dir = cache_dir
        self.seed = seed
        self.split = split

    def __len__(self) -> int:
        return len(self.files) * TRIPLETS_PER_UCF_CLIP

    def _choices(self, clip: CachedClip, number: int) -> list[tuple[int, int, int]]:
        frames = split_range(clip.frame_count, self.split)
        rng = np.random.default_rng([self.seed, number])
        starts = [i for i in frames if i + 2 < frames.stop and clip.span_ok(i, i + 2)]
        if not starts:
            raise VfiError(f"{self.files[number]}: no triplet without a cut in its {self.split} frames")
        picks = []
        for start in rng.choice(starts, size=TRIPLETS_PER_UCF_CLIP, replace=len(starts) < TRIPLETS_PER_UCF_CLIP):
            k, j = (2, 1) if self.split == "val" else _draw_gap(clip, int(start), frames.stop, rng)
            picks.append((int(start), j, k))
        return picks

    def triplet(self, index: int, rng: np.random.Generator, split: str) -> Triplet:
        number, slot = divmod(index, TRIPLETS_PER_UCF_CLIP)
        clip = cache_clip(self.files[number], self.cache_dir)
        start, j, k = self._choices(clip, number)[slot]
        frames = clip.frames
        return Triplet(frames[start], frames[start + j], frames[start + k], j / k, f"{clip.directory.name}/{start}-{j}-{k}")
