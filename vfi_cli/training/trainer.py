"""The training loop of §3.4–3.5: one process's models, optimisers, data and steps.

The pieces it drives live beside it: :mod:`.items` (the data), :mod:`.sampling` (the order),
:mod:`.objective` (the losses), :mod:`.checkpoint` (the run directory), :mod:`.distributed`
(several processes under ``torchrun``: each trains on its share of every epoch, rank 0 alone
logs, validates and checkpoints), :mod:`.export` (weights from a run).
"""

from __future__ import annotations

import contextlib
import json
import random
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from vfi_cli.backends.eager import device_name
from vfi_cli.config import ModelConfig, TrainConfig
from vfi_cli.datasets.base import DataSpec
from vfi_cli.errors import VfiError, first_line
from vfi_cli.metrics import psnr, ssim
from vfi_cli.model.features import init_from_resnet18, load_resnet18_state
from vfi_cli.model.network import Interpolator
from vfi_cli.results import TrainResult
from vfi_cli.training.checkpoint import (
    CHECKPOINT_FORMAT,
    RunDirectory,
    atomic_save,
    load_checkpoint,
    load_initial_flow, load_initial_weights,
    rng_state,
    set_rng_state,
)
from vfi_cli.training.discriminator import PatchDiscriminator, add_instance_noise
from vfi_cli.training.distributed import barrier, leave, setup_distributed, unwrap, wrap
from vfi_cli.training.items import build_dataset, collate_triplets
from vfi_cli.training.losses import PerceptualLoss, hinge_discriminator_loss, hinge_generator_loss
from vfi_cli.training.objective import NonFinite, Objective, decay
from vfi_cli.training.sampling import EpochSampler, SeededItems, TeacherWarmup, seed_worker


def _lr_factor(config: TrainConfig) -> Callable[[int], float]:
    """×lr_decay every lr_decay_epochs epochs, never below lr_floor (§3.5)."""

    def factor(epoch: int) -> float:
        return max(config.lr_decay ** (epoch // config.lr_decay_epochs), config.lr_floor / config.lr)

    return factor


class Trainer:
    """Owns the models, optimisers, data and the run directory of one training run."""

    def __init__(self, config: TrainConfig, resume: bool = False) -> None:
        self.config = config
        self.env = setup_distributed(config.device)
        self.run = RunDirectory(config.run_path)
        checkpoint = None
        if resume:
            checkpoint = load_checkpoint(self.run.checkpoint)
        elif self.run.checkpoint.exists():
            raise VfiError(f"{self.run.root} already holds a run; pass --resume to continue it or choose another --run-dir")
        torch.manual_seed(config.seed + self.env.rank)
        np.random.seed(config.seed + self.env.rank)
        random.seed(config.seed + self.env.rank)

        # Data specs first: a wrong --data root is reported before anything slow is built.
        specs = [DataSpec(kind=d["kind"], root=Path(d["root"]) if d.get("root") else None, weight=d.get("weight", 1.0)) for d in config.data]
        architecture = ModelConfig.from_dict(config.model)
        model = Interpolator.from_config(architecture)
        init_from = None
        if config.init_weights and checkpoint is None:
            init_from = load_initial_weights(model, Path(config.init_weights), architecture)
        if config.init_flow and checkpoint is None:
            init_from = load_initial_flow(model, Path(config.init_flow))
        if config.feature_init == "resnet18":
            path = Path(config.resnet18_weights) if config.resnet18_weights else None
            init_from_resnet18(model.features, load_resnet18_state(path, allow_download=config.allow_download))
        if config.stage == "flow":  # the flow stage leaves the features and synthesis as they start
            model.features.requires_grad_(False)
            model.synthesis.requires_grad_(False)
        self.model = model.to(self.env.device)
        self.discriminator: nn.Module | None = None
        if config.adversarial != "none" and config.stage == "full":
            self.discriminator = PatchDiscriminator(config.d_channels).to(self.env.device)
        self.optimizer_g = torch.optim.Adam(self.model.parameters(), lr=config.lr, betas=config.betas)
        self.optimizer_d = (
            torch.optim.Adam(self.discriminator.parameters(), lr=config.d_lr, betas=config.betas)
            if self.discriminator is not None
            else None
        )
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer_g, _lr_factor(config))
        self.perceptual = (
            PerceptualLoss(Path(config.vgg_weights) if config.vgg_weights else None, allow_download=config.allow_download).to(self.env.device)
            if config.stage == "full"
            else None
        )
        self.objective = Objective(config, self.perceptual)

        cache = Path(config.cache_dir) if config.cache_dir else self.run.cache
        common = dict(
            crop=config.crop, cache_dir=cache, proposals=config.proposals, num_rois=config.num_rois,
            flow_teacher=config.flow_teacher, seed=config.seed, detector_weights=Path(config.detector_weights) if config.detector_weights else None,
            allow_download=config.allow_download, train_scale=config.train_scale,
            stride=model.multiple(), clip_starts=config.clip_starts,
            motion_crops=config.motion_crops,
        )
        self.train_data = build_dataset(specs, split="train", **common)
        self.val_data = build_dataset(specs, split="val", **common) if self.env.main else None
        self.sampler = EpochSampler(self.train_data, config.seed, self.env.rank, self.env.world)
        self.loader = DataLoader(
            SeededItems(self.train_data), batch_size=config.batch_size, sampler=self.sampler, num_workers=config.workers,
            collate_fn=collate_triplets, worker_init_fn=seed_worker, drop_last=True, pin_memory=self.env.device.type == "cuda",
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
                raise VfiError(f"{self.run.checkpoint} does not fit this run: {first_line(exc)}") from None
        self.model = wrap(self.model, self.env)
        if self.discriminator is not None:
            self.discriminator = wrap(self.discriminator, self.env)
        config.perceptual_source = self.perceptual.source if self.perceptual is not None else "none (flow stage)"
        proposer = getattr(self.train_data, "proposer", None)
        config.proposal_source = proposer.source if proposer is not None else config.proposals
        if self.env.main:
            self.run.root.mkdir(parents=True, exist_ok=True)
            self.run.config.write_text(json.dumps(config.to_dict(), indent=2) + "\n")
            if init_from is not None:
                self.run.init_from.write_text(json.dumps(init_from, indent=1) + "\n")

    # -- state

    def _state(self) -> dict[str, Any]:
        return {
            "format": CHECKPOINT_FORMAT,
            "step": self.step,
            "epoch": self.epoch,
            "batch_in_epoch": self.batch_in_epoch,
            "config": self.config.to_dict(),
            "model": unwrap(self.model).state_dict(),
            "discriminator": unwrap(self.discriminator).state_dict() if self.discriminator is not None else {},
            "optimizer_g": self.optimizer_g.state_dict(),
            "optimizer_d": self.optimizer_d.state_dict() if self.optimizer_d is not None else {},
            "scheduler": self.scheduler.state_dict(),
            "rng": rng_state(),
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
        set_rng_state(checkpoint["rng"])

    def save_checkpoint(self) -> Path | None:
        if not self.env.main:
            return None
        atomic_save(self._state(), self.run.checkpoint)
        return self.run.checkpoint

    @property
    def refines(self) -> bool:
        """Whether the model runs its synthesis (Ĩt): not in the flow stage, which trains the flow U-Net alone."""
        return self.config.stage == "full"

    # -- one step

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.config.amp and self.env.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        if self.config.cpu_amp and self.env.device.type == "cpu":
            return torch.autocast("cpu", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def train_step(self, batch: dict[str, Any]) -> dict[str, float]:
        device = self.env.device
        batch = {k: ([x.to(device, non_blocking=True) for x in v] if isinstance(v, list) else v.to(device, non_blocking=True)) for k, v in batch.items()}
        self.model.train()
        with self._autocast():
            out = self.model(batch["image1"], batch["image2"], batch["t"], refine=self.refines)
        losses = self.objective.generator_losses(out, batch, self.step)
        logged: dict[str, float] = {}
        if self.discriminator is not None:
            real, fake = self.objective.patches(out, batch)
            noise = decay(self.config.real_noise, self.config.noise_decay_steps, self.step)
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
            raise NonFinite({k: float(v.detach()) for k, v in losses.items()})
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
        """Run a network teacher once over every triplet it covers and cache its outputs, so that
        training never waits for it; returns how many it covers. On the CPU it runs in ``workers``
        processes, on a GPU in this one. Cached triplets are skipped: cheap on a resumed run."""
        indices = self.train_data.teacher_indices()
        if not indices:
            return 0
        warmup = TeacherWarmup(self.train_data, indices)
        if self.env.device.type == "cuda":
            # On a GPU the teacher runs there, in this process (CUDA does not run in forked workers):
            # RIFE HDv3 takes 1.4 s a 854x480 triplet on one CPU core of this project's machine.
            teacher = self.train_data.teacher
            teacher.use_device(self.env.device)
            try:
                return self._warm(map(warmup.__getitem__, range(len(warmup))), len(indices), on_item)
            finally:
                teacher.use_device("cpu")
        return self._warm(iter(DataLoader(warmup, batch_size=None, num_workers=self.config.workers)), len(indices), on_item)

    @staticmethod
    def _warm(hits: Iterator[bool], total: int, on_item: Callable[[int, int], None] | None) -> int:
        """Count the covered triplets of a teacher warm-up as they are cached, reporting each one."""
        covered = 0
        for done, hit in enumerate(hits, 1):
            covered += int(hit)
            if on_item is not None:
                on_item(done, total)
        return covered

    def fit(self, on_step: Callable[[int, int, dict[str, float]], None] | None = None) -> TrainResult:
        """Train until ``total_steps``; Ctrl-C and non-finite losses leave a usable checkpoint."""
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
        except NonFinite as exc:
            kept = self.run.checkpoint
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
        barrier(self.env)  # the other processes leave only once rank 0 has written the last checkpoint
        return TrainResult(self.step, self.epoch, self.last_metrics, checkpoint)

    def close(self) -> None:
        """Leave the process group this trainer joined (see :func:`~vfi_cli.training.distributed.leave`)."""
        leave(self.env)

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
        with open(self.run.metrics, "a") as fh:
            fh.write(json.dumps(record) + "\n")

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """Mean PSNR / SSIM of Ĩt (Ît in the flow stage; frame blending's for scale) on held-out triplets at t = 0.5."""
        model = unwrap(self.model)
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
                out = model(image1, image2, item["t"][None].to(self.env.device), refine=self.refines)
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

        model = unwrap(self.model)
        model.eval()
        rows = []
        device = self.env.device
        n = min(4, batch["image1"].shape[0])
        with self._autocast():
            out = model(batch["image1"][:n].to(device), batch["image2"][:n].to(device), batch["t"][:n].to(device), refine=self.refines)
        model.train()
        for i in range(n):
            refined = np.ascontiguousarray(_to_uint8(out.refined[i]))
            for x1, y1, x2, y2 in batch["boxes"][i].tolist():
                cv2.rectangle(refined, (int(x1), int(y1)), (int(x2), int(y2)), (255, 64, 64), 1)
            tiles = [_to_uint8(batch["image1"][i]), _to_uint8(batch["image2"][i]), _to_uint8(out.coarse[i]), refined, _to_uint8(batch["target"][i])]
            rows.append(np.concatenate(tiles, axis=1))
        grid = np.concatenate(rows, axis=0)
        path = self.run.sample(self.step)
        path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(path), grid[:, :, ::-1])
        return path


def _to_uint8(image: torch.Tensor) -> np.ndarray:
    return image.detach().float().clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).cpu().numpy()
