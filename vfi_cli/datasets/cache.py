"""The on-disk cache: decoded clips and per-triplet arrays, so that epochs never decode or compute twice.

A clip is decoded once (colour-correct RGB) into ``CACHE/clips/<name>-<digest>/frames.npy``,
written frame by frame (memory does not grow with the clip's length) and memory-mapped when read,
beside ``meta.json`` with its frame count and the pairs of frames that straddle a hard cut or show
a still picture. Every file appears under its final name only when complete: a worker never reads
a half-written one.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vfi_cli.config import DEFAULT_CUT_THRESHOLD
from vfi_cli.engine.scenes import SceneDetector, is_still
from vfi_cli.errors import VfiError
from vfi_cli.files import atomic_write

log = logging.getLogger(__name__)
FLAGS_VERSION = 2  # raise when the cut/still rule changes: cached clips then recompute their flags
FINGERPRINT_BYTES = 1 << 20  # hashed at each end of a clip to name its cache folder
Decoder = Callable[[Path], Generator[np.ndarray, None, None]]  # a video's RGB uint8 frames, in order
STATIC_NOISE = 1.0  # mean absolute difference (0–255) below which a pair counts as still (compression noise)


def _clip_cache_dir(cache_dir: Path, path: Path) -> Path:
    """The clip's folder, named by its content (size and the sha256 of its first and last MiB), not by
    its path or modification time: a dataset that is copied, moved or re-provisioned keeps its
    decoded frames and, above all, the teacher outputs keyed by this name (hours of compute)."""
    size = path.stat().st_size
    content = hashlib.sha256(str(size).encode())
    with open(path, "rb") as handle:
        content.update(handle.read(FINGERPRINT_BYTES))
        handle.seek(max(0, size - FINGERPRINT_BYTES))
        content.update(handle.read(FINGERPRINT_BYTES))
    return cache_dir / "clips" / f"{path.stem[:40]}-{content.hexdigest()[:16]}"


def save_array(path: Path, array: np.ndarray) -> None:
    """``np.save`` under a temporary name, then renamed: workers never read a half-written cache file."""

    def write(temporary: Path) -> None:
        with open(temporary, "wb") as fh:  # a file object, or np.save would append ".npy" to the name
            np.save(fh, array)

    atomic_write(path, write)


def cached_path(cache_dir: Path, kind: str, key: str) -> Path:
    """Where :func:`cached_array` keeps the array of ``key``."""
    return cache_dir / kind / (hashlib.sha1(key.encode()).hexdigest()[:20] + ".npy")


def cached_array(cache_dir: Path, kind: str, key: str, compute: Callable[[], np.ndarray]) -> np.ndarray:
    """A per-triplet array from ``cache_dir/kind``, computed and stored the first time it is asked
    for; memory-mapped, so that taking a crop of a whole-frame array reads only the crop."""
    path = cached_path(cache_dir, kind, key)
    if path.exists():
        return np.load(path, mmap_mode="r")
    array = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    save_array(path, array)
    return array


@dataclass
class CachedClip:
    """A decoded clip on disk: frames (uint8 [N,H,W,3], memory-mapped) and, per consecutive pair, cut/static flags."""

    directory: Path
    frame_count: int
    cuts: frozenset[int]  # i such that frames i and i+1 straddle a hard cut
    statics: frozenset[int]  # i such that frames i and i+1 are (nearly) the same picture
    source: str

    @property
    def frames(self) -> np.ndarray:
        return np.load(self.directory / "frames.npy", mmap_mode="r")

    def span_ok(self, start: int, end: int) -> bool:
        """Frames start..end hold no cut and are not all the same picture."""
        if start < 0 or end >= self.frame_count:
            return False
        pairs = range(start, end)
        return not any(i in self.cuts for i in pairs) and not all(i in self.statics for i in pairs)


def _pair_flags(frames: np.ndarray) -> tuple[list[int], list[int]]:
    """Indices i where frames i, i+1 straddle a hard cut, and where they are (nearly) the same picture."""
    detector = SceneDetector()
    cuts, statics = [], []
    for i in range(len(frames) - 1):
        first, second = np.asarray(frames[i]), np.asarray(frames[i + 1])
        if detector.is_cut(first, second):
            cuts.append(i)
        elif is_still(first, second, STATIC_NOISE):
            statics.append(i)
    return cuts, statics


def _flags_signature() -> str:
    """Names the cut detector the flags were computed with, so a better one recomputes them."""
    return f"{FLAGS_VERSION}:{DEFAULT_CUT_THRESHOLD}"


def _npy_header(fh: Any, shape: tuple[int, ...]) -> None:
    """The ``.npy`` header of a uint8 array; numpy pads it so that a longer first axis fits in place."""
    from numpy.lib import format as npy

    npy.write_array_header_1_0(fh, {"descr": npy.dtype_to_descr(np.dtype(np.uint8)), "fortran_order": False, "shape": shape})


def _pyav_frames(video: Path) -> Generator[np.ndarray, None, None]:
    """The product's decoder: colour-correct RGB frames (PyAV)."""
    from vfi_cli.video.reader import probe, read_frames

    frames = read_frames(probe(video))
    try:
        for frame in frames:
            yield frame.rgb
    finally:
        frames.close()


def opencv_frames(video: Path) -> Generator[np.ndarray, None, None]:
    """OpenCV's decoder, for machines without PyAV (the GPU machines): its YUV-to-RGB conversion is
    its own, within a few code values of the product's, which is enough for training data."""
    import cv2

    capture = cv2.VideoCapture(str(video))
    try:
        while True:
            ok, bgr = capture.read()
            if not ok:
                return
            yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    finally:
        capture.release()


def _decode_into(video: Path, frames_path: Path, decode: Decoder) -> int:
    """Decode ``video`` into the ``.npy`` file ``frames_path`` one frame at a time; returns the frame count.

    The header is written first for zero frames and rewritten in place once the count is known.
    """
    count = 0

    def write(temporary: Path) -> None:
        nonlocal count
        frames, shape = decode(video), None
        try:
            with open(temporary, "wb") as fh:
                for rgb in frames:
                    if shape is None:
                        shape = rgb.shape
                        _npy_header(fh, (0, *shape))
                        start = fh.tell()
                    elif rgb.shape != shape:
                        break  # a size change mid-stream: keep the part before it
                    fh.write(np.ascontiguousarray(rgb, dtype=np.uint8).tobytes())
                    count += 1
                if not count:
                    raise VfiError(f"{video} holds no decodable frames")
                fh.seek(0)
                _npy_header(fh, (count, *shape))
                if fh.tell() != start:
                    raise RuntimeError("the .npy header changed length")  # numpy reserves room for this; never expected
        finally:
            frames.close()

    atomic_write(frames_path, write)
    return count


def cache_clip(path: Path, cache_dir: Path, decode: Decoder | None = None) -> CachedClip:
    """Decode ``path`` once (colour-correct RGB) into the cache and find its cuts and still pairs.

    ``decode`` replaces PyAV (a generator of RGB uint8 frames): a GPU machine without PyAV fills
    the cache with :func:`opencv_frames` (``scripts/gpu-train.sh``), and training then finds it filled.

    Raises:
        VfiError: the file holds no decodable frame.
    """
    directory = _clip_cache_dir(cache_dir, path)
    meta_path = directory / "meta.json"
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else None
    if meta is None:
        directory.mkdir(parents=True, exist_ok=True)
        meta = {"source": str(path), "frames": _decode_into(path, directory / "frames.npy", decode or _pyav_frames)}
        log.info("decoded %s into the cache: %d frames", path.name, meta["frames"])
    if meta.get("flags") != _flags_signature():
        meta["cuts"], meta["statics"] = _pair_flags(np.load(directory / "frames.npy", mmap_mode="r"))
        meta["flags"] = _flags_signature()
        atomic_write(meta_path, lambda p: p.write_text(json.dumps(meta)))
    return CachedClip(directory, meta["frames"], frozenset(meta["cuts"]), frozenset(meta["statics"]), meta["source"])
