"""A training run's folder and its saved configuration, read back safely.

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
from pathlib import Path
from typing import Any

from vfi_cli.errors import VfiError
from vfi_cli.files import read_json_object

CONFIG_FILE = "config.json"

# Numbers that must be above zero, or at least zero; the rest of a config's numbers need only be finite.
_POSITIVE = {"lr", "d_lr", "lr_decay", "train_scale", "crop", "batch_size", "steps", "epochs", "lr_decay_epochs",
             "num_rois", "roi_size", "d_steps", "d_channels", "noise_decay_steps", "teacher_decay_steps", "clip_starts",
             "log_every", "val_every", "checkpoint_every", "sample_every"}
_NON_NEGATIVE = {"lr_floor", "real_noise", "workers", "val_triplets"}
_AT_MOST_ONE = {"lr_decay", "real_noise"}
# Sizes that allocate memory in proportion (a crop of 65536 is 200 GB a batch, 100000 discriminator channels 1 TB).
_AT_MOST = {"crop": 4096, "batch_size": 4096, "num_rois": 1024, "roi_size": 1024, "d_channels": 1024, "d_steps": 100,
            "workers": 64, "seed": 2**31 - 1}


def read_run_config(run_dir: Path, cache_dir: str | None = None) -> dict[str, Any]:
    """The saved configuration of the run in ``run_dir``, made to read and write only there.

    ``cache_dir`` is a ``--cache-dir`` given on resume (it replaces the saved one).
    """
    path = Path(run_dir) / CONFIG_FILE
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


def absolute_cache_dir(cache_dir: str | None) -> str | None:
    """A ``--cache-dir`` stored absolute, so that resuming from another folder finds the same cache."""
    return None if cache_dir is None else os.path.abspath(cache_dir)


def check_config_values(config: Any) -> None:
    """Refuse, with one line, a training config whose values have the wrong type or range
    (``--lr nan``, a negative batch size in a hand-edited ``config.json`` ...)."""
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        kind = str(field.type).replace(" ", "")
        if kind.endswith("|None"):
            if value is None:
                continue
            kind = kind.removesuffix("|None")
        _check_value(field.name, kind, value)
    losses = getattr(config, "losses", None)
    if losses is not None:
        for field in dataclasses.fields(losses):
            weight = getattr(losses, field.name)
            _check_value(f"loss weight {field.name}", "float", weight)
            if weight < 0:
                raise VfiError(f"loss weight {field.name} must not be negative, got {weight}")
    betas = getattr(config, "betas", ())
    if len(betas) != 2 or not all(isinstance(b, (int, float)) and not isinstance(b, bool) and 0 <= b < 1 for b in betas):
        raise VfiError(f"betas must be two numbers in [0, 1), got {betas!r}")


def _check_value(name: str, kind: str, value: Any) -> None:
    shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
    if kind == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise VfiError(f"{name} must be a finite number, got {shown}")
    elif kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise VfiError(f"{name} must be a whole number, got {shown}")
    elif kind == "str":
        if not isinstance(value, str):
            raise VfiError(f"{name} must be text, got {shown}")
        return
    elif kind == "bool":
        if not isinstance(value, bool):
            raise VfiError(f"{name} must be true or false, got {shown}")
        return
    elif kind.startswith("list"):
        if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
            raise VfiError(f"{name} must be a list of objects, got {shown}")
        return
    elif kind.startswith("dict"):
        if not isinstance(value, dict):
            raise VfiError(f"{name} must be an object, got {shown}")
        return
    else:
        return
    if name in _POSITIVE and value <= 0:
        raise VfiError(f"{name} must be above zero, got {shown}")
    if name in _NON_NEGATIVE and value < 0:
        raise VfiError(f"{name} must not be negative, got {shown}")
    if name in _AT_MOST_ONE and value > 1:
        raise VfiError(f"{name} must be at most 1, got {shown}")
    if name in _AT_MOST and value > _AT_MOST[name]:
        raise VfiError(f"{name} must be at most {_AT_MOST[name]}, got {shown}")
    if name == "seed" and value < 0:
        raise VfiError(f"seed must not be negative, got {shown}")
