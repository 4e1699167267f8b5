"""The training loop of §3.4–3.5: interpolation losses, instance-level adversarial training, runs.

A run directory holds ``config.json`` (the resolved configuration and the command that made it),
``metrics.jsonl`` (training losses and validation scores), ``samples/`` (image grids) and
``checkpoints/last.pt`` (model, discriminator, optimisers, scheduler, step and RNG states,
written atomically) and, for a run started from ``--init-weights``, ``init_from.json`` (that
file's sha256 and recipe, copied onto the cards of weights exported from the run). ``resume``
continues a run exactly where its checkpoint left it.

The same code runs under ``torchrun --nproc_per_node=N``: each process trains on its share of
every epoch through DistributedDataParallel; only rank 0 logs, validates and writes checkpoints.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import random
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler

from vfi_cli.config import ModelConfig
from vfi_cli.errors import VfiError, first_line
from vfi_cli.model.features import init_from_resnet18, load_resnet18_state
from vfi_cli.model.network import Interpolator, InterpolatorOutput

CHECKPOINT_FORMAT = "vfi-train-checkpoint/1"
_CHECKPOINT_KEYS = {"step", "epoch", "batch_in_epoch", "config", "model", "optimizer_g", "scheduler", "rng"}
ADVERSARIAL_MODES = ("none", "image", "instance")
INIT_FROM_FILE = "init_from.json"


@dataclass
class LossWeights:
    """λ0..λ4 of Eq. 7–8 (the paper's defaults), the optional flow teacher's starting weight and
    the weight of a squared-error term that the paper does not have (off by default)."""

    photometric: float = 1.0
    perceptual: float = 1.0
    smoothness: float = 0.01
    discriminator: float = 0.1
    adversarial: float = 0.01
    teacher: float = 1.0
    teacher_mask: float = 0.1  # a network teacher's blending mask, beside its flows (``teacher``)
    mse: float = 0.0


@dataclass
class TrainConfig:
    """Everything a run depends on; saved to ``config.json`` so a run can be resumed or repeated."""

    run_dir: str
    data: list[dict[str, Any]] = field(default_factory=lambda: [{"kind": "synthetic", "root": None, "weight": 1.0}])
    model: dict[str, Any] = field(default_factory=lambda: ModelConfig().to_dict())
    crop: int = 256
    train_scale: float | None = None
    batch_size: int = 8
    steps: int | None = None
    epochs: int | None = None
    lr: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)
    lr_decay: float = 0.1
    lr_decay_epochs: int = 10
    lr_floor: float = 1e-8
    adversarial: str = "instance"
    proposals: str = "motion"
    num_rois: int = 16
    roi_size: int = 64
    d_steps: int = 2
    d_channels: int = 64
    d_lr: float = 1e-4
    real_noise: float = 0.1
    noise_decay_steps: int = 10_000
    flow_teacher: str | None = None  # dis, rife:PATH or vfi:WEIGHTS (vfi_cli.train.teachers)
    teacher_decay_steps: int = 5_000
    clip_starts: int | None = None  # at most this many start frames per video clip
    losses: LossWeights = field(default_factory=LossWeights)
    feature_init: str = "learned"
    init_weights: str | None = None  # start the generator from these weights (fine-tuning)
    resnet18_weights: str | None = None
    vgg_weights: str | None = None
    detector_weights: str | None = None
    allow_download: bool = False
    cache_dir: str | None = None
    workers: int = 2
    log_every: int = 10
    val_every: int = 500
    val_triplets: int = 32
    checkpoint_every: int = 250
    sample_every: int = 500
    seed: int = 0
    device: str = "auto"
    amp: bool = True
    cpu_amp: bool = False  # bf16 autocast on the CPU as well (about 2.7× faster steps on AMX / AVX-512 BF16 CPUs)
    command: str = ""
    perceptual_source: str = ""  # filled in by the trainer: which network the perceptual loss used
    proposal_source: str = ""  # filled in by the trainer: where the RoIs came from

    def __post_init__(self) -> None:
        from vfi_cli.train.rundir import check_config_values

        if isinstance(self.losses, dict):
            self.losses = LossWeights(**self.losses)
        self.betas = tuple(self.betas)  # type: ignore[assignment]
        check_config_values(self)
        if self.adversarial not in ADVERSARIAL_MODES:
            raise VfiError(f"--adversarial must be one of {', '.join(ADVERSARIAL_MODES)}")
        if (self.steps is None) == (self.epochs is None):
            raise VfiError("give exactly one of --steps and --epochs")
        if self.roi_size < 32:
            raise VfiError("--roi-size must be at least 32 (the discriminator's smallest input)")
        try:
            model = ModelConfig.from_dict(self.model)
        except ValueError as exc:
            raise VfiError(f"the run's model config: {exc}") from None
        if self.crop % (model.stride * model.flow_downsample):
            raise VfiError(f"--crop {self.crop} must be a multiple of the network's stride {model.stride * model.flow_downsample}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    @property
    def run_path(self) -> Path:
        return Path(self.run_dir)


@dataclass
class TrainResult:
    step: int
    epoch: int
    last_metrics: dict[str, float]
    checkpoint: Path | None
    stopped_early: bool = False


# ----------------------------------------------------------------------------- data order


class _SeededItems(Dataset):
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


class _TeacherWarmup(Dataset):
    """Item i fills the teacher cache of the dataset's i-th teacher triplet (one per worker call)."""

    def __init__(self, dataset: Any, indices: list[int]) -> None:
        self.dataset = dataset
        self.indices = indices

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, position: int) -> bool:
        return self.dataset.prepare_teacher(self.indices[position])


class _EpochSampler(Sampler):
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


def _seed_worker(worker_id: int) -> None:
    np.random.seed(torch.initial_seed() % 2**32)


# ----------------------------------------------------------------------------- setup


@dataclass
class _Distributed:
    rank: int = 0
    world: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def main(self) -> bool:
        return self.rank == 0


def _setup_distributed(device_name: str) -> _Distributed:
    from vfi_cli.engine.runner import resolve_device

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return _Distributed(device=resolve_device(device_name))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() and device_name != "cpu"
    if not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo")
    device = torch.device("cuda", local_rank) if use_cuda else torch.device("cpu")
    if use_cuda:
        torch.cuda.set_device(device)
    return _Distributed(rank=dist.get_rank(), world=dist.get_world_size(), device=device)


def _load_initial_weights(model: Interpolator, path: Path) -> dict[str, Any]:
    """Copy a weights file into the generator; its architecture (every tensor's name and shape) must be the run's.

    Returns the file's provenance (name, sha256, recipe from its card), which the run keeps so that
    weights exported from a fine-tuning run still name every stage that made them.
    """
    from vfi_cli.model.weights import load_weights, sha256_file

    loaded, card = load_weights(path)
    state = loaded.state_dict()
    if state.keys() != model.state_dict().keys() or any(state[k].shape != v.shape for k, v in model.state_dict().items()):
        raise VfiError(f"--init-weights {path} has another architecture than the run's model config; pass its config with --model-config")
    model.load_state_dict({k: v.float() for k, v in state.items()})
    return {"file": Path(path).name, "sha256": card.get("sha256") or sha256_file(Path(path)), "recipe": card.get("recipe", {})}


def _lr_factor(config: TrainConfig) -> Callable[[int], float]:
    """×lr_decay every lr_decay_epochs epochs, never below lr_floor (§3.5)."""

    def factor(epoch: int) -> float:
        return max(config.lr_decay ** (epoch // config.lr_decay_epochs), config.lr_floor / config.lr)

    return factor


def _decay(start: float, steps: int, step: int) -> float:
    """Linear decay from ``start`` to 0 over ``steps`` steps."""
    return start * max(0.0, 1.0 - step / steps) if steps > 0 else 0.0


def _rng_state() -> dict[str, Any]:
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": [kind, torch.from_numpy(np.asarray(keys, dtype=np.int64)), int(pos), int(has_gauss), float(cached)],
        "python": [version, list(internal), gauss],
    }


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))


def _atomic_save(obj: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".partial")
    torch.save(obj, temporary)
    os.replace(temporary, path)


def load_checkpoint(path: Path) -> dict[str, Any]:
    """A training checkpoint, read with ``weights_only=True`` (tensors and plain values only)."""
    if not Path(path).is_file():
        raise VfiError(f"checkpoint not found: {path}")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file gets the same one-line answer
        raise VfiError(f"unreadable checkpoint {path}: {first_line(exc)}") from exc
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != CHECKPOINT_FORMAT:
        raise VfiError(f"{path} is not a vfi training checkpoint")
    missing = sorted(_CHECKPOINT_KEYS - checkpoint.keys())
    if missing or not isinstance(checkpoint.get("config"), dict) or not isinstance(checkpoint.get("model"), dict):
        raise VfiError(f"checkpoint {path} is incomplete (missing {', '.join(missing) or 'a valid config or model'})")
    return checkpoint


def _unwrap(module: nn.Module) -> nn.Module:
    return module.module if isinstance(module, nn.parallel.DistributedDataParallel) else module


# ----------------------------------------------------------------------------- the loop


class Trainer:
    """Owns the models, optimisers, data and the run directory of one training run."""

    def __init__(self, config: TrainConfig, resume: bool = False) -> None:
        from vfi_cli.train.data import DataSpec, build_dataset, collate_triplets
        from vfi_cli.train.losses import PerceptualLoss

        self.config = config
        self.env = _setup_distributed(config.device)
        self.run = config.run_path
        checkpoint = None
        if resume:
            checkpoint = load_checkpoint(self.run / "checkpoints" / "last.pt")
        elif (self.run / "checkpoints" / "last.pt").exists():
            raise VfiError(f"{self.run} already holds a run; pass --resume to continue it or choose another --run-dir")
        torch.manual_seed(config.seed + self.env.rank)
        np.random.seed(config.seed + self.env.rank)
        random.seed(config.seed + self.env.rank)

        # Data specs first: a wrong --data root is reported before anything slow is built.
        specs = [DataSpec(kind=d["kind"], root=Path(d["root"]) if d.get("root") else None, weight=d.get("weight", 1.0)) for d in config.data]
        model = Interpolator.from_config(ModelConfig.from_dict(config.model))
        init_from = None
        if config.init_weights and checkpoint is None:
            init_from = _load_initial_weights(model, Path(config.init_weights))
        if config.feature_init == "resnet18":
            path = Path(config.resnet18_weights) if config.resnet18_weights else None
            init_from_resnet18(model.features, load_resnet18_state(path, allow_download=config.allow_download))
        elif config.feature_init != "learned":
            raise VfiError("--feature-init must be learned or resnet18")
        self.model = model.to(self.env.device)
        self.discriminator: nn.Module | None = None
        if config.adversarial != "none":
            from vfi_cli.train.discriminator import PatchDiscriminator

            self.discriminator = PatchDiscriminator(config.d_channels).to(self.env.device)
        self.optimizer_g = torch.optim.Adam(self.model.parameters(), lr=config.lr, betas=config.betas)
        self.optimizer_d = (
            torch.optim.Adam(self.discriminator.parameters(), lr=config.d_lr, betas=config.betas)
            if self.discriminator is not None
            else None
        )
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer_g, _lr_factor(config))
        self.perceptual = PerceptualLoss(
            Path(config.vgg_weights) if config.vgg_weights else None, allow_download=config.allow_download
        ).to(self.env.device)

        cache = Path(config.cache_dir) if config.cache_dir else self.run / "cache"
        common = dict(
            crop=config.crop, cache_dir=cache, proposals=config.proposals, num_rois=config.num_rois,
            flow_teacher=config.flow_teacher, seed=config.seed, detector_weights=Path(config.detector_weights) if config.detector_weights else None,
            allow_download=config.allow_download, train_scale=config.train_scale,
            stride=Interpolator.from_config(ModelConfig.from_dict(config.model)).multiple(), clip_starts=config.clip_starts,
        )
        self.train_data = build_dataset(specs, split="train", **common)
        self.val_data = build_dataset(specs, split="val", **common) if self.env.main else None
        self.sampler = _EpochSampler(self.train_data, config.seed, self.env.rank, self.env.world)
        self.loader = DataLoader(
            _SeededItems(self.train_data), batch_size=config.batch_size, sampler=self.sampler, num_workers=config.workers,
            collate_fn=collate_triplets, worker_init_fn=_seed_worker, drop_last=True, pin_memory=self.env.device.type == "cuda",
        )
        if len(self.loader) == 0:
            raise VfiError(f"the training data has {len(self.train_data)} triplets, fewer than one batch of {config.batch_size}")
        self.total_steps = config.steps if config.steps is not None else config.epochs * len(self.loader)

        self.step = 0
        self.epoch = 0
        self.batch_in_epoch = 0
        self.last_metrics: dict[str, float] = {}
        if checkpoint is not None:
            try:
                self._restore(checkpoint)
            except (RuntimeError, KeyError, TypeError, ValueError, IndexError) as exc:
                raise VfiError(f"{self.run / 'checkpoints' / 'last.pt'} does not fit this run: {first_line(exc)}") from None
        if self.env.world > 1:
            self.model = nn.parallel.DistributedDataParallel(self.model, device_ids=[self.env.device.index] if self.env.device.type == "cuda" else None)
            if self.discriminator is not None:
                self.discriminator = nn.parallel.DistributedDataParallel(
                    self.discriminator, device_ids=[self.env.device.index] if self.env.device.type == "cuda" else None
                )
        config.perceptual_source = self.perceptual.source
        proposer = getattr(self.train_data, "proposer", None)
        config.proposal_source = proposer.source if proposer is not None else config.proposals
        if self.env.main:
            self.run.mkdir(parents=True, exist_ok=True)
            (self.run / "config.json").write_text(json.dumps(config.to_dict(), indent=2) + "\n")
            if init_from is not None:
                (self.run / INIT_FROM_FILE).write_text(json.dumps(init_from, indent=1) + "\n")

    # -- state

    def _state(self) -> dict[str, Any]:
        return {
            "format": CHECKPOINT_FORMAT,
            "step": self.step,
            "epoch": self.epoch,
            "batch_in_epoch": self.batch_in_epoch,
            "config": self.config.to_dict(),
            "model": _unwrap(self.model).state_dict(),
            "discriminator": _unwrap(self.discriminator).state_dict() if self.discriminator is not None else {},
            "optimizer_g": self.optimizer_g.state_dict(),
            "optimizer_d": self.optimizer_d.state_dict() if self.optimizer_d is not None else {},
            "scheduler": self.scheduler.state_dict(),
            "rng": _rng_state(),
            "last_metrics": self.last_metrics,
        }

    def _restore(self, checkpoint: dict[str, Any]) -> None:
        self.model.load_state_dict(checkpoint["model"])
        if self.discriminator is not None:
            self.discriminator.load_state_dict(checkpoint["discriminator"])
            self.optimizer_d.load_state_dict(checkpoint["optimizer_d"])  # type: ignore[union-attr]
        self.optimizer_g.load_state_dict(checkpoint["optimizer_g"])
        self.scheduler.load_state_dict(checkpoint["scheduler"])
        self.step = checkpoint["step"]
        self.epoch = checkpoint["epoch"]
        self.batch_in_epoch = checkpoint["batch_in_epoch"]
        self.last_metrics = dict(checkpoint.get("last_metrics", {}))
        _set_rng_state(checkpoint["rng"])

    def save_checkpoint(self) -> Path | None:
        if not self.env.main:
            return None
        path = self.run / "checkpoints" / "last.pt"
        _atomic_save(self._state(), path)
        return path

    # -- one step

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.config.amp and self.env.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        if self.config.cpu_amp and self.env.device.type == "cpu":
            return torch.autocast("cpu", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _generator_losses(self, out: InterpolatorOutput, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        from vfi_cli.train.losses import distillation_loss, photometric_loss, smoothness_loss, squared_error, teacher_flow_loss

        w = self.config.losses
        target = batch["target"]
        losses = {
            "photometric": w.photometric * (photometric_loss(out.coarse.float(), target) + photometric_loss(out.refined.float(), target)),
            "perceptual": w.perceptual * (self.perceptual(out.coarse.float(), target) + self.perceptual(out.refined.float(), target)),
            "smoothness": w.smoothness * smoothness_loss(out.flow1.float(), out.flow2.float(), out.mask.float()),
        }
        if w.mse > 0:
            losses["mse"] = w.mse * (squared_error(out.coarse.float(), target) + squared_error(out.refined.float(), target))
        if self.config.flow_teacher is not None:
            weight = _decay(w.teacher, self.config.teacher_decay_steps, self.step)
            if weight > 0 and batch["teacher"].shape[1] == 5:  # DIS: flows and a confidence
                losses["teacher"] = weight * teacher_flow_loss(out.flow1.float(), out.flow2.float(), batch["teacher"])
            elif weight > 0:  # a network teacher: flows, mask and their weights
                flow_term, mask_term = distillation_loss(out.flow1.float(), out.flow2.float(), out.mask.float(), batch["teacher"])
                losses["teacher"] = weight * flow_term
                losses["teacher_mask"] = _decay(w.teacher_mask, self.config.teacher_decay_steps, self.step) * mask_term
        return losses

    def _patches(self, out: InterpolatorOutput, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        """(real, fake) discriminator inputs: RoIs zoomed to roi_size (instance) or whole crops (image)."""
        if self.config.adversarial == "image":
            return batch["target"], out.refined.float()
        from vfi_cli.train.proposals import roi_patches

        boxes = batch["boxes"]
        fake = roi_patches(out.refined.float(), boxes, 1.0, self.config.roi_size)
        scales = [float(s) for s in batch["hr_scale"]]
        real = roi_patches(batch["target_hr"], boxes, scales, self.config.roi_size)
        return real, fake

    def train_step(self, batch: dict[str, Any]) -> dict[str, float]:
        from vfi_cli.train.discriminator import add_instance_noise
        from vfi_cli.train.losses import hinge_discriminator_loss, hinge_generator_loss

        device = self.env.device
        batch = {k: ([x.to(device, non_blocking=True) for x in v] if isinstance(v, list) else v.to(device, non_blocking=True)) for k, v in batch.items()}
        self.model.train()
        with self._autocast():
            out = self.model(batch["image1"], batch["image2"], batch["t"])
        losses = self._generator_losses(out, batch)
        logged: dict[str, float] = {}
        if self.discriminator is not None:
            real, fake = self._patches(out, batch)
            noise = _decay(self.config.real_noise, self.config.noise_decay_steps, self.step)
            generator = torch.Generator(device=real.device).manual_seed(self.config.seed * 1_000_003 + self.step)
            for _ in range(self.config.d_steps):
                with self._autocast():
                    d_real = self.discriminator(add_instance_noise(real.detach(), noise, generator))
                    d_fake = self.discriminator(fake.detach())
                loss_d = self.config.losses.discriminator * hinge_discriminator_loss(d_real.float(), d_fake.float())
                self.optimizer_d.zero_grad(set_to_none=True)  # type: ignore[union-attr]
                loss_d.backward()
                self.optimizer_d.step()  # type: ignore[union-attr]
            logged["discriminator"] = float(loss_d.detach())
            with self._autocast():
                scores = self.discriminator(fake)
            losses["adversarial"] = self.config.losses.adversarial * hinge_generator_loss(scores.float())
        total = sum(losses.values())
        if not torch.isfinite(total):
            raise _NonFinite({k: float(v.detach()) for k, v in losses.items()})
        self.optimizer_g.zero_grad(set_to_none=True)
        total.backward()
        self.optimizer_g.step()
        if self.discriminator is not None:
            self.optimizer_d.zero_grad(set_to_none=True)  # type: ignore[union-attr]  # drop D's grads from the G step
        logged.update({k: float(v.detach()) for k, v in losses.items()})
        logged["total"] = float(total.detach())
        return logged

    # -- run

    def prepare_teacher(self, on_item: Callable[[int, int], None] | None = None) -> int:
        """Run a network teacher once over every triplet it covers and cache its outputs, in
        ``workers`` processes, so that training never waits for it; returns how many it covers.
        Cached triplets are skipped, so this is cheap on a resumed run."""
        indices = self.train_data.teacher_indices()
        if not indices:
            return 0
        loader = DataLoader(_TeacherWarmup(self.train_data, indices), batch_size=None, num_workers=self.config.workers)
        covered = 0
        for done, hit in enumerate(loader, 1):
            covered += int(hit)
            if on_item is not None:
                on_item(done, len(indices))
        return covered

    def fit(self, on_step: Callable[[int, int, dict[str, float]], None] | None = None) -> TrainResult:
        """Train until ``total_steps``; Ctrl-C and non-finite losses leave a usable checkpoint."""
        from vfi_cli.evaluation.bench import device_name

        started = time.perf_counter()
        if self.env.main:
            # Each process's log seconds restart at zero; this record lets export sum the wall time
            # and name every machine a resumed run trained on.
            self._log({"event": "start", "step": self.step, "hardware": device_name(self.env.device),
                       "processes": self.env.world, "threads": torch.get_num_threads()})
        try:
            while self.step < self.total_steps:
                self.sampler.epoch = self.epoch
                self.sampler.skip = self.batch_in_epoch * self.config.batch_size  # items, not batches
                for batch in self.loader:
                    logged = self.train_step(batch)
                    self.step += 1
                    self.batch_in_epoch += 1
                    logged["lr"] = self.optimizer_g.param_groups[0]["lr"]
                    self.last_metrics = logged
                    self._after_step(batch, logged, started)
                    if on_step is not None:
                        on_step(self.step, self.total_steps, logged)
                    if self.step >= self.total_steps:
                        break
                else:
                    self.epoch += 1
                    self.batch_in_epoch = 0
                    self.scheduler.step()
        except _NonFinite as exc:
            kept = self.run / "checkpoints" / "last.pt"
            raise VfiError(
                f"training stopped at step {self.step + 1}: a loss is not finite ({exc.losses}); "
                f"the last good checkpoint is {kept if kept.exists() else 'none (none was written yet)'}"
            ) from None
        except KeyboardInterrupt:
            self.save_checkpoint()
            raise
        checkpoint = self.save_checkpoint()
        if self.env.main and self.val_data is not None:
            self._log({"step": self.step, **self.validate()})
        if self.env.world > 1:
            dist.barrier()  # the other processes leave only once rank 0 has written the last checkpoint
        return TrainResult(self.step, self.epoch, self.last_metrics, checkpoint)

    def close(self) -> None:
        """Tear down the process group this trainer joined.

        A process that exits with the gloo group alive can abort in its C++ destructors
        ("terminate called without an active exception"), which fails the whole launch.
        """
        if self.env.world > 1 and dist.is_initialized():
            dist.destroy_process_group()

    def _after_step(self, batch: dict[str, Any], logged: dict[str, float], started: float) -> None:
        if not self.env.main:
            return
        if self.step % self.config.log_every == 0 or self.step == 1:
            self._log({"step": self.step, "epoch": self.epoch, "seconds": round(time.perf_counter() - started, 2), **logged})
        if self.step % self.config.checkpoint_every == 0:
            self.save_checkpoint()
        if self.step % self.config.val_every == 0 and self.val_data is not None:
            self._log({"step": self.step, **self.validate()})
        if self.step % self.config.sample_every == 0:
            self.write_sample(batch)

    def _log(self, record: dict[str, Any]) -> None:
        with open(self.run / "metrics.jsonl", "a") as fh:
            fh.write(json.dumps(record) + "\n")

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """Mean PSNR / SSIM of Ĩt (and of frame blending, for scale) on held-out triplets at t = 0.5."""
        from vfi_cli.evaluation.metrics import psnr, ssim

        model = _unwrap(self.model)
        model.eval()
        assert self.val_data is not None
        count = min(len(self.val_data), self.config.val_triplets)
        if count == 0:
            return {}
        picks = np.linspace(0, len(self.val_data) - 1, count).round().astype(int)
        scores: dict[str, list[float]] = {"val_psnr": [], "val_ssim": [], "val_blend_psnr": []}
        for index in picks:
            item = self.val_data[int(index)]
            image1, image2 = item["image1"][None].to(self.env.device), item["image2"][None].to(self.env.device)
            with self._autocast():
                out = model(image1, image2, item["t"][None].to(self.env.device))
            pred = _to_uint8(out.refined[0])
            truth = _to_uint8(item["target"])
            blend = _to_uint8((item["image1"] + item["image2"]) / 2)
            scores["val_psnr"].append(psnr(pred, truth))
            scores["val_ssim"].append(ssim(pred, truth))
            scores["val_blend_psnr"].append(psnr(blend, truth))
        model.train()
        return {k: float(np.mean(v)) for k, v in scores.items()}

    @torch.no_grad()
    def write_sample(self, batch: dict[str, Any]) -> Path:
        """inputs / Ît / Ĩt / ground truth for the first triplets of a batch, RoIs drawn on Ĩt."""
        import cv2

        model = _unwrap(self.model)
        model.eval()
        rows = []
        device = self.env.device
        n = min(4, batch["image1"].shape[0])
        with self._autocast():
            out = model(batch["image1"][:n].to(device), batch["image2"][:n].to(device), batch["t"][:n].to(device))
        model.train()
        for i in range(n):
            refined = np.ascontiguousarray(_to_uint8(out.refined[i]))
            for x1, y1, x2, y2 in batch["boxes"][i].tolist():
                cv2.rectangle(refined, (int(x1), int(y1)), (int(x2), int(y2)), (255, 64, 64), 1)
            tiles = [_to_uint8(batch["image1"][i]), _to_uint8(batch["image2"][i]), _to_uint8(out.coarse[i]), refined, _to_uint8(batch["target"][i])]
            rows.append(np.concatenate(tiles, axis=1))
        grid = np.concatenate(rows, axis=0)
        path = self.run / "samples" / f"step_{self.step:07d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(path), grid[:, :, ::-1])
        return path


class _NonFinite(Exception):
    def __init__(self, losses: dict[str, float]) -> None:
        super().__init__(str(losses))
        self.losses = losses


def _to_uint8(image: torch.Tensor) -> np.ndarray:
    return image.detach().float().clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).cpu().numpy()


def run_history(metrics_file: Path) -> dict[str, Any]:
    """Wall time summed over every process that trained a run, and the machines they ran on, read
    from its ``metrics.jsonl`` (each process counts seconds from its own start)."""
    wall, segment, hardware = 0.0, 0.0, []
    for line in metrics_file.read_text().splitlines():
        record = json.loads(line)
        if record.get("event") == "start":
            wall, segment = wall + segment, 0.0
            described = f"{record['hardware']}, {record['processes']} process(es) × {record['threads']} threads"
            if described not in hardware:
                hardware.append(described)
        elif "seconds" in record:
            if record["seconds"] < segment:  # a restart logged before start records existed
                wall += segment
            segment = record["seconds"]
    return {"wall_seconds": round(wall + segment, 1), "hardware": hardware}


def export_checkpoint(
    checkpoint_path: Path, destination: Path, half: bool = False, metrics: dict[str, Any] | None = None,
    overwrite: bool = True,
) -> dict[str, Any]:
    """Write a checkpoint's generator as ``vfi interpolate`` weights, with a card naming the recipe,
    the training time and hardware (from the run's log when it sits beside the checkpoint), and
    the last training metrics plus any given ``metrics`` (e.g. evaluation tables)."""
    from vfi_cli.model.weights import save_weights

    from vfi_cli.model.weights import check_finite, model_config

    checkpoint = load_checkpoint(checkpoint_path)
    config = model_config(checkpoint["config"].get("model"), f"checkpoint {checkpoint_path}")
    check_finite(checkpoint["model"], f"checkpoint {checkpoint_path}")
    model = Interpolator.from_config(config)
    try:
        model.load_state_dict(checkpoint["model"])
    except RuntimeError as exc:
        raise VfiError(f"checkpoint {checkpoint_path} does not fit its config: {first_line(exc)}") from None
    recipe = {
        "command": checkpoint["config"].get("command", ""),
        "steps": checkpoint["step"],
        "epochs": checkpoint["epoch"],
        "train_config": checkpoint["config"],
    }
    run = Path(checkpoint_path).parent.parent
    if (run / "metrics.jsonl").is_file():
        recipe.update(run_history(run / "metrics.jsonl"))
    if (run / INIT_FROM_FILE).is_file():
        recipe["init_from"] = json.loads((run / INIT_FROM_FILE).read_text())
    return save_weights(
        model, config, destination, recipe=recipe, metrics={"training": checkpoint.get("last_metrics", {}), **(metrics or {})},
        dtype=torch.float16 if half else torch.float32, overwrite=overwrite,
    )


def command_line() -> str:
    """The command that started this process, for the run's config and the weights card."""
    return " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])
