"""``vfi bench``: time per interpolated frame through the engine, and end-to-end throughput.

The model timing goes through :class:`~vfi_cli.engine.runner.FrameInterpolator` exactly as
``vfi interpolate`` uses it (upload, padding, features of both frames, flow, warping, synthesis,
crop, download), so the figure is what a user gets per frame, not the bare network.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from vfi_cli.errors import MissingWeightsError, VfiError

DEFAULT_SIZE = (1024, 2048)  # the paper's 0.36 s anchor (CityScapes frames)
# (warm-up, timed iterations) when not given: a CPU frame at 2K takes tens of seconds.
DEFAULT_ROUNDS = {"cuda": (3, 20), "cpu": (1, 3)}
# Interpolator attributes reported besides its memory plan (whole frames or tiles), when the engine has them.
_TILING_ATTRIBUTES = ("flow_scale",)


def run_bench(
    *,
    size: tuple[int, int] = DEFAULT_SIZE,
    device: str = "auto",
    precision: str | None = None,
    weights: Path | None = None,
    batch_size: int = 1,
    threads: int | None = None,
    warmup: int | None = None,
    iterations: int | None = None,
    e2e: Path | None = None,
    factor: int = 2,
    engine: dict[str, Any] | None = None,
    json_path: Path | None = None,
    quiet: bool = False,
) -> dict[str, Any]:
    """Everything ``vfi bench`` does after parsing: prints the figures and returns them.

    ``engine`` holds :class:`FrameInterpolator` options as ``vfi interpolate`` passes them
    (``flow_scale``, ``max_memory``, ``tile``, ``overlap``).
    """
    import torch
    from rich.console import Console

    from vfi_cli.engine.runner import resolve_device, resolve_precision
    from vfi_cli.evaluation.metrics import check_frame_size
    from vfi_cli.files import check_output_file

    if json_path is not None and not json_path.parent.resolve().is_dir():
        raise VfiError(f"--json directory does not exist: {json_path.parent}")
    if json_path is not None:
        check_output_file(json_path, "--json")
    try:
        check_frame_size(size, "--size")
    except ValueError as exc:
        raise VfiError(str(exc)) from None
    if e2e is not None and not e2e.is_file():
        raise VfiError(f"--e2e video not found: {e2e}")
    torch_device = resolve_device(device)
    dtype = resolve_precision(precision, torch_device)
    if threads is not None:
        torch.set_num_threads(threads)
    console = Console(stderr=True, quiet=quiet, soft_wrap=True)
    model, weights_text = _model(weights)
    if weights_text.startswith("random"):
        console.print("No trained weights: timing a randomly initialised model of the default architecture "
                      "(speed does not depend on the weights' values).")
    default_warmup, default_iterations = DEFAULT_ROUNDS.get(torch_device.type, DEFAULT_ROUNDS["cpu"])
    warmup = default_warmup if warmup is None else warmup
    iterations = default_iterations if iterations is None else iterations
    console.print(f"timing {size[0]}x{size[1]} on {device_name(torch_device)}: {warmup} warm-up + {iterations} timed call(s) "
                  f"of {batch_size} frame(s)")
    result = {
        "size": list(size),
        "device": str(torch_device),
        "device_name": device_name(torch_device),
        "dtype": str(dtype).removeprefix("torch."),
        "batch_size": batch_size,
        "threads": torch.get_num_threads(),
        "weights": weights_text,
        "parameters": sum(p.numel() for p in model.parameters()),
        "torch": torch.__version__,
        "python": platform.python_version(),
    }
    engine = {"batch_size": batch_size, **(engine or {})}
    result.update(time_model(model, torch_device, dtype, size, warmup=warmup, iterations=iterations, engine=engine))
    console.print(f"model: median {result['ms_per_frame']['median']:.1f} ms per frame")
    if e2e is not None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        with Progress(TextColumn(f"end to end, x{factor}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                      console=console, disable=quiet) as progress:
            task = progress.add_task("e2e", total=None)
            result["e2e"] = time_pipeline(model, torch_device, dtype, e2e, factor=factor, engine=engine,
                                          on_frame=lambda done: progress.update(task, completed=done))
    Console(soft_wrap=True).print(bench_table(result))
    if json_path is not None:
        json_path.write_text(json.dumps(result, indent=1) + "\n")
        console.print(f"wrote {json_path}")
    return result


def _model(weights: Path | None) -> tuple[Any, str]:
    """The given or default weights; a random model of the default config when none are installed."""
    import torch

    from vfi_cli.config import ModelConfig
    from vfi_cli.model.network import Interpolator
    from vfi_cli.model.weights import default_weights_path, load_weights

    try:
        model, card = load_weights(weights)
    except MissingWeightsError:
        torch.manual_seed(0)
        return Interpolator.from_config(ModelConfig()).eval(), "random (no trained weights installed), default ModelConfig"
    path = weights or default_weights_path()
    return model, f"{path} (sha256 {card.get('sha256', 'not on a card')})"


def device_name(device: Any) -> str:
    import torch

    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    name = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{name} ({os.cpu_count()} cores)"


def time_model(
    model: Any, device: Any, dtype: Any, size: tuple[int, int], *, warmup: int = 1, iterations: int = 3,
    engine: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Median / min / max milliseconds per interpolated frame, frames per second and peak memory.

    Each timed call interpolates ``engine["batch_size"]`` frames from two new RGB frames each,
    through the same :class:`FrameInterpolator` calls the pipeline makes; CUDA is synchronised
    around each call.
    """
    import torch

    from vfi_cli.engine.runner import FrameInterpolator

    if iterations < 1:
        raise VfiError("--iterations must be at least 1")
    engine = {"batch_size": 1, **(engine or {})}
    batch_size = engine["batch_size"]
    height, width = size
    interpolator = FrameInterpolator(model, device, dtype, height, width, **engine)
    rng = np.random.default_rng(0)
    first = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    second = np.roll(first, (3, 5), axis=(0, 1))

    def call() -> float:
        _synchronize(device)
        started = time.perf_counter()
        pairs = [(interpolator.prepare(first), interpolator.prepare(second), 0.5) for _ in range(batch_size)]
        interpolator.synthesize(pairs)
        _synchronize(device)
        return time.perf_counter() - started

    try:
        for _ in range(warmup):
            call()
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        seconds = [call() / batch_size for _ in range(iterations)]
    except torch.OutOfMemoryError as exc:
        raise VfiError(f"out of memory at {height}x{width} with batch size {batch_size} on {device}: try a smaller --size or --batch-size") from exc
    median = statistics.median(seconds)
    if device.type == "cuda":
        memory, memory_kind = torch.cuda.max_memory_allocated(device), "CUDA max allocated"
    else:
        memory, memory_kind = _peak_rss(), "process peak RSS"
    return {
        "warmup": warmup,
        "iterations": iterations,
        "ms_per_frame": {"median": 1000 * median, "min": 1000 * min(seconds), "max": 1000 * max(seconds)},
        "fps": 1.0 / median,
        "peak_memory_mib": memory / 2**20,
        "memory_kind": memory_kind,
        "tiling": tiling_of(interpolator),
    }


def tiling_of(interpolator: Any) -> str:
    """What the engine does to fit big frames: its memory plan and flow scale when it has them."""
    plan = getattr(interpolator, "plan", None)
    parts = [plan.describe()] if hasattr(plan, "describe") else []
    parts += [f"{name}={getattr(interpolator, name)}" for name in _TILING_ATTRIBUTES if getattr(interpolator, name, None) is not None]
    return "; ".join(parts) or "none (whole frames)"


def _synchronize(device: Any) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _peak_rss() -> int:
    """Peak resident memory of this process in bytes (ru_maxrss is KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def time_pipeline(model: Any, device: Any, dtype: Any, video: Path, *, factor: int = 2, engine: dict[str, Any] | None = None,
                  on_frame: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Convert ``video`` (output discarded) and report output frames/s and each stage's busy share of the wall time.

    The stages overlap, so the shares need not add up to 100%; the stage nearest 100% limits throughput.
    """
    from vfi_cli.engine.pipeline import ConvertOptions, convert_video
    from vfi_cli.engine.runner import FrameInterpolator
    from vfi_cli.video.reader import probe

    engine = {"batch_size": 1, **(engine or {})}
    info = probe(video)
    interpolator = FrameInterpolator(model, device, dtype, info.height, info.width, **engine)
    with tempfile.TemporaryDirectory(prefix="vfi-bench-") as folder:
        summary = convert_video(info, Path(folder) / f"out{video.suffix or '.mkv'}", interpolator,
                                ConvertOptions(factor=factor, batch_size=engine["batch_size"]), on_frame=on_frame)
    wall = max(summary.seconds, 1e-9)
    return {
        "video": str(video),
        "size": [info.height, info.width],
        "factor": factor,
        "frames_in": summary.frames_in,
        "frames_out": summary.frames_out,
        "synthesized": summary.synthesized,
        "seconds": summary.seconds,
        "output_fps": summary.frames_out / wall,
        "busy_seconds": summary.busy_seconds,
        "busy_share": {stage: busy / wall for stage, busy in summary.busy_seconds.items()},
    }


def bench_table(result: dict[str, Any]) -> Any:
    from rich.table import Table

    table = Table(title="vfi bench", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    ms = result["ms_per_frame"]
    height, width = result["size"]
    rows = [
        ("frame size", f"{height}x{width}"),
        ("device", f"{result['device']}: {result['device_name']}"),
        ("dtype / batch / threads", f"{result['dtype']} / {result['batch_size']} / {result['threads']}"),
        ("tiling", result["tiling"]),
        ("weights", result["weights"]),
        ("ms per frame", f"median {ms['median']:.1f}, min {ms['min']:.1f}, max {ms['max']:.1f} "
                         f"({result['warmup']} warm-up, {result['iterations']} timed)"),
        ("frames per second", f"{result['fps']:.3f}"),
        ("peak memory", f"{result['peak_memory_mib']:.0f} MiB ({result['memory_kind']})"),
    ]
    if "e2e" in result:
        e2e = result["e2e"]
        shares = ", ".join(f"{stage} {100 * share:.0f}%" for stage, share in e2e["busy_share"].items())
        rows += [
            ("end to end", f"{e2e['frames_out']} frames out in {e2e['seconds']:.1f} s: {e2e['output_fps']:.2f} output frames/s "
                           f"({e2e['size'][0]}x{e2e['size'][1]}, x{e2e['factor']})"),
            ("busy share of wall time", shares),
        ]
    for key, value in rows:
        table.add_row(key, value)
    return table
