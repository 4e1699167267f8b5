"""The training item pipeline (§3.5) over a mix of sources, and the mixed dataset ``vfi train`` reads.

Every source yields full-resolution frames (first, middle, last) and the time t of the middle one.
One item pipeline then makes what the trainer consumes: a random crop whose *low-resolution* version
(``train_scale`` of the original) feeds the network, while the same region at the original
resolution supplies the "real" high-resolution patches of the instance discriminator — the pairing
the paper calls the key to its method. Flips, temporal reversal, proposals and the optional flow
teacher are applied per item. Validation items are the centre of the held-out tail's frames.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from vfi_cli.datasets.base import DataSpec, Source, Triplet
from vfi_cli.datasets.cache import cached_array
from vfi_cli.datasets.cityscapes import CityscapesSource
from vfi_cli.datasets.images import image_tensor, rescale
from vfi_cli.datasets.synthetic import SyntheticSource
from vfi_cli.datasets.videos import UCF101Source, VideoSource
from vfi_cli.errors import VfiError
from vfi_cli.training.teachers import TeacherSpec
from vfi_cli.training.teachers.cache import TeacherCache, flip_teacher, reverse_teacher

DEFAULT_TRAIN_SCALE = {"synthetic": 0.5, "videos": 1.0, "ucf101": 1.0, "cityscapes": 0.25}
VAL_MAX_SIDE = 512
TEACHER_MIDDLE_SHARE = 0.75  # with a network teacher, most video triplets are the t = 0.5 ones it covers
MIN_DETECTION_SIDE = 8  # detector boxes clipped to a crop smaller than this (low-res pixels) are dropped


class TripletDataset(Dataset):
    """The item pipeline over one or more sources; ``weights`` (per item) mixes sources by share."""

    def __init__(
        self,
        sources: Sequence[Source],
        shares: Sequence[float],
        split: str,
        crop: int,
        stride: int,
        proposals: str,
        num_rois: int,
        flow_teacher: str | None,
        cache_dir: Path,
        proposer: Any = None,
        motion_crops: float = 0.0,
    ) -> None:
        self.sources = list(sources)
        self.motion_crops = motion_crops
        self.split = split
        self.crop = crop
        self.stride = stride
        self.proposals = proposals
        self.num_rois = num_rois
        self.flow_teacher = flow_teacher
        self.teacher = TeacherCache(TeacherSpec.parse(flow_teacher), cache_dir) if flow_teacher else None
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

    def _locate(self, index: int) -> tuple[Source, int]:
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
        images = [rescale(im, train_scale) for im in (triplet.first, triplet.middle, triplet.last)]
        height, width = images[0].shape[:2]
        h = min(height, VAL_MAX_SIDE) // self.stride * self.stride
        w = min(width, VAL_MAX_SIDE) // self.stride * self.stride
        if h == 0 or w == 0:
            raise VfiError(f"validation frames of {height}x{width} are smaller than the network's stride {self.stride}")
        y, x = (height - h) // 2, (width - w) // 2
        first, middle, last = (im[y : y + h, x : x + w] for im in images)
        return {"image1": image_tensor(first), "image2": image_tensor(last), "target": image_tensor(middle), "t": torch.tensor(triplet.t)}

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
        low_y, low_x = self._crop_origin(triplet, frames, low_size, rng)
        y, x = min(round(low_y * scale), height - side), min(round(low_x * scale), width - side)
        high = [f[y : y + side, x : x + side] for f in frames]
        boxes_full = self._cached_detections(triplet, y, x, side) if self.proposals == "maskrcnn" else None
        teacher = None if self.teacher is None else self._teacher_crop(triplet, frames, low_size, low_y, low_x, (y, x, side))
        if rng.random() < 0.5:
            high = [h[:, ::-1] for h in high]
            boxes_full = None if boxes_full is None else _flip_boxes(boxes_full, side, axis=0)
            teacher = None if teacher is None else flip_teacher(teacher, axis=0)
        if rng.random() < 0.5:
            high = [h[::-1] for h in high]
            boxes_full = None if boxes_full is None else _flip_boxes(boxes_full, side, axis=1)
            teacher = None if teacher is None else flip_teacher(teacher, axis=1)
        t = triplet.t
        if rng.random() < 0.5:  # temporal reversal: the same motion played backwards
            high = [high[2], high[1], high[0]]
            t = 1.0 - t
            teacher = None if teacher is None else reverse_teacher(teacher)
        high = [np.ascontiguousarray(h) for h in high]
        low = high if side == crop else [cv2.resize(h, (crop, crop), interpolation=cv2.INTER_AREA) for h in high]
        boxes = self._boxes(low, boxes_full, scale, rng)
        item = {
            "image1": image_tensor(low[0]),
            "image2": image_tensor(low[2]),
            "target": image_tensor(low[1]),
            "target_hr": image_tensor(high[1]),
            "hr_scale": torch.tensor(scale, dtype=torch.float32),
            "t": torch.tensor(t, dtype=torch.float32),
            "boxes": torch.from_numpy(boxes),
        }
        if teacher is not None:
            item["teacher"] = torch.from_numpy(np.ascontiguousarray(teacher))
        return item

    def _teacher_crop(
        self, triplet: Triplet, frames: list[np.ndarray], low_size: tuple[int, int], low_y: int, low_x: int, high: tuple[int, int, int]
    ) -> np.ndarray:
        """The teacher's target over the crop: a scene's exact motion where it has one (its
        high-resolution crop ``high`` = (y, x, side) brought to the crop's size, flows scaled with
        it), else the teacher cache's. Nearest sampling keeps the motion's edges sharp."""
        if triplet.motion is None or triplet.motion.shape[1:] != frames[0].shape[:2]:  # none, or frames enlarged to the crop
            return self.teacher.crop(triplet, frames, low_size, low_y, low_x, self.crop)  # type: ignore[union-attr]
        y, x, side = high
        target = triplet.motion[:, y : y + side, x : x + side]
        if side != self.crop:
            target = np.stack([cv2.resize(c, (self.crop, self.crop), interpolation=cv2.INTER_NEAREST) for c in target])
            target[:4] *= self.crop / side
        if self.teacher.spec.kind == "dis":  # a classical teacher's layout: two flows and one confidence
            return np.concatenate([target[:4], target[5:6] * target[6:7]]).astype(np.float32)
        return target.astype(np.float32)

    def _crop_origin(self, triplet: Triplet, frames: list[np.ndarray], low_size: tuple[int, int], rng: np.random.Generator) -> tuple[int, int]:
        """Top-left corner (y, x) of the crop on the low-resolution grid: anywhere, or, for a share
        ``motion_crops`` of the triplets a teacher covers, with a probability that grows with the
        square of the teacher's mean flow over the crop. Most of a frame of real footage is still,
        and a student shown still crops learns that zero flow is nearly always right."""
        crop, (width, height) = self.crop, low_size
        span_y, span_x = height - crop + 1, width - crop + 1
        if self.motion_crops <= 0 or self.teacher is None or not self.teacher.covers(triplet) or rng.random() >= self.motion_crops:
            return int(rng.integers(0, span_y)), int(rng.integers(0, span_x))
        flows = np.asarray(self.teacher.whole(triplet, frames, low_size)[0:4], dtype=np.float32)
        motion = np.hypot(flows[0], flows[1]) + np.hypot(flows[2], flows[3])
        # Anchored at (0, 0), the box filter's value at (y, x) is the mean over the crop whose corner is there.
        mean = cv2.boxFilter(motion, -1, (crop, crop), anchor=(0, 0), borderType=cv2.BORDER_CONSTANT)[:span_y, :span_x]
        chance = mean.astype(np.float64).ravel() ** 2 + 1e-6
        y, x = divmod(int(rng.choice(chance.size, p=chance / chance.sum())), span_x)
        return y, x

    def teacher_indices(self) -> list[int]:
        """Items whose consecutive-frame triplet a network teacher covers: what :meth:`prepare_teacher` fills."""
        if self.teacher is None or not self.teacher.is_network:
            return []
        return [i for i in range(len(self)) if isinstance(self._locate(i)[0], VideoSource)]

    def prepare_teacher(self, index: int) -> bool:
        """Fill the teacher cache for item ``index`` (its t = 0.5 triplet of consecutive frames);
        returns whether the teacher covers it. Called before training so that epochs never wait."""
        source, local = self._locate(index)
        triplet = source.triplet(local, None, "train")
        if self.teacher is None or not self.teacher.covers(triplet):
            return False
        frames, _, _, low_size = self._geometry(triplet, source.train_scale)
        if not self.teacher.is_cached(triplet, low_size):  # a resumed run skips cached triplets unread
            self.teacher.whole(triplet, frames, low_size)
        return True

    def _boxes(self, low: list[np.ndarray], detections: np.ndarray | None, scale: float, rng: np.random.Generator) -> np.ndarray:
        from vfi_cli.training.proposals import motion_proposals, random_boxes

        if detections is None:
            return motion_proposals(low[0], low[2], low[1], self.num_rois, rng)
        boxes = detections / scale
        sizes = boxes[:, 2:] - boxes[:, :2]
        kept = boxes[(sizes >= MIN_DETECTION_SIDE).all(axis=1)][: self.num_rois]
        filler = random_boxes(self.num_rois - len(kept), self.crop, self.crop, rng)
        return np.concatenate([kept, filler]).astype(np.float32)

    def _cached_detections(self, triplet: Triplet, y: int, x: int, side: int) -> np.ndarray:
        """Detector proposals of the full middle frame (computed once per triplet), clipped to the crop."""
        boxes = cached_array(self.cache_dir, "proposals", triplet.key, lambda: self.proposer(triplet.middle).astype(np.float32))
        inside = boxes - np.float32([x, y, x, y])
        clipped = inside.clip(0, side)
        area = np.prod(np.maximum(inside[:, 2:] - inside[:, :2], 1e-6), axis=1)
        kept_area = np.prod(np.maximum(clipped[:, 2:] - clipped[:, :2], 0), axis=1)
        return clipped[kept_area >= 0.5 * area]


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
    motion_crops: float = 0.0,
) -> TripletDataset:
    """The mixed dataset of ``specs`` for ``split`` ("train" or "val")."""
    if split not in ("train", "val"):
        raise ValueError(f"split must be train or val, not {split!r}")
    network_teacher = flow_teacher is not None and TeacherSpec.parse(flow_teacher).kind != "dis"
    sources: list[Source] = []
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
        from vfi_cli.training.proposals import MaskRCNNProposer

        proposer = MaskRCNNProposer(detector_weights, allow_download=allow_download)
    return TripletDataset(
        sources, [spec.weight for spec in specs], split, crop, stride, proposals, num_rois, flow_teacher, cache_dir, proposer,
        motion_crops,
    )
