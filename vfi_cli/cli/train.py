"""``vfi train`` and ``vfi export``."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import click

from vfi_cli import api
from vfi_cli.cli.options import call, verbosity, weights_option
from vfi_cli.cli.output import Output
from vfi_cli.config import ADVERSARIAL_MODES, DATA_KINDS, FEATURE_INITS, FLOW_SCALES, MAX_FLOW_SCALES, PROPOSAL_KINDS, TRAIN_STAGES, LossWeights, TrainConfig, default
from vfi_cli.errors import VfiError

_SETTABLE = [f.name for f in dataclasses.fields(LossWeights) if f.name != "teacher"]  # --teacher-weight sets that one


def _d(name: str) -> Any:
    return default(TrainConfig, name)


@click.command()
@click.option("--run-dir", type=click.Path(path_type=Path), required=True, help="Folder of the run: config, logs, samples, checkpoints.")
@click.option("--resume", is_flag=True, help="Continue the run in --run-dir from its last checkpoint (may raise --steps/--epochs).")
@click.option("--data", "data", multiple=True, metavar="KIND[:ROOT][@W]", help=f"{', '.join(DATA_KINDS)}; repeat to mix with weights W.")
@click.option("--data-root", "data_roots", multiple=True, type=click.Path(path_type=Path), help="Root folder of a --data given without one (in order).")
@click.option("--steps", type=click.IntRange(min=1), help="Train this many steps in all ...")
@click.option("--epochs", type=click.IntRange(min=1), help="... or this many epochs.")
@click.option("--batch-size", type=click.IntRange(min=1), help=f"Triplets per step (default {_d('batch_size')}).")
@click.option("--crop", type=click.IntRange(min=32), help=f"Side of the random square crop fed to the network (default {_d('crop')}).")
@click.option("--train-scale", type=float, help="Downscale frames by this before cropping; the originals give the real RoI patches.")
@click.option("--model-config", type=click.Path(exists=True, path_type=Path),
              help="JSON of a ModelConfig (network widths), or a weights card to train its architecture afresh.")
@click.option("--lr", type=float, help=f"Adam learning rate (default {_d('lr'):g}).")
@click.option("--lr-decay", type=float, help=f"Factor applied every --lr-decay-epochs (default {_d('lr_decay')}).")
@click.option("--lr-decay-epochs", type=click.IntRange(min=1), help=f"Default {_d('lr_decay_epochs')}.")
@click.option("--stage", type=click.Choice(TRAIN_STAGES), help="full: the paper's objective (default); flow: the flow U-Net alone "
              "on the warped frame Ît against the truth and the --teacher, no synthesis or discriminator (a fast warm-up; fine-tune with "
              "--stage full --init-weights).")
@click.option("--adversarial", type=click.Choice(ADVERSARIAL_MODES), help=f"Ours-baseline / Ours-gan / Ours-roigan (default {_d('adversarial')}).")
@click.option("--proposals", type=click.Choice(PROPOSAL_KINDS), help=f"Where the RoIs come from (default {_d('proposals')}).")
@click.option("--num-rois", type=click.IntRange(min=1), help=f"RoIs per image (default {_d('num_rois')}).")
@click.option("--d-steps", type=click.IntRange(min=1), help=f"Discriminator updates per generator update (default {_d('d_steps')}).")
@click.option("--d-channels", type=click.IntRange(min=1), help=f"Width of the discriminator's first layer (default {_d('d_channels')}).")
@click.option("--teacher", "--flow-teacher", "flow_teacher", metavar="dis|rife:PATH|vfi:WEIGHTS",
              help="Distil the flow module from a teacher: OpenCV DIS, RIFE HDv3's flownet.pkl, or vfi weights (deviation from the paper).")
@click.option("--clip-starts", type=click.IntRange(min=1), help="At most this many evenly spaced start frames per video clip.")
@click.option("--motion-crops", type=click.FloatRange(0, 1), help="Share of the crops of teacher-covered triplets drawn where the "
              "teacher's flow is large, rather than anywhere (default 0: anywhere; most of a frame of real footage is still).")
@click.option("--teacher-motion-scale", type=click.FloatRange(min=0), metavar="PX", help="Weigh a network teacher's flow by 1 + |flow| / PX "
              "where it moves (default 0: off). Most pixels of real footage move under 2 px, so the loss otherwise speaks of small motion.")
@click.option("--prepare-only", is_flag=True, help="Decode the clips and fill the teacher cache, then stop.")
@click.option("--teacher-weight", type=float, help=f"Starting weight of the flow teacher (default {LossWeights().teacher}), decayed linearly ...")
@click.option("--teacher-decay-steps", type=click.IntRange(min=1), help=f"... to zero over this many steps (default {_d('teacher_decay_steps')}).")
@click.option("--lambda", "lambdas", multiple=True, metavar="NAME=VALUE",
              help=f"Loss weight: {', '.join(_SETTABLE)} (off; not in the paper).")
@click.option("--init-weights", type=click.Path(path_type=Path), help="Start the generator from these weights (fine-tuning); their architecture "
              "is used, or --model-config's when that only widens the flow U-Net (it grows into it computing the same).")
@click.option("--init-flow", type=click.Path(path_type=Path), help='Start a flow_module "ifnet" model\'s flow module from RIFE HDv3\'s '
              "weights (its flownet.pkl, a plain state dict, or .safetensors); the time input starts at zero.")
@click.option("--feature-init", type=click.Choice(FEATURE_INITS), help=f"Feature extractor start (default {_d('feature_init')}).")
@click.option("--resnet18-weights", type=click.Path(path_type=Path), help="Local torchvision ResNet-18 weights for --feature-init resnet18.")
@click.option("--vgg-weights", type=click.Path(path_type=Path), help="Local torchvision VGG-16 weights for the perceptual loss.")
@click.option("--detector-weights", type=click.Path(path_type=Path), help="Local Mask R-CNN weights for --proposals maskrcnn.")
@click.option("--allow-download", is_flag=True, default=None, help="Let torchvision download missing pretrained weights.")
@click.option("--cache-dir", type=click.Path(path_type=Path), help="Decoded-frame cache (default RUN_DIR/cache).")
@click.option("--workers", type=click.IntRange(min=0), help=f"DataLoader worker processes (default {_d('workers')}).")
@click.option("--val-every", type=click.IntRange(min=1), help=f"Validate every N steps (default {_d('val_every')}).")
@click.option("--checkpoint-every", type=click.IntRange(min=1), help=f"Checkpoint every N steps (default {_d('checkpoint_every')}).")
@click.option("--sample-every", type=click.IntRange(min=1), help=f"Write a sample grid every N steps (default {_d('sample_every')}).")
@click.option("--log-every", type=click.IntRange(min=1), help=f"Log losses every N steps (default {_d('log_every')}).")
@click.option("--seed", type=int, help=f"Seed of the data order, crops and initialisation (default {_d('seed')}).")
@click.option("--device", help=f"auto, cpu, cuda or cuda:N (default {_d('device')}).")
@click.option("--no-amp", "amp", flag_value=False, default=None, help="Train in fp32 on CUDA too.")
@click.option("--cpu-amp", is_flag=True, default=None, help="bf16 autocast on the CPU too (several times faster on CPUs with AMX or AVX-512 BF16).")
@click.option("--export", "export_path", type=click.Path(path_type=Path), help="Also write the trained generator here (.safetensors + card).")
@verbosity("No progress bar.")
def train(run_dir: Path, resume: bool, data: tuple[str, ...], data_roots: tuple[Path, ...], lambdas: tuple[str, ...],
          teacher_weight: float | None, model_config: Path | None, export_path: Path | None, prepare_only: bool,
          output: Output, **options: Any) -> None:
    """Train the network with instance-level adversarial learning (paper §3.3–3.5)."""

    def run() -> Any:
        if data:
            options["data"] = parse_data(data, data_roots)
        elif data_roots:
            raise VfiError("--data-root needs a --data kind")
        options["losses"] = parse_losses(lambdas, teacher_weight)
        return api.train(run_dir, resume=resume, export=export_path, prepare_only=prepare_only, progress=output,
                         model=model_config, **options)

    call(run)


def parse_data(values: tuple[str, ...], roots: tuple[Path, ...]) -> list[dict[str, Any]]:
    """``--data KIND[:ROOT][@WEIGHT]``; kinds given without a root take the ``--data-root``s in order."""
    specs = []
    spare_roots = list(roots)
    for value in values:
        text, _, weight = value.partition("@")
        kind, _, root = text.partition(":")
        if kind not in DATA_KINDS:
            raise VfiError(f"unknown --data kind {kind!r} (use {', '.join(DATA_KINDS)})")
        if not root and kind != "synthetic":
            if not spare_roots:
                raise VfiError(f"--data {kind} needs a folder: add --data-root PATH or write --data {kind}:PATH")
            root = str(spare_roots.pop(0))
        try:
            share = float(weight) if weight else 1.0
        except ValueError:
            raise VfiError(f"bad mix weight in --data {value!r}") from None
        specs.append({"kind": kind, "root": root or None, "weight": share})
    if spare_roots:
        raise VfiError(f"--data-root {spare_roots[0]} is not used by any --data")
    return specs


def parse_losses(lambdas: tuple[str, ...], teacher_weight: float | None) -> dict[str, float] | None:
    """``--lambda NAME=VALUE`` (and ``--teacher-weight``): the loss weights to change, None for none."""
    weights: dict[str, float] = {}
    for item in lambdas:
        name, _, value = item.partition("=")
        if name not in _SETTABLE:
            raise VfiError(f"unknown loss weight {name!r} in --lambda (use {', '.join(_SETTABLE)})")
        try:
            weights[name] = float(value)
        except ValueError:
            raise VfiError(f"--lambda {item!r} needs NAME=NUMBER") from None
    if teacher_weight is not None:
        weights["teacher"] = teacher_weight
    return weights or None


@click.command()
@click.argument("checkpoint", type=click.Path(path_type=Path), required=False)
@click.argument("destination", metavar="OUT", type=click.Path(path_type=Path), required=False)
@click.option("--half", is_flag=True, help="Store fp16 weights (half the file size).")
@click.option("--overwrite", is_flag=True, help="Replace OUT if it exists.")
@click.option("--metrics", "metrics_file", type=click.Path(path_type=Path), help="A JSON object (e.g. evaluation tables) to add to the card's metrics.")
@click.option("--onnx", "onnx_path", type=click.Path(path_type=Path), metavar="OUT.onnx",
              help="Instead: write the network of --weights as ONNX (dynamic size; for ONNX Runtime, TensorRT, ncnn ...). "
                   "A model with the DIS prior (the shipped one) takes the prior as inputs prior_flow1, prior_flow2, prior_mask.")
@click.option("--flow-scales", type=click.IntRange(1, MAX_FLOW_SCALES), metavar="K",
              help="Write the weights to estimate the flows at K scales, each half the last, fused by how well their "
                   "warped frames agree (ModelConfig.flow_scales; adds no parameters). Default: the run's.")
@weights_option("With --onnx: the weights to export (default: the default model).")
@click.option("--scale", "flow_scale", type=click.Choice([f"{s:g}" for s in FLOW_SCALES]), default="1", show_default=True,
              help="With --onnx: the flow scale built into the graph.")
@verbosity()
def export(checkpoint: Path | None, destination: Path | None, half: bool, overwrite: bool, metrics_file: Path | None,
           flow_scales: int | None, onnx_path: Path | None, weights: Path | str | None, flow_scale: str, output: Output) -> None:
    """Write a training checkpoint's generator as weights for `vfi interpolate --weights`
    (vfi export CHECKPOINT OUT), or a model as an ONNX graph (vfi export --onnx OUT.onnx)."""
    if onnx_path is not None:
        if checkpoint is not None or half or metrics_file is not None or flow_scales is not None:
            raise click.UsageError("--onnx takes no CHECKPOINT, OUT, --half, --metrics or --flow-scales (choose the model with --weights or --model)")
        path = call(lambda: api.export_onnx(onnx_path, weights=weights, flow_scale=float(flow_scale), overwrite=overwrite))
        click.echo(f"wrote {path} (inputs image1, image2 [N,3,H,W] in 0..1 and t [N], and for a model with the DIS prior, "
                   "such as the shipped one, prior_flow1, prior_flow2, prior_mask from vfi_cli.model.export.graph_inputs; "
                   "output frame; H and W dynamic)")
        return
    if checkpoint is None or destination is None:
        raise click.UsageError("give CHECKPOINT and OUT (or --onnx OUT.onnx)")
    if weights is not None:
        raise click.UsageError("--weights and --model go with --onnx")
    card = call(lambda: api.export(checkpoint, destination, half=half, overwrite=overwrite, metrics=metrics_file, flow_scales=flow_scales))
    click.echo(f"wrote {destination} and its card (sha256 {card['sha256']})")
