"""The run directory, in one place: its layout, its configuration, its checkpoints.

``RUN/config.json`` holds the resolved configuration and the command that made it,
``metrics.jsonl`` the training losses and validation scores, ``samples/`` image grids,
``checkpoints/last.pt`` the model, discriminator, optimisers, scheduler, step and every RNG state
(written atomically, read with ``weights_only=True``), ``cache/`` the decoded clips and teacher
outputs, and, for a run started from weights, ``init_from.json`` (that file's sha256 and recipe,
copied onto the cards of weights exported from the run). A run resumed from its checkpoint ends
exactly as an uninterrupted one would.
"""

from __future__ import annotations

import json
import os
import random
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vfi_cli.config import TrainConfig
from vfi_cli.errors import VfiError

CHECKPOINT_FORMAT = "vfi-train-checkpoint/1"
# What --resume may change: the run's length and how it logs, never what it learns.
RESUME_OVERRIDABLE = {"steps", "epochs", "workers", "device", "log_every", "val_every", "checkpoint_every", "sample_every", "val_triplets"}


@dataclass(frozen=True)
class RunDirectory:
    """The paths of one run's files."""

    root: Path

    @classmethod
    def of(cls, path: Path | str) -> RunDirectory:
        """The run holding ``path``: a run directory itself, or its checkpoint file."""
        path = Path(path)
        return cls(path if path.is_dir() or path.suffix != ".pt" else path.parent.parent)

    @property
    def config(self) -> Path:
        return self.root / "config.json"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.jsonl"

    @property
    def checkpoint(self) -> Path:
        return self.root / "checkpoints" / "last.pt"

    @property
    def init_from(self) -> Path:
        return self.root / "init_from.json"

    @property
    def cache(self) -> Path:
        return self.root / "cache"

    def sample(self, step: int) -> Path:
        return self.root / "samples" / f"step_{step:07d}.png"


def command_line() -> str:
    """The command that started this process, for the run's config and the weights card."""
    return " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])


def resolve_config(run_dir: Path, resume: bool, given: dict[str, Any]) -> TrainConfig:
    """The run's configuration: the options ``given`` (TrainConfig fields) over the defaults, or
    over the saved config on ``resume``, where only :data:`RESUME_OVERRIDABLE` may change."""
    given = {k: v for k, v in given.items() if v is not None}
    if resume:
        saved_path = RunDirectory(run_dir).config
        if not saved_path.exists():
            raise VfiError(f"nothing to resume: {saved_path} is missing")
        saved = json.loads(saved_path.read_text())
        changed = sorted(k for k, v in given.items() if k not in RESUME_OVERRIDABLE and saved.get(k) != v)
        if changed:
            raise VfiError(f"--resume keeps the run's settings; cannot change {', '.join(changed)}")
        if "steps" in given or "epochs" in given:
            saved["steps"], saved["epochs"] = given.get("steps"), given.get("epochs")
        saved.update({k: v for k, v in given.items() if k in RESUME_OVERRIDABLE and k not in ("steps", "epochs")})
        saved["command"] = (saved.get("command", "") + " ; " + command_line()).strip(" ;")
        return TrainConfig.from_dict(saved)
    return TrainConfig(run_dir=str(run_dir), command=command_line(), **given)


def load_initial_weights(model: torch.nn.Module, path: Path) -> dict[str, Any]:
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


def rng_state() -> dict[str, Any]:
    """Every random generator's state (torch, CUDA, numpy, Python) as tensors and plain values (``weights_only`` loads them)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": [kind, torch.from_numpy(np.asarray(keys, dtype=np.int64)), int(pos), int(has_gauss), float(cached)],
        "python": [version, list(internal), gauss],
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` saved."""
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))


def atomic_save(obj: Any, path: Path) -> None:
    """``torch.save`` under a temporary name, then renamed: a crash never leaves half a checkpoint."""
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
        raise VfiError(f"unreadable checkpoint {path}: {str(exc).splitlines()[0]}") from exc
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != CHECKPOINT_FORMAT:
        raise VfiError(f"{path} is not a vfi training checkpoint")
    return checkpoint
