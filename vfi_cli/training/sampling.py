"""The order training visits its items in: seeded per item and per epoch, split across processes, resumable mid-epoch."""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler


class SeededItems(Dataset):
    """Gives every item its own seed, so augmentation does not depend on which worker loads it.

    That makes a resumed run draw exactly the crops, flips and reversals an uninterrupted one would.
    """

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, key: tuple[int, int]) -> Any:
        index, seed = key
        python_state, numpy_state = random.getstate(), np.random.get_state()
        with torch.random.fork_rng(devices=[]):
            random.seed(seed)
            np.random.seed(seed % 2**32)
            torch.manual_seed(seed)
            try:
                return self.dataset[index]
            finally:
                random.setstate(python_state)
                np.random.set_state(numpy_state)


class TeacherWarmup(Dataset):
    """Item i fills the teacher cache of the dataset's i-th teacher triplet (one per worker call)."""

    def __init__(self, dataset: Any, indices: list[int]) -> None:
        self.dataset = dataset
        self.indices = indices

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, position: int) -> bool:
        return self.dataset.prepare_teacher(self.indices[position])


class EpochSampler(Sampler):
    """Epoch e visits a permutation drawn from (seed, e) (weighted draws when the data mix has weights),
    split across ranks; ``skip`` resumes part-way through an epoch."""

    def __init__(self, dataset: Dataset, seed: int, rank: int, world: int) -> None:
        self.size = len(dataset)  # type: ignore[arg-type]
        self.weights = getattr(dataset, "weights", None)
        self.seed = seed
        self.rank = rank
        self.world = world
        self.epoch = 0
        self.skip = 0

    def _order(self) -> list[int]:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        if self.weights is not None:
            weights = torch.as_tensor(self.weights, dtype=torch.double)
            order = torch.multinomial(weights, self.size, replacement=True, generator=generator)
        else:
            order = torch.randperm(self.size, generator=generator)
        per_rank = math.ceil(self.size / self.world)
        padded = torch.cat([order, order[: per_rank * self.world - self.size]]) if per_rank * self.world > self.size else order
        return padded[self.rank :: self.world].tolist()

    def __len__(self) -> int:
        return math.ceil(self.size / self.world)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        order = self._order()
        for position in range(self.skip, len(order)):
            yield order[position], (self.seed * 1_000_003 + self.epoch) * 10_000_019 + position * self.world + self.rank


def seed_worker(worker_id: int) -> None:
    np.random.seed(torch.initial_seed() % 2**32)
