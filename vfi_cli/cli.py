"""The ``vfi`` command: a thin Click layer that validates options and calls plain functions."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

import click

from vfi_cli import __version__
from vfi_cli.engine.schedule import parse_rate
from vfi_cli.errors import VfiError
from vfi_cli.video.encoders import preset_help


def _fail(message: str, code: int = 1) -> None:
    message = " ".join(line.strip() for line in message.splitlines() if line.strip())  # one line, whatever FFmpeg said
    click.echo(f"Error: {message}", err=True)
    sys.exit(code)


def _run(action: Callable[[], Any], interrupted: str = "Interrupted: nothing was written.") -> Any:
    """Run a command body: one-line errors for what the user can fix; Ctrl-C, SIGTERM, SIGHUP and
    SIGQUIT clean up the same way and exit with 128 + the signal's number (130 for Ctrl-C)."""
    try:
        return action()
    except VfiError as exc:
        _fail(str(exc))
    except KeyboardInterrupt as exc:
        _interrupted(exc, interrupted)


def _interrupted(exc: BaseException, message: str) -> None:
    from vfi_cli.signals import exit_status

    try:
        click.echo(message, err=True)
    except OSError:  # SIGHUP: the terminal is gone
        pass
    sys.exit(exit_status(exc))


class _Commands(click.Group):
    """The ``vfi`` group: termination signals act as Ctrl-C from the start, and an interruption
    outside a command's body (while torch loads) still exits cleanly with 128 + the signal."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        from vfi_cli.signals import install

        install()
        return super().main(*args, **kwargs)

    def invoke(self, ctx: click.Context) -> Any:
        from vfi_cli.signals import deferred

        try:
            if not {"-h", "--help"} & set(ctx.args):  # a command will run: load torch where a signal cannot abort it
                with deferred():
                    import torch  # noqa: F401
            return super().invoke(ctx)
        except KeyboardInterrupt as exc:
            _interrupted(exc, "Interrupted: nothing was written.")


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="vfi")
def main() -> None:
    """vfi: raise a video's frame rate with the Zoom-In-to-Check interpolation network."""


# A URL scheme ("https:", "rtmp:" ...; two letters at least, so not a drive letter). pathlib turns "//" into "/".
_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+):/+")


def check_paths(source: Path, destination: Path, overwrite: bool, input_fps: Fraction | None = None) -> None:
    """Refuse, with one line each, what would fail late or destroy data."""
    from vfi_cli.video.images import check_folder_output, is_folder_output

    for given in (source, destination):
        url = _URL.match(str(given))
        if url and not given.exists() and not given.parent.is_dir():
            shown = _URL.sub(r"\1://", str(given), count=1)
            raise VfiError(f"URLs are not supported ({shown}): download the file and pass its local path")
    if not source.exists():
        raise VfiError(f"input not found: {source}")
    if source.is_dir():
        if input_fps is None:
            raise VfiError(f"input is a folder: {source} (for numbered images, give their rate with --input-fps)")
    elif not source.is_file():
        raise VfiError(f"input is not a file: {source}")
    elif input_fps is not None:
        raise VfiError("--input-fps is for folders of numbered images; a video file has its own timing")
    if not destination.parent.resolve().is_dir():
        raise VfiError(f"output directory does not exist: {destination.parent}")
    if destination.exists() and destination.resolve() == source.resolve():
        raise VfiError("output is the same file as the input; choose another name")
    if is_folder_output(destination):
        check_folder_output(destination, overwrite)
    elif destination.exists():
        if os.path.samefile(destination, source):
            raise VfiError("output is the same file as the input; choose another name")
        if not overwrite:
            raise VfiError(f"output exists: {destination} (pass --overwrite to replace it)")
    if not os.access(destination.parent.resolve(), os.W_OK):
        raise VfiError(f"output directory is not writable: {destination.parent}")


def _parse_memory(ctx: click.Context, param: click.Parameter, value: str | None) -> int | None:
    from vfi_cli.engine.tiling import parse_memory

    try:
        return None if value is None else parse_memory(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@main.command()
@click.argument("source", metavar="IN", type=click.Path(path_type=Path))
@click.argument("destination", metavar="OUT", type=click.Path(path_type=Path))
@click.option("--factor", type=click.IntRange(2, 64), help="Make N-1 new frames between each pair (default 2; at most 64).")
@click.option("--fps", "fps_text", metavar="RATE",
              help="Constant target frame rate instead: 60, 59.94 (=60000/1001), 60000/1001 ...; from 1 fps (or the input's rate, if lower) to 64x the input's.")
@click.option("--input-fps", "input_fps_text", metavar="RATE", help="Rate of IN when it is a folder of numbered images.")
@click.option("--weights", type=click.Path(path_type=Path), help="Model weights (.safetensors); default: the shipped model.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--precision", type=click.Choice(["fp32", "fp16", "bf16"]), help="Default: fp16 on CUDA, fp32 on the CPU.")
@click.option("--batch-size", type=click.IntRange(1, 256), default=4, show_default=True, help="Frames synthesised per model call.")
@click.option("--threads", type=click.IntRange(1, 256), help="CPU threads for the model (default: PyTorch's choice).")
@click.option("--codec", default="libx264", show_default=True, help="Video encoder (libx264, libx265, libvpx-vp9, ffv1 ...).")
@click.option("--crf", type=click.IntRange(0, 63), default=18, show_default=True, help="Quality for CRF encoders (lower is better).")
@click.option("--preset", default="medium", show_default=True, help=preset_help())
@click.option("--pix-fmt", help="Output pixel format (default: the input's, when the encoder takes it).")
@click.option("--scene-threshold", type=click.FloatRange(0, 1, min_open=True, max_open=True),
              help="Cut score above which a pair counts as a hard cut and is not interpolated (default 0.3; lower finds more cuts).")
@click.option("--no-scene-detect", is_flag=True, help="Interpolate across hard cuts too (identical frames are still copied).")
@click.option("--scale", "flow_scale", type=click.Choice(["1", "0.5", "0.25"]), default="1", show_default=True,
              help="Estimate flow on frames shrunk by this (0.5 for 4K, 0.25 for 8K, as RIFE's --scale).")
@click.option("--max-memory", callback=_parse_memory, metavar="SIZE",
              help="Memory for the model, e.g. 6G or 800M (default: half the free RAM, 80% of free GPU memory).")
@click.option("--tile", type=click.IntRange(min=16), metavar="PIXELS", help="Always cut frames into tiles of this side.")
@click.option("--tile-overlap", type=click.IntRange(min=4), metavar="PIXELS",
              help="Band shared by neighbouring tiles; keep it above 4x the largest motion (default 128, 1/15 of the long side above 1080p).")
@click.option("--overwrite", is_flag=True, help="Replace OUT if it exists.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar or summary.")
def interpolate(
    source: Path,
    destination: Path,
    factor: int | None,
    fps_text: str | None,
    input_fps_text: str | None,
    weights: Path | None,
    device: str,
    precision: str | None,
    batch_size: int,
    threads: int | None,
    codec: str,
    crf: int,
    preset: str,
    pix_fmt: str | None,
    scene_threshold: float | None,
    no_scene_detect: bool,
    flow_scale: str,
    max_memory: int | None,
    tile: int | None,
    tile_overlap: int | None,
    overwrite: bool,
    quiet: bool,
) -> None:
    """Convert IN to a higher frame rate and write OUT (audio is copied)."""
    if no_scene_detect and scene_threshold is not None:
        _fail("give either --scene-threshold or --no-scene-detect, not both", 2)
    if factor is not None and fps_text is not None:
        _fail("give either --factor or --fps, not both", 2)
    try:
        fps = None if fps_text is None else parse_rate(fps_text)
        input_fps = None if input_fps_text is None else parse_rate(input_fps_text)
    except ValueError as exc:
        _fail(str(exc), 2)
    if fps is None and factor is None:
        factor = 2
    _run(
        lambda: run_interpolate(
            source, destination, factor=factor, fps=fps, input_fps=input_fps, weights=weights, device=device, precision=precision,
            batch_size=batch_size, threads=threads, codec=codec, crf=crf, preset=preset, pix_fmt=pix_fmt,
            scene_detect=not no_scene_detect, scene_threshold=scene_threshold, flow_scale=float(flow_scale),
            max_memory=max_memory, tile=tile, tile_overlap=tile_overlap, overwrite=overwrite, quiet=quiet,
        )
    )


def run_interpolate(
    source: Path,
    destination: Path,
    *,
    factor: int | None,
    fps: Fraction | None,
    input_fps: Fraction | None = None,
    weights: Path | None = None,
    device: str = "auto",
    precision: str | None = None,
    batch_size: int = 4,
    threads: int | None = None,
    codec: str = "libx264",
    crf: int | None = 18,
    preset: str | None = "medium",
    pix_fmt: str | None = None,
    scene_detect: bool = True,
    scene_threshold: float | None = None,
    flow_scale: float = 1.0,
    max_memory: int | None = None,
    tile: int | None = None,
    tile_overlap: int | None = None,
    overwrite: bool = False,
    quiet: bool = False,
) -> Any:
    """Everything ``vfi interpolate`` does after parsing; returns the pipeline's summary.

    ``scene_threshold`` None means the default cut threshold; ``scene_detect=False`` turns cut detection off.
    """
    import torch
    from rich.console import Console

    from vfi_cli.engine.pipeline import ConvertOptions, convert_video, expected_output_frames
    from vfi_cli.engine.runner import FrameInterpolator, resolve_device, resolve_precision
    from vfi_cli.engine.scenes import DEFAULT_CUT_THRESHOLD
    from vfi_cli.model.weights import load_weights
    from vfi_cli.video.images import probe_images
    from vfi_cli.video.reader import probe
    from vfi_cli.video.writer import EncodeSettings

    check_paths(source, destination, overwrite, input_fps)
    info = probe(source) if input_fps is None else probe_images(source, input_fps)
    options = ConvertOptions(
        factor=factor, fps=fps, batch_size=batch_size,
        encode=EncodeSettings(codec=codec, crf=crf, preset=preset, pix_fmt=pix_fmt),
        scene_threshold=(DEFAULT_CUT_THRESHOLD if scene_threshold is None else scene_threshold) if scene_detect else None,
        overwrite=overwrite,
    )
    options.output_rate(info.rate)  # a rate out of bounds is refused before the model loads
    torch_device = resolve_device(device)
    dtype = resolve_precision(precision, torch_device)
    model, card = load_weights(weights, torch_device)
    if threads is not None:
        torch.set_num_threads(threads)
    console = Console(stderr=True, quiet=quiet, soft_wrap=True)
    rate_out = options.output_rate(info.rate)
    console.print(
        f"{source.name}: {info.width}x{info.height} {_rate(info.rate)} fps -> {_rate(rate_out)} fps | "
        f"model {sum(p.numel() for p in model.parameters()) / 1e6:.2f}M params on {torch_device} "
        f"({str(dtype).removeprefix('torch.')})"
    )
    interpolator = FrameInterpolator(
        model, torch_device, dtype, info.height, info.width, flow_scale=flow_scale, batch_size=batch_size,
        max_memory=max_memory, tile=tile, overlap=tile_overlap,
    )
    console.print(f"flow at scale {flow_scale:g}; {interpolator.plan.describe()}")
    with _Progress(console, expected_output_frames(info, options)) as on_frame:
        summary = convert_video(info, destination, interpolator, options, on_frame=on_frame)
    console.print(
        f"Wrote {summary.output}: {summary.frames_out} frames at {_rate(summary.rate_out)} fps "
        f"({summary.frames_in} in, {summary.synthesized} synthesised), duration {float(summary.duration_out):.3f} s; "
        f"{_cuts(summary, scene_detect)}, {summary.static_pairs} static pair(s) copied; "
        f"{summary.seconds:.1f} s, {summary.frames_out / max(summary.seconds, 1e-9):.2f} frames/s"
    )
    if summary.frames_lost:  # shown even with --quiet: the output lacks frames of the input
        click.echo(
            f"Warning: {summary.frames_lost} input frame(s) could not be decoded and were skipped "
            f"({summary.decode_error}); the frames around them were interpolated across the gap.",
            err=True,
        )
    return summary


def _cuts(summary: Any, scene_detect: bool) -> str:
    return f"{summary.cuts} scene cut(s) kept sharp" if scene_detect else "scene detection off"


def _rate(rate: Fraction) -> str:
    return str(rate.numerator) if rate.denominator == 1 else f"{float(rate):.3f} ({rate.numerator}/{rate.denominator})"


class _Progress:
    """A rich progress bar (frames, frames/s, ETA) fed from the encoder thread."""

    def __init__(self, console: Any, total: int) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        self._bar = Progress(
            TextColumn("[progress.description]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[fps]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=console,
            disable=console.quiet,
        )
        self._task = self._bar.add_task("interpolating", total=total or None, fps="")

    def __enter__(self) -> Callable[[int], None]:
        self._bar.start()

        def on_frame(done: int) -> None:
            task = self._bar.tasks[0]
            speed = task.speed
            self._bar.update(self._task, completed=done, fps=f"{speed:.2f} frames/s" if speed else "")

        return on_frame

    def __exit__(self, *exc: object) -> None:
        self._bar.stop()


@main.command()
@click.option("--weights", type=click.Path(path_type=Path), help="Describe this weights file instead of the default.")
def info(weights: Path | None) -> None:
    """Versions, devices, the model's parameter count and the weights in use."""
    _run(lambda: run_info(weights))


def run_info(weights: Path | None) -> None:
    import av
    import torch

    from vfi_cli.config import ModelConfig
    from vfi_cli.model.network import Interpolator
    from vfi_cli.model.weights import default_weights_path, load_weights, weights_search_path

    click.echo(f"vfi {__version__}  torch {torch.__version__}  av {av.__version__}")
    cuda = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []
    click.echo(f"devices: cpu ({torch.get_num_threads()} threads)" + "".join(f", cuda:{i} {n}" for i, n in enumerate(cuda)))
    path = weights or default_weights_path()
    if path is None:
        click.echo("weights: none installed (looked in " + ", ".join(str(p) for p in weights_search_path()) + ")")
        model = Interpolator.from_config(ModelConfig())
        click.echo("architecture: default ModelConfig")
    else:
        model, card = load_weights(path)
        click.echo(f"weights: {path} (sha256 {card.get('sha256', 'not on a card')})")
        try:
            lines = card_summary(card)
        except (TypeError, ValueError, KeyError, AttributeError):  # a hand-edited card: its recipe or metrics malformed
            lines = ["card: its recipe or metrics are malformed (not summarised)"]
        for line in lines:
            click.echo(line)
    click.echo(f"stride: {model.stride}")
    for name, module in model.named_children():
        click.echo(f"  {name:<10} {sum(p.numel() for p in module.parameters()):>10,d} parameters")
    click.echo(f"  {'total':<10} {sum(p.numel() for p in model.parameters()):>10,d} parameters")


def card_summary(card: dict[str, Any]) -> list[str]:
    """The lines of a weights card a person reads first; the card file holds the rest."""
    recipe, lines = card.get("recipe") or {}, []
    if recipe.get("steps"):
        lines.append(f"trained: {_stage_cost(recipe)} on {'; '.join(recipe.get('hardware') or ['unrecorded hardware'])}")
    # A fine-tuned model names its parent, which may name its own: list every stage, then the sum,
    # so that the last stage's steps and hours are not mistaken for the whole cost.
    stages, parent = [recipe], recipe.get("init_from")
    while parent:
        stage = parent.get("recipe") or {}
        cost = f", itself {_stage_cost(stage)}" if stage.get("steps") else ""
        lines.append(f"  fine-tuned from {parent.get('file')} (sha256 {parent.get('sha256')}){cost}")
        stages.append(stage)
        parent = stage.get("init_from")
    if len(stages) > 1 and all(stage.get("steps") for stage in stages):
        total = {"steps": sum(s["steps"] for s in stages)}
        if all(stage.get("wall_seconds") for stage in stages):
            total["wall_seconds"] = sum(s["wall_seconds"] for s in stages)
        lines.append(f"  in all: {len(stages)} stages, {_stage_cost(total)}")
    if recipe.get("command"):
        lines.append(f"  command: {recipe['command']}")
    mean = ((card.get("metrics") or {}).get("holdout") or {}).get("mean_of_clips") or {}
    if mean:
        lines.append("held-out PSNR / SSIM (mean of clips): " + ", ".join(f"{name} {m['psnr']:.2f} / {m['ssim']:.4f}" for name, m in mean.items()))
    return lines


def _stage_cost(recipe: dict[str, Any]) -> str:
    hours = f", {recipe['wall_seconds'] / 3600:.1f} h" if recipe.get("wall_seconds") else ""
    return f"{recipe['steps']} steps{hours}"


# ----------------------------------------------------------------------------- train / export

_RESUME_OVERRIDABLE = {"steps", "epochs", "workers", "device", "log_every", "val_every", "checkpoint_every", "sample_every", "val_triplets",
                       "cache_dir"}


def _parse_data(values: tuple[str, ...], roots: tuple[Path, ...]) -> list[dict[str, Any]]:
    """``--data KIND[:ROOT][@WEIGHT]``; kinds given without a root take the ``--data-root``s in order."""
    from vfi_cli.train.data import KINDS

    specs = []
    spare_roots = list(roots)
    for value in values:
        text, _, weight = value.partition("@")
        kind, _, root = text.partition(":")
        if kind not in KINDS:
            raise VfiError(f"unknown --data kind {kind!r} (use {', '.join(KINDS)})")
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


@main.command()
@click.option("--run-dir", type=click.Path(path_type=Path), required=True, help="Folder of the run: config, logs, samples, checkpoints.")
@click.option("--resume", is_flag=True, help="Continue the run in --run-dir from its last checkpoint (may raise --steps/--epochs).")
@click.option("--data", "data", multiple=True, metavar="KIND[:ROOT][@W]", help="synthetic, videos, ucf101, cityscapes; repeat to mix with weights W.")
@click.option("--data-root", "data_roots", multiple=True, type=click.Path(path_type=Path), help="Root folder of a --data given without one (in order).")
@click.option("--steps", type=click.IntRange(min=1), help="Train this many steps in all ...")
@click.option("--epochs", type=click.IntRange(min=1), help="... or this many epochs.")
@click.option("--batch-size", type=click.IntRange(min=1), help="Triplets per step (default 8).")
@click.option("--crop", type=click.IntRange(min=32), help="Side of the random square crop fed to the network (default 256).")
@click.option("--train-scale", type=float, help="Downscale frames by this before cropping; the originals give the real RoI patches.")
@click.option("--model-config", type=click.Path(exists=True, path_type=Path), help="JSON of a ModelConfig (network widths), or a weights card to train its architecture afresh.")
@click.option("--lr", type=float, help="Adam learning rate (default 1e-4).")
@click.option("--lr-decay", type=float, help="Factor applied every --lr-decay-epochs (default 0.1).")
@click.option("--lr-decay-epochs", type=click.IntRange(min=1), help="Default 10.")
@click.option("--adversarial", type=click.Choice(["none", "image", "instance"]), help="Ours-baseline / Ours-gan / Ours-roigan (default instance).")
@click.option("--proposals", type=click.Choice(["motion", "maskrcnn"]), help="Where the RoIs come from (default motion).")
@click.option("--num-rois", type=click.IntRange(min=1), help="RoIs per image (default 16).")
@click.option("--d-steps", type=click.IntRange(min=1), help="Discriminator updates per generator update (default 2).")
@click.option("--d-channels", type=click.IntRange(min=1), help="Width of the discriminator's first layer (default 64).")
@click.option("--teacher", "--flow-teacher", "flow_teacher", metavar="dis|rife:PATH|vfi:WEIGHTS",
              help="Distil the flow module from a teacher: OpenCV DIS, RIFE HDv3's flownet.pkl, or vfi weights (deviation from the paper).")
@click.option("--clip-starts", type=click.IntRange(min=1), help="At most this many evenly spaced start frames per video clip.")
@click.option("--prepare-only", is_flag=True, help="Decode the clips and fill the teacher cache, then stop.")
@click.option("--teacher-weight", type=float, help="Starting weight of the flow teacher (default 1.0), decayed linearly ...")
@click.option("--teacher-decay-steps", type=click.IntRange(min=1), help="... to zero over this many steps (default 5000).")
@click.option("--lambda", "lambdas", multiple=True, metavar="NAME=VALUE", help="Loss weight: photometric, perceptual, smoothness, discriminator, adversarial, teacher_mask, mse (off; not in the paper).")
@click.option("--init-weights", type=click.Path(path_type=Path), help="Start the generator from these weights (fine-tuning); their architecture is used.")
@click.option("--feature-init", type=click.Choice(["learned", "resnet18"]), help="Feature extractor start (default learned).")
@click.option("--resnet18-weights", type=click.Path(path_type=Path), help="Local torchvision ResNet-18 weights for --feature-init resnet18.")
@click.option("--vgg-weights", type=click.Path(path_type=Path), help="Local torchvision VGG-16 weights for the perceptual loss.")
@click.option("--detector-weights", type=click.Path(path_type=Path), help="Local Mask R-CNN weights for --proposals maskrcnn.")
@click.option("--allow-download", is_flag=True, default=None, help="Let torchvision download missing pretrained weights.")
@click.option("--cache-dir", type=click.Path(path_type=Path), help="Decoded-frame cache (default RUN_DIR/cache).")
@click.option("--workers", type=click.IntRange(min=0), help="DataLoader worker processes (default 2).")
@click.option("--val-every", type=click.IntRange(min=1), help="Validate every N steps (default 500).")
@click.option("--checkpoint-every", type=click.IntRange(min=1), help="Checkpoint every N steps (default 250).")
@click.option("--sample-every", type=click.IntRange(min=1), help="Write a sample grid every N steps (default 500).")
@click.option("--log-every", type=click.IntRange(min=1), help="Log losses every N steps (default 10).")
@click.option("--seed", type=int, help="Seed of the data order, crops and initialisation (default 0).")
@click.option("--device", help="auto, cpu, cuda or cuda:N (default auto).")
@click.option("--no-amp", "amp", flag_value=False, default=None, help="Train in fp32 on CUDA too.")
@click.option("--cpu-amp", is_flag=True, default=None, help="bf16 autocast on the CPU too (several times faster on CPUs with AMX or AVX-512 BF16).")
@click.option("--export", "export_path", type=click.Path(path_type=Path), help="Also write the trained generator here (.safetensors + card).")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def train(run_dir: Path, resume: bool, data: tuple[str, ...], data_roots: tuple[Path, ...], lambdas: tuple[str, ...],
          model_config: Path | None, export_path: Path | None, quiet: bool, prepare_only: bool, **options: Any) -> None:
    """Train the network with instance-level adversarial learning (paper §3.3–3.5)."""
    _run(lambda: run_train(run_dir, resume=resume, data=data, data_roots=data_roots, lambdas=lambdas,
                           model_config=model_config, export_path=export_path, quiet=quiet, prepare_only=prepare_only, **options),
         interrupted=f"Interrupted: the run is saved in {run_dir / 'checkpoints' / 'last.pt'}; continue it with --resume.")


def resolve_train_config(run_dir: Path, resume: bool, given: dict[str, Any]) -> Any:
    """The run's configuration: the options given over the defaults, or over the saved config on --resume."""
    from vfi_cli.train.trainer import TrainConfig, command_line

    from vfi_cli.train.rundir import read_run_config

    given = {k: v for k, v in given.items() if v is not None}
    if resume:
        saved = read_run_config(run_dir, cache_dir=given.get("cache_dir"))  # --run-dir decides where the run writes
        changed = sorted(k for k, v in given.items() if k not in _RESUME_OVERRIDABLE and saved.get(k) != v)
        if changed:
            raise VfiError(f"--resume keeps the run's settings; cannot change {', '.join(changed)}")
        if "steps" in given or "epochs" in given:
            saved["steps"], saved["epochs"] = given.get("steps"), given.get("epochs")
        saved.update({k: v for k, v in given.items() if k in _RESUME_OVERRIDABLE and k not in ("steps", "epochs")})
        saved["command"] = (str(saved.get("command", "")) + " ; " + command_line()).strip(" ;")
        try:
            return TrainConfig.from_dict(saved)
        except (TypeError, ValueError, AttributeError) as exc:
            raise VfiError(f"{run_dir / 'config.json'} is not a valid run configuration: {exc}") from None
    return TrainConfig(run_dir=str(run_dir), command=command_line(), **given)


def run_train(run_dir: Path, *, resume: bool = False, data: tuple[str, ...] = (), data_roots: tuple[Path, ...] = (),
              lambdas: tuple[str, ...] = (), model_config: Path | None = None, export_path: Path | None = None,
              quiet: bool = False, prepare_only: bool = False, **options: Any) -> Any:
    """Everything ``vfi train`` does after parsing; returns the trainer's result."""
    from rich.console import Console

    from vfi_cli.config import ModelConfig
    from vfi_cli.train.trainer import LossWeights, Trainer, export_checkpoint

    from vfi_cli.files import check_output_file, check_output_folder, read_json_object
    from vfi_cli.train.rundir import absolute_cache_dir

    given = {k: str(v) if isinstance(v, Path) else v for k, v in options.items()}
    given["cache_dir"] = absolute_cache_dir(given.get("cache_dir"))
    check_output_folder(run_dir, "--run-dir")  # before any work: the run must be able to write there
    if export_path is not None:
        check_output_file(export_path, "--export")
    if data:
        given["data"] = _parse_data(data, data_roots)
    elif data_roots:
        raise VfiError("--data-root needs a --data kind")
    if model_config is not None:
        try:
            described = read_json_object(model_config, f"--model-config {model_config}")
            if isinstance(described.get("config"), dict):  # a weights card
                described = described["config"]
            given["model"] = ModelConfig.from_dict(described).to_dict()
        except (ValueError, TypeError) as exc:
            raise VfiError(f"bad --model-config {model_config}: {exc}") from exc
    if given.get("init_weights") and "model" not in given and not resume:
        from vfi_cli.model.weights import load_weights

        given["model"] = ModelConfig.from_dict(load_weights(Path(given["init_weights"]))[1]["config"]).to_dict()
    weights: dict[str, float] = {}
    settable = [n for n in LossWeights.__dataclass_fields__ if n != "teacher"]  # --teacher-weight sets that one
    for item in lambdas:
        name, _, value = item.partition("=")
        if name not in settable:
            raise VfiError(f"unknown loss weight {name!r} in --lambda (use {', '.join(settable)})")
        try:
            weights[name] = float(value)
        except ValueError:
            raise VfiError(f"--lambda {item!r} needs NAME=NUMBER") from None
    teacher_weight = given.pop("teacher_weight", None)
    if teacher_weight is not None:
        weights["teacher"] = teacher_weight
    if weights:
        given["losses"] = {**LossWeights().__dict__, **weights}
    config = resolve_train_config(run_dir, resume, given)
    trainer = Trainer(config, resume=resume)
    try:
        console = Console(stderr=True, quiet=quiet or not trainer.env.main, soft_wrap=True)
        console.print(
            f"run {run_dir}: {len(trainer.train_data)} training triplets, {len(trainer.val_data or [])} held out; "
            f"step {trainer.step}/{trainer.total_steps}; adversarial {config.adversarial}; perceptual loss {trainer.perceptual.source}"
        )
        pending = len(trainer.train_data.teacher_indices()) if trainer.env.main else 0
        if pending:
            with _TrainProgress(console, pending, 0, label="teacher") as on_step:
                covered = trainer.prepare_teacher(lambda done, total: on_step(done, total, {}))
            console.print(f"teacher {config.flow_teacher}: {covered} of {pending} triplets covered, cached in the run's cache")
        if prepare_only:
            return None
        with _TrainProgress(console, trainer.total_steps, trainer.step) as on_step:
            result = trainer.fit(on_step)
        console.print(f"stopped at step {result.step}: {', '.join(f'{k} {v:.4g}' for k, v in result.last_metrics.items())}")
        if export_path is not None and trainer.env.main:
            card = export_checkpoint(run_dir / "checkpoints" / "last.pt", export_path)
            console.print(f"exported {export_path} (sha256 {card['sha256'][:12]}…)")
    finally:
        trainer.close()
    return result


class _TrainProgress:
    """Steps, losses, steps/s and ETA of a training run (or of its teacher pass, ``label``)."""

    def __init__(self, console: Any, total: int, done: int, label: str = "training") -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self._bar = Progress(
            TextColumn(label), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[rate]}"),
            TextColumn("ETA"), TimeRemainingColumn(), TextColumn("{task.fields[losses]}"),
            console=console, disable=console.quiet,
        )
        self._task = self._bar.add_task("training", total=total, completed=done, rate="", losses="")

    def __enter__(self) -> Callable[[int, int, dict[str, float]], None]:
        self._bar.start()

        def on_step(step: int, total: int, losses: dict[str, float]) -> None:
            speed = self._bar.tasks[0].speed
            shown = " ".join(f"{k[:5]} {v:.3g}" for k, v in losses.items() if k != "lr")
            self._bar.update(self._task, completed=step, rate=f"{speed:.2f} steps/s" if speed else "", losses=shown)

        return on_step

    def __exit__(self, *exc: object) -> None:
        self._bar.stop()


@main.command()
@click.argument("checkpoint", type=click.Path(path_type=Path))
@click.argument("destination", metavar="OUT", type=click.Path(path_type=Path))
@click.option("--half", is_flag=True, help="Store fp16 weights (half the file size).")
@click.option("--overwrite", is_flag=True, help="Replace OUT if it exists.")
@click.option("--metrics", "metrics_file", type=click.Path(path_type=Path), help="A JSON object (e.g. evaluation tables) to add to the card's metrics.")
def export(checkpoint: Path, destination: Path, half: bool, overwrite: bool, metrics_file: Path | None) -> None:
    """Write a training checkpoint's generator as weights for `vfi interpolate --weights`."""
    _run(lambda: run_export(checkpoint, destination, half=half, overwrite=overwrite, metrics_file=metrics_file))


def run_export(
    checkpoint: Path, destination: Path, *, half: bool = False, overwrite: bool = False, metrics_file: Path | None = None
) -> dict[str, Any]:
    from vfi_cli.train.trainer import export_checkpoint

    from vfi_cli.files import check_output_file, read_json_object

    if checkpoint.is_dir():
        checkpoint = checkpoint / "checkpoints" / "last.pt"
    if destination.exists() and not overwrite:
        raise VfiError(f"output exists: {destination} (pass --overwrite to replace it)")
    if not destination.parent.resolve().is_dir():
        raise VfiError(f"output directory does not exist: {destination.parent}")
    check_output_file(destination, "OUT", overwrite=overwrite)
    metrics = None
    if metrics_file is not None:
        metrics = read_json_object(metrics_file, f"--metrics {metrics_file}")
    card = export_checkpoint(checkpoint, destination, half=half, metrics=metrics, overwrite=overwrite)
    click.echo(f"wrote {destination} and its card (sha256 {card['sha256']})")
    return card


# ----------------------------------------------------------------------------- eval / bench


def _parse_size(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[int, int] | None:
    """``HxW`` (height first, as in 1024x2048) -> (height, width)."""
    if value is None:
        return None
    height, sep, width = value.lower().partition("x")
    if not sep or not height.isdigit() or not width.isdigit() or int(height) < 1 or int(width) < 1:
        raise click.BadParameter(f"{value!r} is not HEIGHTxWIDTH, e.g. 1024x2048")
    return int(height), int(width)


def _parse_list(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[str, ...]:
    return tuple(item.strip() for item in (value or "").split(",") if item.strip())


@main.command(name="eval")
@click.argument("source", type=click.Path(path_type=Path))
@click.option("--weights", type=click.Path(path_type=Path), help="Model weights (.safetensors); default: the shipped model.")
@click.option("--no-model", is_flag=True, help="Evaluate only the --compare baselines (needs no weights).")
@click.option("--compare", callback=_parse_list, metavar="blend,repeat", help="Baselines scored in the same table.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--precision", type=click.Choice(["fp32", "fp16", "bf16"]), help="Default: fp16 on CUDA, fp32 on the CPU.")
@click.option("--threads", type=click.IntRange(1, 256), help="CPU threads for the model.")
@click.option("--stride", type=click.IntRange(min=1), default=1, show_default=True, help="Video/CityScapes: frames i and i+2·S in, i+S as truth.")
@click.option("--max-triplets", type=click.IntRange(min=0), help="Spread this many evenly (0 = all; default 50 for a video, all for a folder).")
@click.option("--start-fraction", type=click.FloatRange(0, 1, max_open=True), default=0.0, show_default=True, help="Use only triplets after this fraction (0.8: the last 20%).")
@click.option("--resize", callback=_parse_size, metavar="HxW", help="Resize frames (and masks) before evaluating.")
@click.option("--split", default="val", show_default=True, help="CityScapes split folder.")
@click.option("--trimap-widths", callback=_parse_list, default="0,6,12,18,24", show_default=True, help="CityScapes trimap dilations in pixels.")
@click.option("--json", "json_path", type=click.Path(path_type=Path), help="Write the report (means and per-triplet values) here.")
@click.option("--save-dir", type=click.Path(path_type=Path), help="Write side-by-side PNGs and a PSNR-per-triplet plot here.")
@click.option("--save-count", type=click.IntRange(min=0), default=4, show_default=True, help="How many triplets get a side-by-side PNG.")
@click.option("-q", "--quiet", is_flag=True, help="Only the table.")
def eval_command(source: Path, no_model: bool, trimap_widths: tuple[str, ...], **options: Any) -> None:
    """Quality (IE, PSNR, SSIM) on triplets of a video, a UCF101/Vimeo-90K folder or CityScapes."""
    from vfi_cli.evaluation.evaluate import run_eval

    if not all(width.isdigit() for width in trimap_widths):
        _fail("--trimap-widths takes whole pixel counts, e.g. 0,6,12", 2)
    _run(lambda: run_eval(source, use_model=not no_model, trimap_widths=tuple(int(w) for w in trimap_widths), **options))


@main.command()
@click.option("--size", callback=_parse_size, default="1024x2048", show_default=True, metavar="HxW", help="Frame size to time (e.g. 1080x1920, 2160x3840).")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--precision", type=click.Choice(["fp32", "fp16", "bf16"]), help="Default: fp16 on CUDA, fp32 on the CPU.")
@click.option("--weights", type=click.Path(path_type=Path), help="Weights to time (default: the shipped model, else random weights).")
@click.option("--batch-size", type=click.IntRange(1, 256), default=1, show_default=True, help="Frames synthesised per model call.")
@click.option("--threads", type=click.IntRange(1, 256), help="CPU threads for the model (default: PyTorch's choice).")
@click.option("--warmup", type=click.IntRange(min=0), help="Untimed calls first (default 3 on CUDA, 1 on the CPU).")
@click.option("--iterations", type=click.IntRange(min=1), help="Timed calls (default 20 on CUDA, 3 on the CPU).")
@click.option("--scale", "flow_scale", type=click.Choice(["1", "0.5", "0.25"]), default="1", show_default=True, help="Flow on shrunk frames, as in vfi interpolate.")
@click.option("--max-memory", callback=_parse_memory, metavar="SIZE", help="Memory for the model, as in vfi interpolate (e.g. 6G).")
@click.option("--tile", type=click.IntRange(min=16), metavar="PIXELS", help="Always cut frames into tiles of this side.")
@click.option("--tile-overlap", type=click.IntRange(min=4), metavar="PIXELS", help="Band shared by neighbouring tiles.")
@click.option("--e2e", type=click.Path(path_type=Path), metavar="VIDEO", help="Also convert VIDEO (output discarded): output frames/s and decode/model/encode shares.")
@click.option("--factor", type=click.IntRange(min=2), default=2, show_default=True, help="Frame-rate factor of the --e2e run.")
@click.option("--json", "json_path", type=click.Path(path_type=Path), help="Write the figures here as JSON.")
@click.option("-q", "--quiet", is_flag=True, help="Only the table.")
def bench(flow_scale: str, max_memory: int | None, tile: int | None, tile_overlap: int | None, **options: Any) -> None:
    """Milliseconds per interpolated frame at 1024x2048 (the paper's 0.36 s), memory, and end-to-end speed."""
    from vfi_cli.evaluation.bench import run_bench

    engine = {"flow_scale": float(flow_scale), "max_memory": max_memory, "tile": tile, "overlap": tile_overlap}
    _run(lambda: run_bench(engine=engine, **options))
