"""A run's generator as weights for ``vfi interpolate``: safetensors with a card naming its recipe,
the wall time and hardware of every process that trained it, and the stages it was fine-tuned from."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from vfi_cli.config import ModelConfig
from vfi_cli.errors import VfiError
from vfi_cli.model.network import Interpolator
from vfi_cli.model.weights import save_weights
from vfi_cli.training.checkpoint import RunDirectory, load_checkpoint


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
    checkpoint_path: Path, destination: Path, half: bool = False, metrics: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Write a checkpoint's generator as ``vfi interpolate`` weights, with a card naming the recipe,
    the training time and hardware (from the run's log when it sits beside the checkpoint), and
    the last training metrics plus any given ``metrics`` (e.g. evaluation tables)."""
    checkpoint = load_checkpoint(checkpoint_path)
    config = ModelConfig.from_dict(checkpoint["config"]["model"])
    model = Interpolator.from_config(config)
    model.load_state_dict(checkpoint["model"])
    recipe = {
        "command": checkpoint["config"].get("command", ""),
        "steps": checkpoint["step"],
        "epochs": checkpoint["epoch"],
        "train_config": checkpoint["config"],
    }
    run = RunDirectory.of(checkpoint_path)
    if run.metrics.is_file():
        recipe.update(run_history(run.metrics))
    if run.init_from.is_file():
        recipe["init_from"] = json.loads(run.init_from.read_text())
    return save_weights(
        model, config, destination, recipe=recipe, metrics={"training": checkpoint.get("last_metrics", {}), **(metrics or {})},
        dtype=torch.float16 if half else torch.float32,
    )


def export_weights(
    run: Path, destination: Path, *, half: bool = False, overwrite: bool = False, metrics: Path | dict[str, Any] | None = None
) -> dict[str, Any]:
    """:func:`export_checkpoint` of a run directory (or its checkpoint file), with the checks a user
    needs: ``destination`` must not exist unless ``overwrite``, its folder must; ``metrics`` may be
    a JSON file holding an object. Returns the card."""
    checkpoint = RunDirectory(Path(run)).checkpoint if Path(run).is_dir() else Path(run)
    if str(destination) == "-":
        raise VfiError("OUT '-' (standard output) is not supported: weights and their card are two files; give a name such as model.safetensors")
    if destination.exists() and not overwrite:
        raise VfiError(f"output exists: {destination} (pass --overwrite to replace it)")
    if not destination.parent.resolve().is_dir():
        raise VfiError(f"output directory does not exist: {destination.parent}")
    if isinstance(metrics, (str, Path)):
        source = metrics
        try:
            metrics = json.loads(Path(source).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise VfiError(f"cannot read --metrics {source}: {exc}") from None
        if not isinstance(metrics, dict):
            raise VfiError(f"--metrics {source} must hold a JSON object")
    return export_checkpoint(checkpoint, destination, half=half, metrics=metrics)
