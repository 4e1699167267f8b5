"""``vfi interpolate`` and ``vfi info``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from vfi_cli import api
from vfi_cli.cli.options import call, engine_options, fail, key_values, verbosity, weights_option
from vfi_cli.cli.batch import run_batch
from vfi_cli.cli.output import Output, json_target
from vfi_cli.config import (BATCH_NAME, BATCH_NAME_FIELDS, DEDUP_MAX_HOLD, DEFAULT_SEGMENT, PRESETS, RAY_LOCAL, RAY_TIMEOUT,
                            ConvertOptions, EncodeSettings, EngineOptions, default)
from vfi_cli.results import Summary
from vfi_cli.units import MAX_FACTOR, format_rate, format_time, parse_rate, parse_time


@click.command()
@click.argument("paths", metavar="IN... [OUT]", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-o", "--output-dir", type=click.Path(path_type=Path), metavar="DIR",
              help="A batch: convert every IN (files, and the videos in folders) into DIR; outputs that exist are skipped.")
@click.option("--name", metavar="PATTERN", help=f"Output names in a batch (default {BATCH_NAME}); fields "
              + ", ".join("{" + f + "}" for f in BATCH_NAME_FIELDS) + ".")
@click.option("-r", "--recursive", is_flag=True, help="A batch: also the videos in subfolders (mirrored under DIR).")
@click.option("-j", "--jobs", type=click.IntRange(1, 64), default=1, show_default=True,
              help="A batch: files converted at once (worker processes, each with its own model and cores/N threads).")
@click.option("--json", "json_path", type=click.Path(path_type=Path), callback=json_target,
              help="A batch: write every file's result and the totals here as JSON; - for stdout.")
@click.option("--factor", type=click.IntRange(2, MAX_FACTOR),
              help=f"Make N-1 new frames between each pair (default {ConvertOptions().factor}; at most {MAX_FACTOR}).")
@click.option("--fps", "fps_text", metavar="RATE",
              help=f"Constant target frame rate instead: 60, 59.94 (=60000/1001), 60000/1001 ...; from 1 fps (or the input's rate, "
                   f"if lower) to {MAX_FACTOR}x the input's.")
@click.option("--input-fps", "input_fps_text", metavar="RATE", help="Rate of IN when it is a folder of numbered images.")
@weights_option()
@click.option("--codec", default=default(EncodeSettings, "codec"), show_default=True, help="Video encoder (libx264, libx265, libvpx-vp9, ffv1 ...).")
@click.option("--crf", type=click.IntRange(0, 63), default=default(EncodeSettings, "crf"), show_default=True,
              help="Quality for CRF encoders (lower is better).")
@click.option("--preset", default=default(EncodeSettings, "preset"), show_default=True,
              help=f"Encoder speed: {', '.join(PRESETS)}; mapped to each encoder's own (SVT-AV1 presets 13…0, VP9 cpu-used), "
                   "or an SVT-AV1 preset number.")
@click.option("--pix-fmt", help="Output pixel format (default: the input's, when the encoder takes it).")
@click.option("--encoder-opt", "encoder_opts", multiple=True, metavar="KEY=VALUE", callback=key_values,
              help="Pass an option to the encoder (repeatable; over --crf and --preset): tune=film, x265-params=aq-mode=3, "
                   "svtav1-params=tune=0 ...")
@click.option("--scene-threshold", type=click.FloatRange(0, 1, min_open=True, max_open=True),
              help=f"Cut score above which a pair counts as a hard cut and is not interpolated (default {default(ConvertOptions, 'scene_threshold')}; "
                   "lower finds more cuts).")
@click.option("--start", "start_text", metavar="TIME", help="Convert a part only (a preview), from the first frame at or after "
              "TIME: seconds, MM:SS or HH:MM:SS[.mmm]; the output and its audio start at 0.")
@click.option("--end", "end_text", metavar="TIME", help="End the part before TIME (from the input's start).")
@click.option("--duration", "duration_text", metavar="TIME", help="End the part TIME after its first frame instead.")
@click.option("--dedup", "dedup_text", metavar="off|exact|TOL", default="off", show_default=True,
              help=f"Drop frames that repeat the previous drawing (animation on twos) and spread the motion evenly over the "
                   f"span it was held for (up to {DEDUP_MAX_HOLD} frames): bit-identical ones (exact), or within TOL 8-bit levels "
                   "(largest mean difference of an 8x8 block; 10 suits x264 CRF 18-28).")
@click.option("--no-scene-detect", is_flag=True, help="Interpolate across hard cuts too (identical frames are still copied).")
@click.option("--overwrite", is_flag=True, help="Replace OUT if it exists (in a batch: convert again files whose output exists).")
@click.option("--segment", "segment_text", metavar="SECONDS", default=str(DEFAULT_SEGMENT), show_default=True,
              help="Make a longer output in segments of this much output, kept in a hidden folder beside OUT until it is "
                   "complete: an interrupted run goes on where it stopped when run again (0: one piece).")
@click.option("--no-resume", is_flag=True, help="Start over instead of going on from the segments of an interrupted run.")
@click.option("--ray", "ray", metavar="[ADDRESS]", is_flag=False, flag_value=RAY_LOCAL,
              help="Send the segments (of every file) to a Ray cluster as tasks, each asking for one GPU (or --threads CPUs, "
                   "default 1): --ray alone (after IN OUT) starts Ray on this machine, --ray auto joins the cluster this machine "
                   "is in, or HOST:6379. Outputs and inputs must be on storage every node sees. Needs pip install 'vfi-zoom[ray]'.")
@click.option("--ray-timeout", "ray_timeout", metavar="SECONDS", type=click.FloatRange(min=0, min_open=True),
              default=RAY_TIMEOUT, show_default=True,
              help="How long the --ray address has to answer before the run fails with one line.")
@engine_options(EngineOptions(), device_list=True)
@verbosity("No progress bar or summary.")
def interpolate(
    paths: tuple[Path, ...], output_dir: Path | None, name: str | None, recursive: bool, jobs: int, json_path: Path | None,
    factor: int | None, fps_text: str | None, input_fps_text: str | None, weights: Path | str | None,
    codec: str, crf: int, preset: str, pix_fmt: str | None,
    encoder_opts: tuple[tuple[str, str], ...], scene_threshold: float | None, start_text: str | None, end_text: str | None,
    duration_text: str | None, dedup_text: str, no_scene_detect: bool,
    overwrite: bool, segment_text: str, no_resume: bool, ray: str | None, ray_timeout: float, engine: EngineOptions,
    devices: tuple[str, ...], output: Output,
) -> None:
    """Convert IN to a higher frame rate and write OUT (audio is copied); with -o DIR, every IN (files,
    folders of videos) into DIR, going on past files that fail."""
    batch_only = {"--name": name is not None, "--recursive": recursive, "--jobs": jobs > 1, "--json": json_path is not None,
                  "several --device": len(devices) > 1}
    if ray is not None and Path(ray).exists():
        fail(f"--ray took {ray} as the cluster's address: put --ray after the paths, or give it an address "
             "(local, auto, HOST:6379)", 2)
    if output_dir is None and len(paths) != 2:
        fail("give IN OUT for one file, or the inputs and -o/--output-dir DIR for a batch", 2)
    if output_dir is None and any(batch_only.values()):
        fail(f"{', '.join(k for k, v in batch_only.items() if v)}: for a batch (-o/--output-dir DIR)", 2)
    if ray is not None and (jobs > 1 or len(devices) > 1):
        fail("--jobs and several --device are for this machine; with --ray, Ray decides where and how many run at once", 2)
    if output_dir is not None and input_fps_text is not None:
        fail("--input-fps is for one folder of images (IN OUT); a batch converts video files", 2)
    if no_scene_detect and scene_threshold is not None:
        fail("give either --scene-threshold or --no-scene-detect, not both", 2)
    if factor is not None and fps_text is not None:
        fail("give either --factor or --fps, not both", 2)
    try:
        fps = None if fps_text is None else parse_rate(fps_text)
        input_fps = None if input_fps_text is None else parse_rate(input_fps_text)
    except ValueError as exc:
        fail(str(exc), 2)
    if end_text is not None and duration_text is not None:
        fail("give either --end or --duration, not both", 2)
    threshold = None if no_scene_detect else scene_threshold if scene_threshold is not None else default(ConvertOptions, "scene_threshold")
    try:
        dedup = parse_dedup(dedup_text)
        segment = parse_time(segment_text)
        options = ConvertOptions(factor=factor, fps=fps, encode=EncodeSettings(codec, crf, preset, pix_fmt, encoder_opts),
                                 scene_threshold=threshold, start=start_text, end=end_text, duration=duration_text, dedup=dedup)
    except ValueError as exc:
        fail(str(exc), 2)
    if output_dir is not None:
        run_batch(paths, output_dir, options, engine=engine, devices=devices if len(devices) > 1 else (), jobs=jobs, weights=weights,
                  name=name, recursive=recursive, overwrite=overwrite, json_path=json_path, output=output,
                  segment=segment, resume=not no_resume, ray=ray, ray_timeout=ray_timeout)
        return
    source, destination = paths
    summary = call(lambda: api.convert(source, destination, options, engine=engine, weights=weights, input_fps=input_fps,
                                       overwrite=overwrite, progress=output, segment=segment, resume=not no_resume,
                                       ray=ray, ray_timeout=ray_timeout))
    output.status(summary_line(summary, scene_detect=not no_scene_detect))


def parse_dedup(text: str) -> float | None:
    """``--dedup``: off -> None, exact -> 0, a tolerance in levels -> itself."""
    words = {"off": None, "exact": 0.0}
    if text.strip().lower() in words:
        return words[text.strip().lower()]
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"--dedup takes off, exact or a tolerance in levels such as 10, not {text!r}") from None


def summary_line(summary: Summary, scene_detect: bool) -> str:
    cuts = f"{summary.cuts} scene cut(s) kept sharp" if scene_detect else "scene detection off"
    part = f" from {format_time(summary.start)} of the input" if summary.start else ""
    return (
        f"Wrote {summary.output}: {summary.frames_out} frames at {format_rate(summary.rate_out)} fps{part} "
        f"({summary.frames_in} in, {summary.synthesized} synthesised), duration {float(summary.duration_out):.3f} s; "
        f"{cuts}, {summary.static_pairs} static pair(s) copied; "
        + (f"{summary.duplicates} repeated frame(s) re-timed; " if summary.duplicates else "") +
        f"{summary.seconds:.1f} s, {summary.frames_out / max(summary.seconds, 1e-9):.2f} frames/s"
    )


@click.command()
@weights_option("Describe this weights file instead of the default model.")
@verbosity()
def info(weights: Path | str | None, output: Output) -> None:
    """Versions, devices, the model's parameter count, the weights in use and the shipped models."""
    described = call(lambda: api.describe(weights))
    versions = described["versions"]
    click.echo(f"vfi {versions['vfi']}  torch {versions['torch']}  av {versions['av']}")
    click.echo(f"devices: cpu ({described['threads']} threads)" + "".join(f", cuda:{i} {n}" for i, n in enumerate(described["cuda"])))
    if described["weights"] is None:
        click.echo("weights: none installed (looked in " + ", ".join(str(p) for p in described["searched"]) + ")")
        click.echo("architecture: default ModelConfig")
    else:
        click.echo(f"weights: {described['weights']} (sha256 {described['sha256']})")
        for line in described["card"]:
            click.echo(line)
    click.echo(f"stride: {described['stride']} (frame sides are padded to multiples of {described['multiple']})")
    for name, count in described["parameters"].items():
        click.echo(f"  {name:<10} {count:>10,d} parameters")
    if weights is None:  # what to choose among; --weights and --model describe one
        click.echo("shipped models (--model NAME):" if described["models"] else "shipped models: none")
        for model in described["models"]:
            click.echo(model_line(model))


def model_line(model: dict[str, Any]) -> str:
    """One shipped model in ``vfi info``: what to choose by (size, hold-out quality, speed), figures its card lacks left out."""
    figures = [f"{model['parameters']:,d} parameters" if model["parameters"] is not None else "parameters not on its card"]
    if model["psnr"] is not None:
        figures.append(f"hold-out PSNR {model['psnr']:.2f} dB, SSIM {model['ssim']:.4f}")
    if model["seconds_per_frame"] is not None:
        figures.append(f"{model['seconds_per_frame']:.3g} s per frame ({model['speed_source']})")
    description = f" — {model['description']}" if model["description"] else ""
    return f"  {model['name']}{' (default)' if model['default'] else ''}: {'; '.join(figures)}{description}"
