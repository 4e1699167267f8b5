"""``vfi train`` from start to end: resolve the run's configuration, build the trainer, fill a
network teacher's cache, train, export. What it has to say goes to a :class:`~vfi_cli.progress.Progress`."""

from __future__ import annotations

import dataclasses
import signal
from pathlib import Path
from typing import Any

from vfi_cli.config import LossWeights, ModelConfig
from vfi_cli.datasets.base import DataSpec
from vfi_cli.errors import Interrupted, VfiError
from vfi_cli.files import check_output_file, check_output_folder, read_json_object
from vfi_cli.progress import SILENT, Progress
from vfi_cli.results import TrainResult
from vfi_cli.training.checkpoint import RunDirectory, resolve_config


def run_training(
    run_dir: Path, *, resume: bool = False, export: Path | None = None, prepare_only: bool = False,
    progress: Progress = SILENT, **options: Any,
) -> TrainResult | None:
    """Train the run in ``run_dir`` with ``options`` (:class:`~vfi_cli.config.TrainConfig` fields);
    see :func:`vfi_cli.api.train` for the arguments. Returns None with ``prepare_only``."""
    check_output_folder(Path(run_dir), "--run-dir")  # before any work: the run must be able to write there
    if export is not None:
        check_output_file(Path(export), "--export")
    try:
        return _run(Path(run_dir), resume, export, prepare_only, progress, _given(options, resume))
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM/SIGHUP/SIGQUIT from the command line: the trainer saved the run
        checkpoint = RunDirectory(Path(run_dir)).checkpoint
        message = (f"Interrupted: the run is saved in {checkpoint}; continue it with --resume." if checkpoint.is_file() else
                   "Interrupted before training began: no checkpoint yet (the clips decoded and teacher outputs cached so far are kept).")
        raise Interrupted(message, getattr(exc, "signum", signal.SIGINT)) from None


def _run(run_dir: Path, resume: bool, export: Path | None, prepare_only: bool, progress: Progress,
         given: dict[str, Any]) -> TrainResult | None:
    from vfi_cli.training.export import export_checkpoint
    from vfi_cli.training.teachers import TeacherSpec
    from vfi_cli.training.trainer import Trainer

    config = resolve_config(run_dir, resume, given)
    if config.flow_teacher:
        TeacherSpec.parse(config.flow_teacher).check()
    trainer = Trainer(config, resume=resume)
    report = progress if trainer.env.main else SILENT
    try:
        report.status(
            f"run {run_dir}: {len(trainer.train_data)} training triplets, {len(trainer.val_data or [])} held out; "
            f"step {trainer.step}/{trainer.total_steps}; "
            + (f"adversarial {config.adversarial}; perceptual loss {config.perceptual_source}" if config.stage == "full" else "flow stage: the flow U-Net alone")
        )
        pending = len(trainer.train_data.teacher_indices()) if trainer.env.main else 0
        if pending:
            with report.task("teacher", pending, unit="triplets") as update:
                covered = trainer.prepare_teacher(lambda done, total: update(done))
            report.status(f"teacher {config.flow_teacher}: {covered} of {pending} triplets covered, cached in the run's cache")
        if prepare_only:
            return None
        with report.task("training", trainer.total_steps, trainer.step, unit="steps") as update:
            result = trainer.fit(lambda step, total, losses: update(step, losses))
        report.status(f"stopped at step {result.step}: {', '.join(f'{k} {v:.4g}' for k, v in result.last_metrics.items())}")
        if export is not None and trainer.env.main:
            result.exported = export_checkpoint(trainer.run.checkpoint, Path(export))
            report.status(f"exported {export} (sha256 {result.exported['sha256'][:12]}…)")
    finally:
        trainer.close()
    return result


def _given(options: dict[str, Any], resume: bool) -> dict[str, Any]:
    """The options as ``config.json`` stores them: paths as text, the model and losses as dicts
    (partial loss weights over the defaults), the model read from a file or from ``init_weights``."""
    given = {k: str(v) if isinstance(v, Path) else v for k, v in options.items() if v is not None}
    if "data" in given:
        given["data"] = [_data_dict(d) for d in given["data"]]
    model = given.get("model")
    if isinstance(model, ModelConfig):
        given["model"] = model.to_dict()
    elif isinstance(model, str):  # a JSON file of a ModelConfig, or a weights card
        described = read_json_object(Path(model), f"--model-config {model}")
        if isinstance(described.get("config"), dict):  # a weights card
            described = described["config"]
        try:
            given["model"] = ModelConfig.from_dict(described).to_dict()
        except (ValueError, TypeError) as exc:
            raise VfiError(f"bad --model-config {model}: {exc}") from None
    if given.get("init_weights") and "model" not in given and not resume:
        from vfi_cli.model.weights import read_weights

        given["model"] = read_weights(Path(given["init_weights"]))[0].to_dict()  # checked, nothing built
    losses = given.get("losses")
    if isinstance(losses, LossWeights):
        given["losses"] = dataclasses.asdict(losses)
    elif isinstance(losses, dict):
        given["losses"] = {**dataclasses.asdict(LossWeights()), **losses}
    return given


def _data_dict(spec: DataSpec | dict[str, Any]) -> dict[str, Any]:
    if isinstance(spec, DataSpec):
        return {"kind": spec.kind, "root": None if spec.root is None else str(spec.root), "weight": spec.weight}
    return dict(spec)
