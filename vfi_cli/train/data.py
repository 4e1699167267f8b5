"""Training triplets (§3.5): UCF-101, CityScapes, any folder of videos, and procedural scenes.

Every source yields full-resolution frames (first, middle, last) and the time t of the middle one.
One item pipeline then makes what the trainer consumes: a random crop whose *low-resolution* version
(``train_scale`` of the original) feeds the network, while the same region at the original
resolution supplies the "real" high-resolution patches of the instance discriminator — the pairing
the paper calls the key to its method. Flips, temporal reversal, proposals and the optional flow
teacher are applied per item.

Videos are decoded once into a lossless on-disk cache (one ``.npy`` per clip, memory-mapped), with
the hard cuts and static frames found at that time, so epochs never decode again. The last 20% of
every clip's frames are held out as the validation split.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from vfi_cli.errors import VfiError
from vfi_cli.train.teachers import DISTILL_CHANNELS, NetworkTeacher, TeacherSpec, build_network_teacher

KINDS = ("synthetic", "videos", "ucf101", "cityscapes")
VIDEO_SUFFIXES = {".mp4", ".avi", ".mkv", ".mov", ".mpg", ".mpeg", ".webm", ".m4v", ".ts", ".flv", ".wmv"}
VAL_FRACTION = 0.2  # the tail of every clip held out for validation
MAX_GAP = 4  # triplets span up to 4 frame intervals, so t takes the values j/k, k <= 4
TRIPLETS_PER_UCF_CLIP = 4  # §3.5
SYNTHETIC_SCENES = {"train": 4096, "val": 64}
FLAGS_VERSION = 2  # raise when the cut/static rule changes: cached clips then recompute their flags
STATIC_NOISE = 1.0  # mean absolute difference (0–255) below which a pair counts as still (compression noise)
DEFAULT_TRAIN_SCALE = {"synthetic": 0.5, "videos": 1.0, "ucf101": 1.0, "cityscapes": 0.25}
VAL_MAX_SIDE = 512
TEACHER_MIDDLE_SHARE = 0.75  # with a network teacher, most video triplets are the t = 0.5 ones it covers
MIN_DETECTION_SIDE = 8  # detector boxes clipped to a crop smaller than this (low-res pixels) are dropped


@dataclass(frozen=True)
class DataSpec:
    """One ``--data`` source: its kind, its root folder (not for synthetic) and its share of the mix."""

    kind: str
    root: Path | None = None
    weight: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise VfiError(f"unknown --data kind {self.kind!r} (use {', '.join(KINDS)})")
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


# ----------------------------------------------------------------------------- frame cache


def _clip_cache_dir(cache_dir: Path, path: Path) -> Path:
    stat = path.stat()
    digest = hashlib.sha1(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:16]
    return cache_dir / "clips" / f"{path.stem[:40]}-{digest}"


def _atomic_write(path: Path, write: Any) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.partial")
    write(temporary)
    os.replace(temporary, path)


def _save_array(path: Path, array: np.ndarray) -> None:
    """``np.save`` under a temporary name, then renamed: workers never read a half-written cache file."""

    def write(temporary: Path) -> None:
        with open(temporary, "wb") as fh:  # a file object, or np.save would append ".npy" to the name
            np.save(fh, array)

    _atomic_write(path, write)


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
    from vfi_cli.engine.scenes import SceneDetector, is_still

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
    from vfi_cli.engine import scenes

    return f"{FLAGS_VERSION}:{scenes.DEFAULT_CUT_THRESHOLD}"


def cache_clip(path: Path, cache_dir: Path) -> CachedClip:
    """Decode ``path`` once (colour-correct RGB) into the cache and find its cuts and static pairs."""
    from vfi_cli.video.reader import probe, read_frames

    directory = _clip_cache_dir(cache_dir, path)
    meta_path = directory / "meta.json"
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else None
    if meta is None:
        directory.mkdir(parents=True, exist_ok=True)
        frames: list[np.ndarray] = []
        for frame in read_frames(probe(path)):
            if frames and frame.rgb.shape != frames[-1].shape:
                break  # a size change mid-stream: keep the part before it
            frames.append(frame.rgb)
        if not frames:
            raise VfiError(f"{path} holds no decodable frames")
        _save_array(directory / "frames.npy", np.stack(frames))
        meta = {"source": str(path), "frames": len(frames)}
    if meta.get("flags") != _flags_signature():
        meta["cuts"], meta["statics"] = _pair_flags(np.load(directory / "frames.npy", mmap_mode="r"))
        meta["flags"] = _flags_signature()
        _atomic_write(meta_path, lambda p: p.write_text(json.dumps(meta)))
    return CachedClip(directory, meta["frames"], frozenset(meta["cuts"]), frozenset(meta["statics"]), meta["source"])


def _split_range(count: int, split: str) -> range:
    """Frames of a clip in a split: the first 80% train, the last 20% validate (the frames that
    ``vfi eval --start-fraction 0.8`` scores)."""
    from vfi_cli.evaluation.evaluate import tail_start

    boundary = tail_start(count, 1 - VAL_FRACTION)
    return range(0, boundary) if split == "train" else range(boundary, count)


# ----------------------------------------------------------------------------- sources


class _Source:
    kind: str
    train_scale: float

    def __len__(self) -> int:
        raise NotImplementedError

    def triplet(self, index: int, rng: np.random.Generator, split: str) -> Triplet:
        raise NotImplementedError


def _draw_gap(clip: CachedClip, start: int, limit: int, rng: np.random.Generator, middle_share: float = 0.5) -> tuple[int, int]:
    """(k, j): a span of k intervals from ``start`` with the middle frame j in; k = 2 (t = 0.5) with
    probability ``middle_share``."""
    gaps = [k for k in range(3, MAX_GAP + 1) if start + k < limit and clip.span_ok(start, start + k)]
    k = 2 if not gaps or rng.random() < middle_share else int(rng.choice(gaps))
    return k, int(rng.integers(1, k))


class VideoSource(_Source):
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
            frames = _split_range(clip.frame_count, split)
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


class UCF101Source(_Source):
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
        frames = _split_range(clip.frame_count, self.split)
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


class CityscapesSource(_Source):
    """``leftImg8bit_sequence/<split>/<city>/*_leftImg8bit.png``: one triplet per 30-frame snippet (§3.5)."""

    kind = "cityscapes"

    def __init__(self, root: Path, split: str, train_scale: float, seed: int) -> None:
        from vfi_cli.evaluation.evaluate import cityscapes_base, cityscapes_snippets

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
        from vfi_cli.evaluation.evaluate import read_rgb

        first, middle, last = (read_rgb(path) for path in self.triplets[index])
        return Triplet(first, middle, last, 0.5, self.triplets[index][1].stem)


class SyntheticSource(_Source):
    """Procedural scenes with exactly known motion: a panning background and textured layers that
    move and occlude each other. Scene ``index`` is fixed by the seed; augmentation varies per epoch.

    Textures are the natural photographs scikit-image ships when it is installed, else band-limited
    noise, so training runs with no dataset at all.
    """

    kind = "synthetic"

    def __init__(self, split: str, train_scale: float, seed: int, size: int) -> None:
        self.train_scale = train_scale
        self.split = split
        self.seed = seed
        self.size = size  # full-resolution side of the rendered square
        self._textures: list[np.ndarray] | None = None

    def __len__(self) -> int:
        return SYNTHETIC_SCENES[self.split]

    def textures(self) -> list[np.ndarray]:
        if self._textures is None:
            self._textures = _natural_textures() or [_noise_texture(512, seed) for seed in range(8)]
        return self._textures

    def triplet(self, index: int, rng: np.random.Generator, split: str) -> Triplet:
        scene = np.random.default_rng([self.seed, 0 if split == "train" else 1, index])
        t = 0.5 if split == "val" else float(scene.choice([0.5, 0.25, 0.75, 1 / 3, 2 / 3]))
        textures = self.textures()
        size = self.size
        background = _texture_patch(textures[int(scene.integers(len(textures)))], size * 2, scene)
        pan = scene.uniform(-0.08, 0.08, 2) * size
        layers = []
        for _ in range(int(scene.integers(1, 5))):
            side = int(scene.uniform(0.15, 0.5) * size)
            patch = _texture_patch(textures[int(scene.integers(len(textures)))], side, scene)
            mask = _shape_mask(side, scene)
            origin = scene.uniform(0, size - side, 2)
            velocity = scene.uniform(-0.15, 0.15, 2) * size
            layers.append((patch, mask, origin, velocity))

        def render(time: float) -> np.ndarray:
            matrix = np.float32([[1, 0, -size / 2 + time * pan[0]], [0, 1, -size / 2 + time * pan[1]]])
            canvas = cv2.warpAffine(background, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT).astype(np.float32)
            for patch, mask, origin, velocity in layers:
                x, y = origin + time * velocity
                place = np.float32([[1, 0, x], [0, 1, y]])
                moved = cv2.warpAffine(patch, place, (size, size), flags=cv2.INTER_LINEAR).astype(np.float32)
                alpha = cv2.warpAffine(mask, place, (size, size), flags=cv2.INTER_LINEAR)[..., None]
                canvas = alpha * moved + (1 - alpha) * canvas
            return canvas.round().clip(0, 255).astype(np.uint8)

        return Triplet(render(0.0), render(t), render(1.0), t, f"synthetic/{split}/{index}")


def _natural_textures() -> list[np.ndarray]:
    try:
        from skimage import data
    except ImportError:
        return []
    images = []
    for name in ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "immunohistochemistry", "retina", "brick", "grass", "gravel"):
        try:
            image = getattr(data, name)()
        except Exception:  # noqa: BLE001 - a picture that needs a download is simply not used
            continue
        if image.ndim == 2:
            image = np.repeat(image[..., None], 3, axis=2)
        images.append(np.ascontiguousarray(image[..., :3].astype(np.uint8)))
    return images


def _noise_texture(size: int, seed: int) -> np.ndarray:
    """Multi-scale coloured noise: texture at every frequency, like a photograph but from nothing."""
    rng = np.random.default_rng(seed)
    image = np.zeros((size, size, 3), np.float32)
    for sigma in (1.0, 3.0, 9.0, 27.0):
        image += cv2.GaussianBlur(rng.random((size, size, 3)).astype(np.float32), (0, 0), sigma) * sigma**0.5
    image = (image - image.min()) / max(float(np.ptp(image)), 1e-6)
    return (image * 255).astype(np.uint8)


def _texture_patch(texture: np.ndarray, side: int, rng: np.random.Generator) -> np.ndarray:
    """A randomly placed, scaled and possibly flipped square from ``texture``."""
    height, width = texture.shape[:2]
    extent = int(rng.uniform(0.3, 1.0) * min(height, width))
    y, x = int(rng.integers(0, height - extent + 1)), int(rng.integers(0, width - extent + 1))
    patch = cv2.resize(texture[y : y + extent, x : x + extent], (side, side), interpolation=cv2.INTER_AREA if extent > side else cv2.INTER_CUBIC)
    return np.ascontiguousarray(patch[:, ::-1] if rng.random() < 0.5 else patch)


def _shape_mask(side: int, rng: np.random.Generator) -> np.ndarray:
    """An anti-aliased ellipse or polygon filling most of a side×side square, float32 in [0,1]."""
    scale = 4
    big = np.zeros((side * scale, side * scale), np.uint8)
    centre = (side * scale // 2, side * scale // 2)
    if rng.random() < 0.5:
        axes = (int(rng.uniform(0.25, 0.5) * side * scale), int(rng.uniform(0.25, 0.5) * side * scale))
        cv2.ellipse(big, centre, axes, float(rng.uniform(0, 180)), 0, 360, 255, -1)
    else:
        angles = np.sort(rng.uniform(0, 2 * np.pi, int(rng.integers(3, 8))))
        radii = rng.uniform(0.25, 0.5, angles.size) * side * scale
        points = np.stack([centre[0] + radii * np.cos(angles), centre[1] + radii * np.sin(angles)], 1).astype(np.int32)
        cv2.fillPoly(big, [points], 255)
    return cv2.resize(big, (side, side), interpolation=cv2.INTER_AREA).astype(np.float32) / 255


# ----------------------------------------------------------------------------- items


def _to_tensor(rgb: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).float().div(255)


class TripletDataset(Dataset):
    """The item pipeline over one or more sources; ``weights`` (per item) mixes sources by share."""

    def __init__(
        self,
        sources: Sequence[_Source],
        shares: Sequence[float],
        split: str,
        crop: int,
        stride: int,
        proposals: str,
        num_rois: int,
        flow_teacher: str | None,
        cache_dir: Path,
        proposer: Any = None,
    ) -> None:
        self.sources = list(sources)
        self.split = split
        self.crop = crop
        self.stride = stride
        self.proposals = proposals
        self.num_rois = num_rois
        self.flow_teacher = flow_teacher
        self.teacher = TeacherSpec.parse(flow_teacher) if flow_teacher else None
        self._teacher_cache = _teacher_cache_name(self.teacher) if self.teacher is not None else ""
        self._network: NetworkTeacher | None = None  # built in the process that first needs it (a worker)
        self.cache_dir = cache_dir
        self.proposer = proposer
        self.offsets = np.cumsum([0] + [len(s) for s in self.sources])
        total_share = sum(shares)
        if len(self.sources) > 1 and len(self) > 0:
            self.weights: list[float] | None = []
            for source, share in zip(self.sources, shares):
                self.weights += [share / total_share / max(len(source), 1)] * len(source)
        else:
            self.weights = None

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def _locate(self, index: int) -> tuple[_Source, int]:
        number = int(np.searchsorted(self.offsets, index, side="right") - 1)
        return self.sources[number], index - int(self.offsets[number])

    def __getitem__(self, index: int) -> dict[str, Any]:
        source, local = self._locate(index)
        rng = np.random.default_rng(np.random.randint(0, 2**31))
        triplet = source.triplet(local, rng, self.split)
        if self.split == "val":
            return self._val_item(triplet, source.train_scale)
        return self._train_item(triplet, source.train_scale, rng)

    def _val_item(self, triplet: Triplet, train_scale: float) -> dict[str, Any]:
        """The centre of the low-resolution frames, as large as a multiple of the stride allows."""
        images = [_rescale(im, train_scale) for im in (triplet.first, triplet.middle, triplet.last)]
        height, width = images[0].shape[:2]
        h = min(height, VAL_MAX_SIDE) // self.stride * self.stride
        w = min(width, VAL_MAX_SIDE) // self.stride * self.stride
        if h == 0 or w == 0:
            raise VfiError(f"validation frames of {height}x{width} are smaller than the network's stride {self.stride}")
        y, x = (height - h) // 2, (width - w) // 2
        first, middle, last = (im[y : y + h, x : x + w] for im in images)
        return {"image1": _to_tensor(first), "image2": _to_tensor(last), "target": _to_tensor(middle), "t": torch.tensor(triplet.t)}

    def _geometry(self, triplet: Triplet, train_scale: float) -> tuple[list[np.ndarray], int, float, tuple[int, int]]:
        """(frames, high-resolution crop side, its scale over the crop, low-resolution frame size).

        Footage smaller than the crop is enlarged to it (no high-resolution pairing then)."""
        crop = self.crop
        frames = [triplet.first, triplet.middle, triplet.last]
        height, width = frames[0].shape[:2]
        if min(height, width) < crop:
            factor = crop / min(height, width)
            frames = [cv2.resize(f, (max(crop, round(width * factor)), max(crop, round(height * factor))), interpolation=cv2.INTER_CUBIC) for f in frames]
            height, width = frames[0].shape[:2]
        side = max(crop, min(int(round(crop / train_scale)), height, width))
        scale = side / crop
        low_size = (max(crop, round(width / scale)), max(crop, round(height / scale)))
        return frames, side, scale, low_size

    def _train_item(self, triplet: Triplet, train_scale: float, rng: np.random.Generator) -> dict[str, Any]:
        crop = self.crop
        frames, side, scale, low_size = self._geometry(triplet, train_scale)
        height, width = frames[0].shape[:2]
        # The crop is drawn on the low-resolution grid, so that the cached full-frame teacher lines up with it.
        low_y, low_x = int(rng.integers(0, low_size[1] - crop + 1)), int(rng.integers(0, low_size[0] - crop + 1))
        y, x = min(round(low_y * scale), height - side), min(round(low_x * scale), width - side)
        high = [f[y : y + side, x : x + side] for f in frames]
        boxes_full = self._cached_detections(triplet, y, x, side) if self.proposals == "maskrcnn" else None
        teacher = self._teacher_crop(triplet, frames, low_size, low_y, low_x)
        if rng.random() < 0.5:
            high = [h[:, ::-1] for h in high]
            boxes_full = None if boxes_full is None else _flip_boxes(boxes_full, side, axis=0)
            teacher = None if teacher is None else _flip_flows(teacher, axis=0)
        if rng.random() < 0.5:
            high = [h[::-1] for h in high]
            boxes_full = None if boxes_full is None else _flip_boxes(boxes_full, side, axis=1)
            teacher = None if teacher is None else _flip_flows(teacher, axis=1)
        t = triplet.t
        if rng.random() < 0.5:  # temporal reversal: the same motion played backwards
            high = [high[2], high[1], high[0]]
            t = 1.0 - t
            teacher = None if teacher is None else _reverse_teacher(teacher)
        high = [np.ascontiguousarray(h) for h in high]
        low = high if side == crop else [cv2.resize(h, (crop, crop), interpolation=cv2.INTER_AREA) for h in high]
        boxes = self._boxes(low, boxes_full, scale, rng)
        item = {
            "image1": _to_tensor(low[0]),
            "image2": _to_tensor(low[2]),
            "target": _to_tensor(low[1]),
            "target_hr": _to_tensor(high[1]),
            "hr_scale": torch.tensor(scale, dtype=torch.float32),
            "t": torch.tensor(t, dtype=torch.float32),
            "boxes": torch.from_numpy(boxes),
        }
        if teacher is not None:
            item["teacher"] = torch.from_numpy(np.ascontiguousarray(teacher))
        return item

    def _teacher_crop(self, triplet: Triplet, frames: list[np.ndarray], low_size: tuple[int, int], y: int, x: int) -> np.ndarray | None:
        """The teacher's output over the crop at (y, x) of the low-resolution frame; a network
        teacher's weights are all zero on triplets it does not cover (it is then silent)."""
        if self.teacher is None:
            return None
        crop = self.crop
        if self.teacher.kind == "dis":
            full = self._cached_teacher(triplet, frames, low_size)
        elif triplet.teachable and self._network_teacher().applies(triplet.t):
            full = self._cached_network_teacher(triplet, frames, low_size)
        else:
            return np.zeros((DISTILL_CHANNELS, crop, crop), np.float32)
        return full[:, y : y + crop, x : x + crop].astype(np.float32)

    def _network_teacher(self) -> NetworkTeacher:
        if self._network is None:
            self._network = build_network_teacher(self.teacher)  # type: ignore[arg-type]
        return self._network

    def _cached_network_teacher(self, triplet: Triplet, frames: list[np.ndarray], low_size: tuple[int, int]) -> np.ndarray:
        """A network teacher's output on the whole low-resolution triplet, computed once (float16)."""

        def compute() -> np.ndarray:
            return self._network_teacher()(*_resize_all(frames, low_size), triplet.t).astype(np.float16)

        return self._cached(self._teacher_cache, f"{triplet.key}|{low_size}", compute)

    def teacher_indices(self) -> list[int]:
        """Items whose consecutive-frame triplet a network teacher covers: what :meth:`prepare_teacher` fills."""
        if self.teacher is None or self.teacher.kind == "dis":
            return []
        return [i for i in range(len(self)) if isinstance(self._locate(i)[0], VideoSource)]

    def prepare_teacher(self, index: int) -> bool:
        """Fill the teacher cache for item ``index`` (its t = 0.5 triplet of consecutive frames);
        returns whether the teacher covers it. Called before training so that epochs never wait."""
        source, local = self._locate(index)
        triplet = source.triplet(local, None, "train")  # type: ignore[arg-type]
        if not self._network_teacher().applies(triplet.t):
            return False
        frames, _, _, low_size = self._geometry(triplet, source.train_scale)
        self._cached_network_teacher(triplet, frames, low_size)
        return True

    def _cached_teacher(self, triplet: Triplet, frames: list[np.ndarray], low_size: tuple[int, int]) -> np.ndarray:
        """The DIS teacher of the whole low-resolution triplet, computed once and kept on disk (float16).

        Computing it on the full frame rather than the crop gives the flow its context at the crop's edges.
        """
        from vfi_cli.train.teachers.dis import teacher_flow

        return self._cached("teacher", f"{triplet.key}|{low_size}", lambda: teacher_flow(*_resize_all(frames, low_size)).astype(np.float16))

    def _cached(self, kind: str, key: str, compute: Callable[[], np.ndarray]) -> np.ndarray:
        """A per-triplet array from ``cache_dir/kind``, computed and stored the first time it is asked for."""
        path = self.cache_dir / kind / (hashlib.sha1(key.encode()).hexdigest()[:20] + ".npy")
        if path.exists():
            return np.load(path)
        array = compute()
        path.parent.mkdir(parents=True, exist_ok=True)
        _save_array(path, array)
        return array

    def _boxes(self, low: list[np.ndarray], detections: np.ndarray | None, scale: float, rng: np.random.Generator) -> np.ndarray:
        from vfi_cli.train.proposals import motion_proposals, random_boxes

        if detections is None:
            return motion_proposals(low[0], low[2], low[1], self.num_rois, rng)
        boxes = detections / scale
        sizes = boxes[:, 2:] - boxes[:, :2]
        kept = boxes[(sizes >= MIN_DETECTION_SIDE).all(axis=1)][: self.num_rois]
        filler = random_boxes(self.num_rois - len(kept), self.crop, self.crop, rng)
        return np.concatenate([kept, filler]).astype(np.float32)

    def _cached_detections(self, triplet: Triplet, y: int, x: int, side: int) -> np.ndarray:
        """Detector proposals of the full middle frame (computed once per triplet), clipped to the crop."""
        boxes = self._cached("proposals", triplet.key, lambda: self.proposer(triplet.middle).astype(np.float32))
        inside = boxes - np.float32([x, y, x, y])
        clipped = inside.clip(0, side)
        area = np.prod(np.maximum(inside[:, 2:] - inside[:, :2], 1e-6), axis=1)
        kept_area = np.prod(np.maximum(clipped[:, 2:] - clipped[:, :2], 0), axis=1)
        return clipped[kept_area >= 0.5 * area]


def _resize_all(frames: list[np.ndarray], size: tuple[int, int]) -> list[np.ndarray]:
    height, width = frames[0].shape[:2]
    return frames if (width, height) == size else [cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in frames]


def _teacher_cache_name(spec: TeacherSpec) -> str:
    """Cache folder of a teacher's outputs: new weights never read an old teacher's flows."""
    if spec.path is None:
        return spec.kind
    from vfi_cli.model.weights import sha256_file

    return f"teacher-{spec.kind}-{sha256_file(spec.path)[:12]}"


def _reverse_teacher(teacher: np.ndarray) -> np.ndarray:
    """The teacher of the reversed triplet: flows (and their weights) swap; the mask becomes 1 − mask."""
    if teacher.shape[0] == 5:  # DIS: f1, f2, confidence
        return teacher[[2, 3, 0, 1, 4]]
    reversed_ = teacher[[2, 3, 0, 1, 4, 6, 5, 7]].copy()
    reversed_[4] = 1 - reversed_[4]
    return reversed_


def _rescale(image: np.ndarray, scale: float) -> np.ndarray:
    if scale == 1.0:
        return image
    height, width = image.shape[:2]
    return cv2.resize(image, (max(1, round(width * scale)), max(1, round(height * scale))), interpolation=cv2.INTER_AREA)


def _flip_flows(teacher: np.ndarray, axis: int) -> np.ndarray:
    """Mirror a [C,H,W] teacher whose first four channels are two flows: axis 0 flips x (and the
    x components), axis 1 flips y."""
    flipped = (teacher[:, :, ::-1] if axis == 0 else teacher[:, ::-1]).copy()
    flipped[[axis, axis + 2]] *= -1
    return flipped


def _flip_boxes(boxes: np.ndarray, side: int, axis: int) -> np.ndarray:
    """Mirror (x1,y1,x2,y2) boxes inside a side×side crop: axis 0 flips x, axis 1 flips y."""
    flipped = boxes.copy()
    lo, hi = (0, 2) if axis == 0 else (1, 3)
    flipped[:, lo], flipped[:, hi] = side - boxes[:, hi], side - boxes[:, lo]
    return flipped


def collate_triplets(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Stacks same-size tensors; high-resolution targets and boxes stay lists (sizes may differ)."""
    batch: dict[str, Any] = {}
    for key in items[0]:
        values = [item[key] for item in items]
        batch[key] = values if key in ("target_hr", "boxes") else torch.stack(values)
    return batch


def build_dataset(
    specs: Sequence[DataSpec],
    split: str,
    *,
    crop: int,
    cache_dir: Path,
    proposals: str = "motion",
    num_rois: int = 16,
    flow_teacher: str | None = None,
    seed: int = 0,
    detector_weights: Path | None = None,
    allow_download: bool = False,
    train_scale: float | None = None,
    stride: int = 32,
    clip_starts: int | None = None,
) -> TripletDataset:
    """The mixed dataset of ``specs`` for ``split`` ("train" or "val")."""
    if split not in ("train", "val"):
        raise ValueError(f"split must be train or val, not {split!r}")
    if proposals not in ("motion", "maskrcnn"):
        raise VfiError("--proposals must be motion or maskrcnn")
    network_teacher = flow_teacher is not None and TeacherSpec.parse(flow_teacher).kind != "dis"
    if train_scale is not None and not 0 < train_scale <= 1:
        raise VfiError("--train-scale must be in (0, 1]")
    sources: list[_Source] = []
    for spec in specs:
        scale = train_scale if train_scale is not None else DEFAULT_TRAIN_SCALE[spec.kind]
        if spec.kind == "synthetic":
            sources.append(SyntheticSource(split, scale, seed, size=int(round(crop / scale))))
        elif spec.kind == "videos":
            sources.append(
                VideoSource(
                    Path(spec.root), split, cache_dir, scale, max_starts=clip_starts,  # type: ignore[arg-type]
                    middle_share=TEACHER_MIDDLE_SHARE if network_teacher else 0.5,
                )
            )
        elif spec.kind == "ucf101":
            sources.append(UCF101Source(Path(spec.root), split, cache_dir, scale, seed))  # type: ignore[arg-type]
        else:
            sources.append(CityscapesSource(Path(spec.root), split, scale, seed))  # type: ignore[arg-type]
    proposer = None
    if proposals == "maskrcnn" and split == "train":
        from vfi_cli.train.proposals import MaskRCNNProposer

        proposer = MaskRCNNProposer(detector_weights, allow_download=allow_download)
    return TripletDataset(
        sources, [spec.weight for spec in specs], split, crop, stride, proposals, num_rois, flow_teacher, cache_dir, proposer
    )
