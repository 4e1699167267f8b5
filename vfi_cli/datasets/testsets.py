"""What ``vfi eval`` scores: triplets of a video, UCF101 as Deep Voxel Flow ships it, Vimeo-90K
(CityScapes: :mod:`.cityscapes`). Sources are generators, so a long video is never held in memory."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vfi_cli.config import TRIMAP_WIDTHS, VIDEO_TRIPLETS
from vfi_cli.datasets.base import ScoredTriplet, TripletSource, spread, tail_start
from vfi_cli.datasets.cityscapes import cityscapes_base, cityscapes_triplets
from vfi_cli.datasets.images import read_mask, read_rgb, resize_mask, resize_rgb
from vfi_cli.errors import VfiError

def open_source(
    path: Path,
    *,
    stride: int = 1,
    max_triplets: int | None = None,
    start_fraction: float = 0.0,
    resize: tuple[int, int] | None = None,
    split: str = "val",
    trimap_widths: Sequence[int] = TRIMAP_WIDTHS,
) -> TripletSource:
    """A video file, a UCF101 (DVF) or Vimeo-90K triplet folder, or a CityScapes root, told apart by layout."""
    path = Path(path)
    if not path.exists():
        raise VfiError(f"input not found: {path}")
    if stride < 1:
        raise VfiError("--stride must be at least 1")
    if not 0.0 <= start_fraction < 1.0:
        raise VfiError("--start-fraction must be in [0, 1)")
    if path.is_file():
        return video_triplets(path, stride=stride, max_triplets=max_triplets, start_fraction=start_fraction, resize=resize)
    if cityscapes_base(path, split) is not None:
        return cityscapes_triplets(path, split=split, stride=stride, max_triplets=max_triplets,
                                   start_fraction=start_fraction, resize=resize, trimap_widths=trimap_widths)
    if stride != 1:
        raise VfiError("--stride applies to videos and CityScapes; a triplet folder fixes its own frames")
    return folder_triplets(path, max_triplets=max_triplets, start_fraction=start_fraction, resize=resize)


def video_triplets(
    path: Path,
    *,
    stride: int = 1,
    max_triplets: int | None = VIDEO_TRIPLETS,
    start_fraction: float = 0.0,
    resize: tuple[int, int] | None = None,
    detector: Any = None,
) -> TripletSource:
    """Frames i and i+2·stride in, frame i+stride as truth; spans across a hard cut are skipped.

    ``start_fraction`` keeps whole spans inside the last part of the video (a held-out tail).
    """
    from vfi_cli.engine.scenes import SceneDetector
    from vfi_cli.video.reader import probe, read_frames

    info = probe(path)
    count = _count_frames(path)
    first_allowed = tail_start(count, start_fraction)
    last = count - 1 - 2 * stride
    if last < first_allowed:
        raise VfiError(f"{path} has {count} frames: too few for --stride {stride}" +
                       (f" in its last {1 - start_fraction:.0%}" if start_fraction else ""))
    starts = spread(range(first_allowed, last + 1), VIDEO_TRIPLETS if max_triplets is None else max_triplets)
    detector = detector or SceneDetector()
    source = TripletSource("video", path, len(starts), iter(()))

    def generate() -> Iterator[ScoredTriplet]:
        wanted = {s + k * stride for s in starts for k in range(3)}
        kept: dict[int, np.ndarray] = {}
        pending = list(starts)
        frames = read_frames(info)
        try:
            for frame in frames:
                if frame.index in wanted:
                    kept[frame.index] = resize_rgb(frame.rgb, resize)
                while pending and pending[0] + 2 * stride <= frame.index:
                    start = pending.pop(0)
                    first, truth, second = (kept[start + k * stride] for k in range(3))
                    name = f"frame{start + stride:06d}"
                    if detector.is_cut(first, truth) or detector.is_cut(truth, second):
                        source.skipped.append(name)
                    else:
                        yield ScoredTriplet(name, first, truth, second)
                    for index in [i for i in kept if not pending or i < pending[0]]:
                        del kept[index]
                if not pending:
                    break
        finally:
            frames.close()

    source.triplets = generate()
    return source


def _count_frames(path: Path) -> int:
    """Exact frame count from the packets (no decoding); headers only estimate it for some containers.

    Counted with the reader's rule, so that discard packets (opencv_box.mp4 has one) do not shift
    the held-out tail by a frame.
    """
    import av

    from vfi_cli.video.reader import holds_frame, video_stream

    with av.open(str(path)) as container:
        return sum(1 for packet in container.demux(video_stream(container)) if holds_frame(packet))


def folder_triplets(
    root: Path, *, max_triplets: int | None = None, start_fraction: float = 0.0, resize: tuple[int, int] | None = None
) -> TripletSource:
    """UCF101 as Deep Voxel Flow ships it (``<id>/frame_00.png, frame_01.png, frame_02.png, motion_mask.png``)
    or Vimeo-90K (``sequences/<a>/<b>/im1.png, im2.png, im3.png``, the ``tri_testlist.txt`` entries when present)."""
    ucf = sorted(p.parent for p in root.rglob("frame_00.png") if (p.parent / "frame_02.png").is_file())
    if ucf:
        kind, folders, names = "ucf101", ucf, ("frame_00.png", "frame_01.png", "frame_02.png")
    else:
        kind, folders, names = "vimeo90k", _vimeo_folders(root), ("im1.png", "im2.png", "im3.png")
    if not folders:
        raise VfiError(
            f"{root} holds no triplets: expected a video file, UCF101 folders (<id>/frame_00.png, frame_01.png, "
            "frame_02.png), Vimeo-90K (<seq>/im1.png, im2.png, im3.png) or CityScapes (leftImg8bit_sequence/<split>/)"
        )
    chosen = spread(folders, max_triplets, start_fraction)

    def generate() -> Iterator[ScoredTriplet]:
        for folder in chosen:
            first, truth, second = (resize_rgb(read_rgb(folder / name), resize) for name in names)
            regions = {}
            if (folder / "motion_mask.png").is_file():
                regions["motion"] = resize_mask(read_mask(folder / "motion_mask.png"), resize)
            yield ScoredTriplet(folder.relative_to(root).as_posix() or folder.name, first, truth, second, regions)

    return TripletSource(kind, root, len(chosen), generate())


def _vimeo_folders(root: Path) -> list[Path]:
    listing = root / "tri_testlist.txt"
    base = root / "sequences" if (root / "sequences").is_dir() else root
    if listing.is_file():
        entries = [line.strip() for line in listing.read_text().splitlines() if line.strip()]
        return [base / entry for entry in entries if (base / entry / "im1.png").is_file()]
    return sorted(p.parent for p in root.rglob("im1.png") if (p.parent / "im3.png").is_file())
