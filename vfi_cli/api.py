"""The public functions of vfi: what the ``vfi`` command calls, and what a program or notebook calls.

Options come as the dataclasses of :mod:`vfi_cli.config`, results as those of
:mod:`vfi_cli.results`; errors a user can act on are :class:`~vfi_cli.errors.VfiError` (its
message says what to do). Long calls take ``progress``, any object with the methods of
:class:`vfi_cli.progress.Progress` (None: silent). Nothing heavy is imported until a function runs.

Example::

    import vfi_cli

    model = vfi_cli.load_model()                             # the shipped weights, on CUDA if present
    middle = vfi_cli.interpolate(model, [first, second])[0]  # uint8 RGB arrays in, one out (t = 0.5)
    summary = vfi_cli.convert("in.mp4", "out.mp4", vfi_cli.ConvertOptions(fps="60"))
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from fractions import Fraction
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vfi_cli.config import (BATCH_NAME, BENCH_ENGINE, DEFAULT_SEGMENT, RAY_TIMEOUT, BenchOptions, ConvertOptions, EngineOptions,
                            EvalOptions)
from vfi_cli.progress import SILENT, Progress
from vfi_cli.results import BatchSummary, FileResult, LoadedModel, Summary, TrainResult

if TYPE_CHECKING:
    import numpy as np


def load_model(weights: Path | str | None = None, engine: EngineOptions = EngineOptions()) -> LoadedModel:
    """Load interpolation weights and set the model up to run.

    Args:
        weights: a ``.safetensors`` file written by vfi (its card beside it is checked), or a shipped
            model's name (a str with no folder and no suffix, as ``"vfi-zoom"``); None: the default one.
        engine: the device, precision and threads to run on (the other fields matter when the model is used).

    Returns:
        The network on its device in eval mode, with its card, device and precision.

    Raises:
        MissingWeightsError: ``weights`` is None and no weights are installed.
        VfiError: an unreadable or mismatched weights file, an unknown or absent device, fp16 on the CPU.
    """
    from vfi_cli.backends.eager import load_model as setup

    return setup(_weights(weights), engine)


def interpolate(model: LoadedModel, frames: Sequence[np.ndarray], t: float | Sequence[float] = 0.5,
                engine: EngineOptions = EngineOptions()) -> list[np.ndarray]:
    """Frames at time(s) ``t`` between each two consecutive ``frames``.

    Args:
        model: from :func:`load_model`.
        frames: two or more RGB arrays ``[H,W,3]`` of one size, uint8 (or uint16 for more than
            8 bits); each is prepared once and serves both pairs it belongs to.
        t: a time in (0, 1) (0 is the first frame of a pair, 1 the second), or several.
        engine: pairs per model call and the memory plan (flow scale, budget, tiles); the model
            keeps the device and precision it was loaded with.

    Returns:
        For each pair in order, the frames at each time: ``(len(frames) - 1) * len(t)`` arrays of the inputs' size and dtype.

    Raises:
        ValueError: fewer than two frames, frames of different sizes, or a time outside (0, 1).
        VfiError: the frames do not fit the memory budget even in tiles.
    """
    from vfi_cli.engine.runner import FrameInterpolator

    times = [float(t)] if isinstance(t, (int, float)) else [float(x) for x in t]
    if len(frames) < 2:
        raise ValueError("interpolate needs at least two frames")
    if any(frame.shape != frames[0].shape for frame in frames):
        raise ValueError("all frames must have one size")
    if not times or not all(0 < x < 1 for x in times):
        raise ValueError(f"times must lie in (0, 1), got {times}")
    height, width = frames[0].shape[:2]
    runner = FrameInterpolator.from_options(model, height, width, engine)
    out: list[np.ndarray] = []
    after = runner.prepare(frames[0])
    for frame in frames[1:]:
        before, after = after, runner.prepare(frame)
        out += runner.synthesize([(before, after, x) for x in times])
    return out


def convert(
    source: Path | str,
    destination: Path | str,
    options: ConvertOptions = ConvertOptions(),
    *,
    engine: EngineOptions = EngineOptions(),
    weights: Path | str | None = None,
    input_fps: Fraction | None = None,
    overwrite: bool = False,
    progress: Progress | None = None,
    segment: Fraction | float | None = DEFAULT_SEGMENT,
    resume: bool = True,
    ray: str | None = None,
    ray_timeout: float = RAY_TIMEOUT,
) -> Summary:
    """Convert a video (or a folder of numbered images) to a higher frame rate.

    The output is written beside ``destination`` under a hidden name and renamed when complete;
    audio, subtitles, chapters and metadata are carried over (see the README). A video output longer
    than ``segment`` seconds is made in segments kept in a hidden work folder beside it
    (``.NAME.vfi-work``): after an interruption the same call goes on from the first segment not
    done, and the output is the one an uninterrupted run makes.

    Args:
        source: a video file, or a folder of numbered images with ``input_fps``.
        destination: a video file, or a folder (existing, or a name without an extension) for PNGs.
        options: the target rate (``factor`` or ``fps``), the encoder (and ``encode.options`` for it),
            the scene-cut threshold, held-frame detection (``dedup``), and a part to preview
            (``start`` with ``end`` or ``duration``).
        engine: device, precision, threads, batch size, flow scale and memory plan.
        weights: a weights file or a shipped model's name, as for :func:`load_model` (None: the default model).
        input_fps: the rate of a folder of images.
        overwrite: replace an existing ``destination``.
        progress: receives the status lines and the output frame count.
        segment: seconds of output per segment (None or 0: one piece, which cannot be resumed).
        resume: go on from the segments an interrupted run left (False: start over). A changed
            input or changed options start over in any case (a warning says so).
        ray, ray_timeout: send the segments to a Ray cluster as tasks: "local" (one started here), "auto", or its
            address (README), which has ``ray_timeout`` seconds to answer (a TCP connection) before the call fails.

    Returns:
        The frame counts, rates, exact durations and wall time of the conversion (and where a part began).

    Raises:
        VfiError: a missing or unreadable input, a refused output path, a target rate outside 1 fps
            (or the input's rate, if lower) to 64x the input's, missing or malformed weights, a bad
            device, an encoder failure, a file that appeared at ``destination`` meanwhile (nothing
            is left behind, and that file is kept).
        KeyboardInterrupt: Ctrl-C, or a termination signal the command line handles (nothing is left
            behind but the finished segments, which its message names).
    """
    from vfi_cli.jobs.cluster import convert_on_ray
    from vfi_cli.jobs.convert import convert_file

    return (convert_file if ray is None else partial(convert_on_ray, address=ray, timeout=ray_timeout))(
        Path(source), Path(destination), options, engine=engine, weights=_weights(weights),
        input_fps=input_fps, overwrite=overwrite, progress=progress or SILENT, segment=segment, resume=resume,
    )


def convert_batch(
    inputs: Sequence[Path | str],
    output_dir: Path | str,
    options: ConvertOptions = ConvertOptions(),
    *,
    name: str | None = None,
    recursive: bool = False,
    overwrite: bool = False,
    engine: EngineOptions = EngineOptions(),
    devices: Sequence[str] = (),
    jobs: int = 1,
    weights: Path | str | None = None,
    segment: Fraction | float | None = DEFAULT_SEGMENT,
    resume: bool = True,
    progress: Progress | None = None,
    on_done: Callable[[FileResult], None] | None = None,
    ray: str | None = None,
    ray_timeout: float = RAY_TIMEOUT,
) -> BatchSummary:
    """Convert many videos into one folder, going on past files that fail.

    Args:
        inputs: video files, and folders whose video files (by extension, sorted; hidden files
            left out) are converted.
        output_dir: where the outputs go (created); a folder's subfolders are mirrored below it
            with ``recursive``.
        options: as for :func:`convert`, the same for every file.
        name: the output file name pattern (default ``{stem}_{fps}fps{suffix}``); fields
            ``{stem}``, ``{ext}`` (no dot), ``{suffix}`` (with it), ``{fps}`` (the output rate: 48,
            59.94) and ``{factor}`` (2, or output rate over input rate with ``fps``).
        recursive: also convert the videos in the subfolders of folders given.
        overwrite: convert again files whose output exists (else they are skipped).
        engine: device, precision, threads ... of every file's conversion.
        devices: one device per worker process, in turn (e.g. ``["cuda:0", "cuda:1"]``); default the engine's.
        jobs: how many files run at once (worker processes, each with its own model and
            cores/jobs CPU threads); default one at a time with one model (or one per device).
        weights: a weights file or a shipped model's name (None: the default model).
        segment, resume: as for :func:`convert`: an interrupted file goes on from its segments.
        progress: receives status lines and each file's frame count (with ``jobs`` > 1, the file count).
        on_done: called with each file's result as it finishes (in the order they finish).
        ray, ray_timeout: as for :func:`convert`: every file's segments are Ray tasks (``jobs``, ``devices`` unused).

    Returns:
        Every file's result (converted, skipped because its output exists, or failed and why), in
        the order of the inputs, and the batch's wall time.

    Raises:
        VfiError: before anything is written, a missing input, a bad ``name``, two inputs with one
            output or an output that is an input; at any time, what would fail every file (weights,
            device); a file's own failure is in its result instead.
        KeyboardInterrupt: Ctrl-C (as :class:`~vfi_cli.errors.Interrupted`, saying how many files were done).
    """
    import time

    from vfi_cli.jobs.batch import plan_batch
    from vfi_cli.jobs.cluster import run_ray
    from vfi_cli.jobs.executors import run_local

    started = time.perf_counter()
    plan = plan_batch([Path(p) for p in inputs], Path(output_dir), options, name=name or BATCH_NAME,
                      recursive=recursive, overwrite=overwrite, segment=segment, resume=resume)
    for settled in plan.settled:
        if on_done is not None:
            on_done(settled)
    Path(output_dir).mkdir(parents=True, exist_ok=True)
    local = partial(run_local, workers=max(jobs, len(devices), 1), devices=devices)
    run = local if ray is None else partial(run_ray, address=ray, timeout=ray_timeout)
    results = run(plan.jobs, engine=engine, weights=_weights(weights), progress=progress or SILENT, on_done=on_done)
    return BatchSummary(plan.order(results), time.perf_counter() - started)


def train(
    run_dir: Path | str, *, resume: bool = False, export: Path | str | None = None, prepare_only: bool = False,
    progress: Progress | None = None, **options: Any,
) -> TrainResult | None:
    """Train the network (paper §3.3–3.5) in a run directory, or continue a run.

    Args:
        run_dir: the run's folder: config, metrics, samples, checkpoints, cache.
        resume: continue the run in ``run_dir`` from its checkpoint; only its length (``steps``, ``epochs``) and logging
            options may change.
        export: also write the trained generator there (``.safetensors`` and card).
        prepare_only: decode the clips and fill a network teacher's cache, then stop.
        progress: receives the status lines and the steps (with their losses).
        **options: fields of :class:`~vfi_cli.config.TrainConfig` (e.g. ``data``, ``steps``,
            ``crop``); ``model`` may also be a :class:`~vfi_cli.config.ModelConfig` or a JSON file
            of one (or a weights card), ``losses`` a :class:`~vfi_cli.config.LossWeights` or a
            dict of the weights to change, ``data`` a list of :class:`~vfi_cli.datasets.base.DataSpec`.

    Returns:
        Where training stopped (step, epoch, last losses, checkpoint, exported card), or None with ``prepare_only``.

    Raises:
        VfiError: bad options, data or weights; a run already in ``run_dir`` (without ``resume``);
            a loss that is not finite (the message names the last good checkpoint).
        Interrupted: Ctrl-C (or SIGTERM, SIGHUP, SIGQUIT under the command line: ``signum``); a
            checkpoint was written, the message says where.
    """
    from vfi_cli.training.run import run_training

    return run_training(Path(run_dir), resume=resume, export=None if export is None else Path(export),
                        prepare_only=prepare_only, progress=progress or SILENT, **options)


def evaluate(
    source: Path | str, options: EvalOptions = EvalOptions(), *, weights: Path | str | None = None,
    engine: EngineOptions = EngineOptions(), progress: Progress | None = None,
) -> dict[str, Any]:
    """Score the model (and baselines) on triplets: IE, PSNR and SSIM, whole frame and masks.

    Args:
        source: a video, a UCF101 (DVF) or Vimeo-90K triplet folder, or a CityScapes root.
        options: which triplets, which baselines, where the report and pictures go.
        weights: a weights file or a model's name (None: the default model); unused without ``options.use_model``.
        engine: device, precision, backend, threads and flow scale of the model.
        progress: receives the status lines and the triplet count.

    Returns:
        The report: per method and region the mean IE, PSNR, SSIM and their count, the
        definitions, the triplets skipped at cuts and every triplet's values (as ``--json`` writes it).

    Raises:
        VfiError: an unknown source layout or baseline, nothing to evaluate, missing weights.
    """
    from vfi_cli.evaluation.evaluate import evaluate_source

    return evaluate_source(Path(source), options, weights=_weights(weights), engine=engine, progress=progress or SILENT)


def benchmark(
    options: BenchOptions = BenchOptions(), *, weights: Path | str | None = None, engine: EngineOptions = BENCH_ENGINE,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Time interpolated frames through the engine, and optionally a whole conversion.

    Args:
        options: frame size, warm-up and timed calls, the ``e2e`` video and where the figures go.
        weights: a weights file or a model's name (None: the default model, else a random model of the default
            architecture: speed does not depend on the weights' values).
        engine: device, precision, threads, frames per call, flow scale and memory plan.
        progress: receives the status lines and the end-to-end frame count.

    Returns:
        Milliseconds per frame (median, min, max), frames per second, peak memory, the device, dtype and memory plan,
        and the end-to-end figures (``e2e``) when asked for.

    Raises:
        VfiError: a missing ``e2e`` video or JSON folder, a bad device, out of memory.
    """
    from vfi_cli.evaluation.bench import benchmark as run

    return run(options, weights=_weights(weights), engine=engine, progress=progress or SILENT)


def export(
    run: Path | str, destination: Path | str, *, half: bool = False, overwrite: bool = False,
    metrics: Path | str | dict[str, Any] | None = None, flow_scales: int | None = None,
) -> dict[str, Any]:
    """Write a training run's generator as weights for :func:`convert` and :func:`load_model`.

    Args:
        run: a run directory, or a checkpoint file in it.
        destination: the ``.safetensors`` file to write (its card goes beside it).
        half: store fp16 weights (half the size).
        overwrite: replace an existing ``destination``.
        metrics: a dict, or a JSON file holding one, added to the card's metrics (e.g. evaluation tables).
        flow_scales: the ``ModelConfig.flow_scales`` to write (no parameters; any run takes it); None: the run's.

    Returns:
        The card: config, recipe (command, steps, wall time, hardware, parent stages), metrics, sha256.

    Raises:
        VfiError: a missing or foreign checkpoint, an existing ``destination``, an unreadable ``metrics`` file.
    """
    from vfi_cli.training.export import export_weights

    return export_weights(Path(run), Path(destination), half=half, overwrite=overwrite,
                          metrics=Path(metrics) if isinstance(metrics, str) else metrics, flow_scales=flow_scales)


def export_onnx(
    destination: Path | str, *, weights: Path | str | None = None, flow_scale: float = 1.0, overwrite: bool = False,
) -> Path:
    """Write a model as an ONNX graph with dynamic batch, height and width.

    The graph's inputs are ``image1``, ``image2`` ([N,3,H,W] float32 RGB in [0,1], H and W
    multiples of the model's stride at ``flow_scale``, ``describe()["stride"]``) and ``t`` ([N]);
    a model with the classical DIS prior (the shipped one) also takes ``prior_flow1``,
    ``prior_flow2`` ([N,2,h,w]) and ``prior_mask`` ([N,1,h,w]) at the flow's resolution, which
    :func:`vfi_cli.model.export.graph_inputs` computes (DIS runs in OpenCV, outside any graph).
    Its output ``frame`` is the interpolated frame (clamp it to [0,1]).

    Args:
        destination: the ``.onnx`` file to write; it appears complete or not at all.
        weights: a weights file or a shipped model's name (None: the default model).
        flow_scale: the flow scale (1, 0.5, 0.25) built into the graph.
        overwrite: replace an existing ``destination``.

    Returns:
        The path written.

    Raises:
        VfiError: an existing ``destination`` (or one that appears meanwhile), a folder or read-only
            place there, missing, malformed or non-finite weights.
    """
    from vfi_cli.files import check_output_file
    from vfi_cli.model.export import export_onnx as write
    from vfi_cli.model.weights import load_weights

    destination = Path(destination)
    check_output_file(destination, "--onnx", overwrite=overwrite)  # before the weights are read and checked
    network, _ = load_weights(_weights(weights), "cpu")
    return write(network, destination, flow_scale=flow_scale, overwrite=overwrite)


def describe(weights: Path | str | None = None) -> dict[str, Any]:
    """Versions, devices, the weights in use and the shipped models: what ``vfi info`` prints.

    Args:
        weights: a weights file or a shipped model's name (None: the default model, or the default
            architecture when none is installed).

    Returns:
        ``versions`` (vfi, torch, av), ``threads``, ``cuda`` (device names), ``weights`` (path or None), ``searched`` (where
        the shipped models were looked for), ``sha256``, ``card`` (summary lines), ``stride``, ``parameters`` (per part, and
        ``total``) and ``models``: per shipped model its ``name``, ``path``, whether it is the ``default``, and from its
        card ``parameters``, ``description``, hold-out ``psnr`` / ``ssim``, ``seconds_per_frame`` and ``speed_source``.

    Raises:
        VfiError: an unreadable or mismatched weights file or card, an unknown model name.
    """
    import av
    import torch

    from vfi_cli import __version__
    from vfi_cli.model.weights import describe_weights

    return {
        "versions": {"vfi": __version__, "torch": torch.__version__, "av": av.__version__},
        "threads": torch.get_num_threads(),
        "cuda": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else [],
    } | describe_weights(_weights(weights))


def _weights(weights: Path | str | None) -> Path | None:
    """The file a ``weights`` argument means (a shipped model's name is looked up), or None for the default."""
    from vfi_cli.model.weights import resolve_weights

    return resolve_weights(weights)
