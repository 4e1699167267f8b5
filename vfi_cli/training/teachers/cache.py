"""A flow teacher's outputs: computed once per triplet on the whole low-resolution frame (so the
flow has context at a crop's edges), kept on disk in float16, and augmented with their item.

The DIS teacher gives 5 channels (two flows and a confidence) for every triplet; a network
teacher gives :data:`DISTILL_CHANNELS` for the consecutive-frame triplets at the times it
teaches and is silent (all weights 0) elsewhere.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch

from vfi_cli.datasets.base import Triplet
from vfi_cli.datasets.cache import cached_array, cached_path
from vfi_cli.training.teachers import DISTILL_CHANNELS, NetworkTeacher, TeacherSpec, build_network_teacher


class TeacherCache:
    """The outputs of the teacher ``spec`` under ``cache_dir``; the network is built in the process
    that first needs it (a DataLoader worker), never pickled, on the CPU unless :meth:`use_device`
    says otherwise."""

    def __init__(self, spec: TeacherSpec, cache_dir: Path) -> None:
        self.spec = spec
        self.cache_dir = cache_dir
        self.folder = "teacher" if spec.kind == "dis" else _network_cache_name(spec)
        self.device = torch.device("cpu")
        self._network: NetworkTeacher | None = None

    def use_device(self, device: torch.device | str) -> None:
        """Run the network on ``device`` from now on (built again there when next needed). CUDA
        cannot run in forked DataLoader workers: a GPU teacher runs in the training process, and
        the CPU must be restored before workers start."""
        self.device = torch.device(device)
        self._network = None

    @property
    def is_network(self) -> bool:
        return self.spec.kind != "dis"

    def network(self) -> NetworkTeacher:
        if self._network is None:
            self._network = build_network_teacher(self.spec, self.device)
        return self._network

    def covers(self, triplet: Triplet) -> bool:
        """DIS teaches every triplet; a network teacher the consecutive-frame ones at a time it can teach."""
        return not self.is_network or (triplet.teachable and self.network().applies(triplet.t))

    def whole(self, triplet: Triplet, frames: list[np.ndarray], low_size: tuple[int, int]) -> np.ndarray:
        """The teacher's output on the whole triplet at ``low_size`` (width, height), from the cache
        or computed and cached now (float16)."""

        def compute() -> np.ndarray:
            low = _resize_all(frames, low_size)
            if self.is_network:
                return self.network()(*low, triplet.t).astype(np.float16)
            from vfi_cli.training.teachers.dis import teacher_flow

            return teacher_flow(*low).astype(np.float16)

        return cached_array(self.cache_dir, self.folder, f"{triplet.key}|{low_size}", compute)

    def is_cached(self, triplet: Triplet, low_size: tuple[int, int]) -> bool:
        return cached_path(self.cache_dir, self.folder, f"{triplet.key}|{low_size}").exists()

    def crop(self, triplet: Triplet, frames: list[np.ndarray], low_size: tuple[int, int], y: int, x: int, side: int) -> np.ndarray:
        """The teacher's output over the ``side``-pixel crop at (y, x) of the low-resolution frame
        (float32); all zeros, a silent teacher, on triplets it does not cover."""
        if not self.covers(triplet):
            return np.zeros((DISTILL_CHANNELS, side, side), np.float32)
        return self.whole(triplet, frames, low_size)[:, y : y + side, x : x + side].astype(np.float32)


def _resize_all(frames: list[np.ndarray], size: tuple[int, int]) -> list[np.ndarray]:
    height, width = frames[0].shape[:2]
    return frames if (width, height) == size else [cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in frames]


def _network_cache_name(spec: TeacherSpec) -> str:
    """Cache folder of a network teacher's outputs: new weights never read an old teacher's flows."""
    from vfi_cli.model.weights import sha256_file

    return f"teacher-{spec.kind}-{sha256_file(spec.path)[:12]}"  # type: ignore[arg-type]


def reverse_teacher(teacher: np.ndarray) -> np.ndarray:
    """The teacher of the reversed triplet: flows (and their weights) swap; the mask becomes 1 − mask."""
    if teacher.shape[0] == 5:  # DIS: f1, f2, confidence
        return teacher[[2, 3, 0, 1, 4]]
    reversed_ = teacher[[2, 3, 0, 1, 4, 6, 5, 7]].copy()
    reversed_[4] = 1 - reversed_[4]
    return reversed_


def flip_teacher(teacher: np.ndarray, axis: int) -> np.ndarray:
    """Mirror a [C,H,W] teacher whose first four channels are two flows: axis 0 flips x (and the
    x components), axis 1 flips y."""
    flipped = (teacher[:, :, ::-1] if axis == 0 else teacher[:, ::-1]).copy()
    flipped[[axis, axis + 2]] *= -1
    return flipped
