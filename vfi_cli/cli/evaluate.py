"""``vfi eval`` and ``vfi bench``, and the tables they print on stdout."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from vfi_cli import api
from vfi_cli.cli.options import call, comma_list, engine_options, fail, size, verbosity, weights_option
from vfi_cli.cli.output import STDOUT, Output, json_target
from vfi_cli.config import BENCH_ENGINE, BENCH_ROUNDS, VIDEO_TRIPLETS, BenchOptions, EngineOptions, EvalOptions, default
from vfi_cli.results import to_json
from vfi_cli.units import MAX_FACTOR


def print_result(table: Any, result: dict[str, Any], json_to_stdout: bool) -> None:
    """The table on stdout; with ``--json -`` the JSON alone on stdout (for a pipe) and the table on stderr."""
    from rich.console import Console

    Console(soft_wrap=True, stderr=json_to_stdout).print(table)
    if json_to_stdout:
        click.echo(to_json(result), nl=False)


@click.command(name="eval")
@click.argument("source", type=click.Path(path_type=Path))
@weights_option()
@click.option("--no-model", is_flag=True, help="Evaluate only the --compare baselines (needs no weights).")
@click.option("--compare", callback=comma_list, metavar="blend,repeat", help="Baselines scored in the same table.")
@click.option("--stride", type=click.IntRange(min=1), default=default(EvalOptions, "stride"), show_default=True,
              help="Video/CityScapes: frames i and i+2·S in, i+S as truth.")
@click.option("--max-triplets", type=click.IntRange(min=0), help=f"Spread this many evenly (0 = all; default {VIDEO_TRIPLETS} for a video, all for a folder).")
@click.option("--start-fraction", type=click.FloatRange(0, 1, max_open=True), default=default(EvalOptions, "start_fraction"), show_default=True,
              help="Use only triplets after this fraction (0.8: the last 20%).")
@click.option("--resize", callback=size, metavar="HxW", help="Resize frames (and masks) before evaluating.")
@click.option("--split", default=default(EvalOptions, "split"), show_default=True, help="CityScapes split folder.")
@click.option("--trimap-widths", callback=comma_list, default=",".join(map(str, default(EvalOptions, "trimap_widths"))), show_default=True,
              help="CityScapes trimap dilations in pixels.")
@click.option("--json", "json_path", type=click.Path(path_type=Path), callback=json_target,
              help="Write the report (means and per-triplet values) here; - for stdout (the table then goes to stderr).")
@click.option("--save-dir", type=click.Path(path_type=Path), help="Write side-by-side PNGs and a PSNR-per-triplet plot here.")
@click.option("--save-count", type=click.IntRange(min=0), default=default(EvalOptions, "save_count"), show_default=True,
              help="How many triplets get a side-by-side PNG.")
@engine_options(EngineOptions(), memory=False, scale=True)
@verbosity("Only the table.")
def eval_command(source: Path, weights: Path | str | None, no_model: bool, compare: tuple[str, ...], trimap_widths: tuple[str, ...],
                 engine: EngineOptions, output: Output, **options: Any) -> None:
    """Quality (IE, PSNR, SSIM) on triplets of a video, a UCF101/Vimeo-90K folder or CityScapes."""
    if not all(width.isdigit() for width in trimap_widths):
        fail("--trimap-widths takes whole pixel counts, e.g. 0,6,12", 2)
    to_stdout = options["json_path"] == STDOUT
    options["json_path"] = None if to_stdout else options["json_path"]
    chosen = EvalOptions(use_model=not no_model, compare=compare, trimap_widths=tuple(int(w) for w in trimap_widths), **options)
    report = call(lambda: api.evaluate(source, chosen, weights=weights, engine=engine, progress=output))
    print_result(summary_table(report), report, to_stdout)
    if report["skipped_at_cuts"]:
        output.status(f"skipped {len(report['skipped_at_cuts'])} triplet(s) spanning a hard cut")
    if chosen.json_path is not None:
        output.status(f"wrote {chosen.json_path}")
    if chosen.save_dir is not None:
        output.status(f"pictures in {chosen.save_dir}")


def summary_table(report: dict[str, Any]) -> Any:
    """The rich table: one row per method and region."""
    from rich.table import Table

    table = Table(title=f"{Path(report['source']).name}: {report['triplets']} triplet(s)")
    for column in ("method", "region", "IE ↓", "PSNR ↑", "SSIM ↑", "triplets", "ms/frame"):
        table.add_column(column, justify="left" if column in ("method", "region") else "right")
    for name, result in report["methods"].items():
        for region, values in result["regions"].items():
            cells = [f"{values['ie']:.2f}", f"{values['psnr']:.2f}", f"{values['ssim']:.4f}"] if values["count"] else ["-"] * 3
            table.add_row(name, region, *cells, str(values["count"]), f"{1000 * result['seconds_per_frame']:.1f}" if region == "all" else "")
    return table


@click.command()
@click.option("--size", callback=size, default="x".join(map(str, default(BenchOptions, "size"))), show_default=True, metavar="HxW",
              help="Frame size to time (e.g. 1080x1920, 2160x3840).")
@weights_option("Weights to time (default: the default model, else random weights).")
@click.option("--warmup", type=click.IntRange(min=0), help=f"Untimed calls first (default {BENCH_ROUNDS['cuda'][0]} on CUDA, {BENCH_ROUNDS['cpu'][0]} on the CPU).")
@click.option("--iterations", type=click.IntRange(min=1), help=f"Timed calls (default {BENCH_ROUNDS['cuda'][1]} on CUDA, {BENCH_ROUNDS['cpu'][1]} on the CPU).")
@click.option("--e2e", type=click.Path(path_type=Path), metavar="VIDEO", help="Also convert VIDEO (output discarded): output frames/s and decode/model/encode shares.")
@click.option("--factor", type=click.IntRange(2, MAX_FACTOR), default=default(BenchOptions, "factor"), show_default=True, help="Frame-rate factor of the --e2e run.")
@click.option("--json", "json_path", type=click.Path(path_type=Path), callback=json_target,
              help="Write the figures here as JSON; - for stdout (the table then goes to stderr).")
@engine_options(BENCH_ENGINE, all_backends=True)
@verbosity("Only the table.")
def bench(weights: Path | str | None, engine: EngineOptions, output: Output, **options: Any) -> None:
    """Milliseconds per interpolated frame at 1024x2048 (the paper's 0.36 s), memory, and end-to-end speed."""
    to_stdout = options["json_path"] == STDOUT
    options["json_path"] = None if to_stdout else options["json_path"]
    chosen = BenchOptions(**options)
    result = call(lambda: api.benchmark(chosen, weights=weights, engine=engine, progress=output))
    print_result(bench_table(result), result, to_stdout)
    if chosen.json_path is not None:
        output.status(f"wrote {chosen.json_path}")


def bench_table(result: dict[str, Any]) -> Any:
    """The rich table of a benchmark's figures."""
    from rich.table import Table

    table = Table(title="vfi bench", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    ms = result["ms_per_frame"]
    height, width = result["size"]
    rows = [
        ("frame size", f"{height}x{width}"),
        ("device", f"{result['device']}: {result['device_name']}"),
        ("backend / dtype / batch / threads", f"{result['backend']} / {result['dtype']} / {result['batch_size']} / {result['threads']}"),
        ("tiling", result["tiling"]),
        ("weights", result["weights"]),
        ("ms per frame", f"median {ms['median']:.1f}, min {ms['min']:.1f}, max {ms['max']:.1f} "
                         f"({result['warmup']} warm-up, {result['iterations']} timed)"),
        ("frames per second", f"{result['fps']:.3f}"),
        ("peak memory", f"{result['peak_memory_mib']:.0f} MiB ({result['memory_kind']})"),
    ]
    if "e2e" in result:
        e2e = result["e2e"]
        rows += [
            ("end to end", f"{e2e['frames_out']} frames out in {e2e['seconds']:.1f} s: {e2e['output_fps']:.2f} output frames/s "
                           f"({e2e['size'][0]}x{e2e['size'][1]}, x{e2e['factor']})"),
            ("busy share of wall time", _percentages(e2e["busy_share"])),
            ("of which colour conversion", _percentages(e2e["colour_share"])),
        ]
    for key, value in rows:
        table.add_row(key, value)
    if "backends" not in result:
        return table
    from rich.console import Group

    backends = Table(title="backends, one run (reference: eager PyTorch, float32, default layout)")
    for column in ("backend", "dtype", "ms per frame", "× reference", "max diff (levels)", "PSNR vs reference"):
        backends.add_column(column, justify="left" if column in ("backend", "dtype") else "right")
    for row in result["backends"]:
        backends.add_row(row["backend"], row["dtype"], f"{row['ms_per_frame']:.1f}", f"{row['ratio_to_reference']:.2f}",
                         f"{row['max_level_difference']:.0f}", f"{row['psnr_vs_reference']:.1f} dB")
    return Group(table, backends)


def _percentages(shares: dict[str, float]) -> str:
    return ", ".join(f"{stage} {100 * share:.0f}%" for stage, share in shares.items())
