"""``vfi bench``: time per interpolated frame through the engine, and end-to-end throughput.

The model timing goes through :class:`~vfi_cli.engine.runner.FrameInterpolator` exactly as
``vfi interpolate`` uses it (upload, padding, features of both frames, flow, warping, synthesis,
crop, download), so the figure is what a user gets per frame, not the bare network.
"""

from __future__ import annotations

import json
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from vfi_cli.config import BENCH_ENGINE, BENCH_ROUNDS, BenchOptions, ConvertOptions, EngineOptions
from vfi_cli.errors import VfiError
from vfi_cli.files import check_output_file
from vfi_cli.memory import peak_rss
from vfi_cli.metrics import check_frame_size
from vfi_cli.progress import SILENT, Progress
from vfi_cli.results import LoadedModel

# Interpolator attributes reported besides its memory plan (whole frames or tiles), when the engine has them.
_TILING_ATTRIBUTES = ("flow_scale",)


def benchmark(
    options: BenchOptions = BenchOptions(), *, weights: Path | None = None, engine: EngineOptions = BENCH_ENGINE,
    progress: Progress = SILENT,
) -> dict[str, Any]:
    """Everything ``vfi bench`` does after parsing; see :func:`vfi_cli.benchmark`. Returns the figures."""
    import torch

    from vfi_cli.backends.eager import device_name, load_model

    if options.json_path is not None and not options.json_path.parent.resolve().is_dir():
        raise VfiError(f"--json directory does not exist: {options.json_path.parent}")
    if options.json_path is not None:
        check_output_file(options.json_path, "--json")
    try:
        check_frame_size(options.size, "--size")
    except ValueError as exc:
        raise VfiError(str(exc)) from None
    if options.e2e is not None and not options.e2e.is_file():
        raise VfiError(f"--e2e video not found: {options.e2e}")
    model = load_model(weights, engine, random_if_missing=True)
    if model.weights is None:
        progress.status("No trained weights: timing a randomly initialised model of the default architecture "
                        "(speed does not depend on the weights' values).")
        weights_text = "random (no trained weights installed), default ModelConfig"
    else:
        weights_text = f"{model.weights} (sha256 {model.card.get('sha256', 'not on a card')})"
    default_warmup, default_iterations = BENCH_ROUNDS.get(model.device.type, BENCH_ROUNDS["cpu"])
    warmup = default_warmup if options.warmup is None else options.warmup
    iterations = default_iterations if options.iterations is None else options.iterations
    size = options.size
    progress.status(f"timing {size[0]}x{size[1]} on {device_name(model.device)}: {warmup} warm-up + {iterations} timed call(s) "
                    f"of {engine.batch_size} frame(s)")
    result = {
        "size": list(size),
        "device": str(model.device),
        "device_name": device_name(model.device),
        "dtype": str(model.dtype).removeprefix("torch."),
        "batch_size": engine.batch_size,
        "threads": torch.get_num_threads(),
        "weights": weights_text,
        "parameters": model.parameters,
        "torch": torch.__version__,
        "python": platform.python_version(),
    }
    result.update(time_model(model, size, engine, warmup=warmup, iterations=iterations))
    progress.status(f"model: median {result['ms_per_frame']['median']:.1f} ms per frame")
    if options.all_backends:
        result["backends"] = compare_backends(model, size, engine, warmup=warmup, iterations=iterations, progress=progress)
    if options.e2e is not None:
        with progress.task(f"end to end, x{options.factor}", None, unit="frames") as update:
            result["e2e"] = time_pipeline(model, options.e2e, engine, factor=options.factor, on_frame=update)
    if options.json_path is not None:
        options.json_path.write_text(json.dumps(result, indent=1) + "\n")
    return result


def time_model(
    model: LoadedModel, size: tuple[int, int], engine: EngineOptions = BENCH_ENGINE, *, warmup: int = 1, iterations: int = 3,
) -> dict[str, Any]:
    """Median / min / max milliseconds per interpolated frame, frames per second and peak memory.

    Each timed call interpolates ``engine.batch_size`` frames from two new RGB frames each,
    through the same :class:`FrameInterpolator` calls the pipeline makes; CUDA is synchronised
    around each call.
    """
    import torch

    from vfi_cli.engine.runner import FrameInterpolator

    if iterations < 1:
        raise VfiError("--iterations must be at least 1")
    device, batch_size = model.device, engine.batch_size
    height, width = size
    interpolator = FrameInterpolator.from_options(model, height, width, engine)
    first, second = bench_pair(height, width)
    try:
        seconds = _timed_calls(interpolator, device, first, second, batch_size, warmup, iterations)
    except torch.OutOfMemoryError as exc:
        raise VfiError(f"out of memory at {height}x{width} with batch size {batch_size} on {device}: try a smaller --size or --batch-size") from exc
    median = statistics.median(seconds)
    if device.type == "cuda":
        memory, memory_kind = torch.cuda.max_memory_allocated(device), "CUDA max allocated"
    else:
        memory, memory_kind = _peak_rss(), "process peak RSS"
    return {
        "backend": interpolator.backend.name,  # what ran: "auto" resolved
        "warmup": warmup,
        "iterations": iterations,
        "ms_per_frame": {"median": 1000 * median, "min": 1000 * min(seconds), "max": 1000 * max(seconds)},
        "fps": 1.0 / median,
        "peak_memory_mib": memory / 2**20,
        "memory_kind": memory_kind,
        "tiling": tiling_of(interpolator),
    }


def bench_pair(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """A band-limited colour texture and the same moved by (3, 5) pixels: like a photograph, so
    that outputs of two backends differ only where their arithmetic does (on white noise any
    sub-pixel flow difference would show as a large error)."""
    import cv2

    rng = np.random.default_rng(0)
    small = rng.random((max(height // 8, 2), max(width // 8, 2), 3)).astype(np.float32)
    texture = cv2.resize(cv2.GaussianBlur(small, (0, 0), 1.0), (width + 8, height + 8), interpolation=cv2.INTER_CUBIC)
    texture = (np.clip(texture, 0, 1) * 255).round().astype(np.uint8)
    return np.ascontiguousarray(texture[:height, :width]), np.ascontiguousarray(texture[3 : height + 3, 5 : width + 5])


def compare_backends(
    model: LoadedModel, size: tuple[int, int], engine: EngineOptions, *, warmup: int, iterations: int, progress: Progress = SILENT,
) -> list[dict[str, Any]]:
    """Each installed backend and precision timed in one run, beside eager PyTorch in float32 and
    its default memory layout (the reference): median ms per frame, the ratio to the reference,
    and how far its frame is from the reference's (largest difference in 8-bit levels, PSNR)."""
    import dataclasses

    import torch

    from vfi_cli.backends import available_backends
    from vfi_cli.backends.eager import native_bf16
    from vfi_cli.backends.pytorch import TorchBackend
    from vfi_cli.engine.runner import FrameInterpolator

    device = model.device
    low = [torch.float16, torch.bfloat16] if device.type == "cuda" else ([torch.bfloat16] if native_bf16() else [])
    candidates: list[tuple[str, torch.dtype]] = [("torch", torch.float32)] + [("torch", dtype) for dtype in low]
    if device.type == "cpu":
        for name in ("onnxruntime", "openvino"):
            if name in available_backends():
                candidates += [(name, dtype) for dtype in ([torch.float32] + (low if name == "openvino" else []))]
    first, second = bench_pair(*size)
    rows: list[dict[str, Any]] = []
    reference_ms, reference_frame = 0.0, None
    for number, (name, dtype) in enumerate([("torch (default layout)", torch.float32)] + candidates):
        chosen = dataclasses.replace(engine, backend=name.split(" ")[0])
        loaded = dataclasses.replace(model, dtype=dtype)
        interpolator = FrameInterpolator.from_options(loaded, *size, chosen)
        if number == 0:  # the reference: eager float32 in PyTorch's default layout, as vfi ran before backends
            interpolator.backend = TorchBackend(model.network, device, torch.float32, engine.flow_scale, channels_last=False)
        timing = statistics.median(_timed_calls(interpolator, device, first, second, engine.batch_size, warmup, iterations))
        frame = interpolator.synthesize([(interpolator.prepare(first), interpolator.prepare(second), 0.5)])[0].astype(np.float64)
        if reference_frame is None:
            reference_ms, reference_frame = timing, frame
        error = float(np.mean((frame - reference_frame) ** 2))
        rows.append({
            "backend": name, "dtype": str(dtype).removeprefix("torch."), "ms_per_frame": 1000 * timing,
            "ratio_to_reference": timing / reference_ms, "max_level_difference": float(np.abs(frame - reference_frame).max()),
            "psnr_vs_reference": float("inf") if error == 0 else float(10 * np.log10(255**2 / error)),
        })
        progress.status(f"{name} {rows[-1]['dtype']}: median {rows[-1]['ms_per_frame']:.1f} ms per frame")
    return rows


def _timed_calls(
    interpolator: Any, device: Any, first: np.ndarray, second: np.ndarray, batch_size: int, warmup: int, iterations: int
) -> list[float]:
    """Seconds per frame of each timed call (after ``warmup`` untimed ones): ``batch_size`` frames
    per call, each from two new prepared frames, as the pipeline makes them; CUDA synchronised."""

    def call() -> float:
        _synchronize(device)
        started = time.perf_counter()
        interpolator.synthesize([(interpolator.prepare(first), interpolator.prepare(second), 0.5) for _ in range(batch_size)])
        _synchronize(device)
        return (time.perf_counter() - started) / batch_size

    for _ in range(warmup):
        call()
    if getattr(device, "type", None) == "cuda":
        import torch

        torch.cuda.reset_peak_memory_stats(device)
    return [call() for _ in range(iterations)]


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
    """Peak resident memory of this process in bytes (on every platform: :func:`vfi_cli.memory.peak_rss`)."""
    return peak_rss()


def time_pipeline(model: LoadedModel, video: Path, engine: EngineOptions = BENCH_ENGINE, *, factor: int = 2,
                  on_frame: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Convert ``video`` (output discarded) and report output frames/s and each stage's busy share of the wall time.

    The stages overlap, so the shares need not add up to 100%; the stage nearest 100% limits throughput.
    ``colour_share`` tells how much of the decode and encode shares was colour conversion on the host
    (on CUDA the synthesised frames' conversion runs on the device, inside the model's share).
    """
    from vfi_cli.engine.pipeline import convert_video
    from vfi_cli.engine.runner import FrameInterpolator
    from vfi_cli.video.reader import probe

    info = probe(video)
    interpolator = FrameInterpolator.from_options(model, info.height, info.width, engine)
    with tempfile.TemporaryDirectory(prefix="vfi-bench-") as folder:
        summary = convert_video(info, Path(folder) / f"out{video.suffix or '.mkv'}", interpolator,
                                ConvertOptions(factor=factor), batch_size=engine.batch_size, on_frame=on_frame)
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
        "colour_share": {stage: busy / wall for stage, busy in summary.colour_seconds.items()},
    }
