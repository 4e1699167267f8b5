"""One conversion from start to end: check the paths, read the input's header, set the model up,
plan the memory, run the pipeline (in resumable segments for a long output). Status lines and the
frame count go to a :class:`~vfi_cli.progress.Progress`."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

from vfi_cli.config import DEFAULT_SEGMENT, ConvertOptions, EngineOptions
from vfi_cli.files import OutputClaim
from vfi_cli.progress import SILENT, Progress
from vfi_cli.results import LoadedModel, Summary
from vfi_cli.units import format_rate

if TYPE_CHECKING:
    from vfi_cli.video.reader import VideoInfo


def open_input(source: Path, destination: Path, options: ConvertOptions, overwrite: bool,
               input_fps: Fraction | None) -> VideoInfo:
    """Check the paths and read the input's header; a target rate out of bounds is refused here,
    before any model loads or any work is sent out."""
    from vfi_cli.video.images import probe_images
    from vfi_cli.video.paths import check_paths
    from vfi_cli.video.reader import probe

    check_paths(source, destination, overwrite, input_fps)
    info = probe(source) if input_fps is None else probe_images(source, input_fps)
    options.output_rate(info.rate)
    return info


def convert_file(
    source: Path, destination: Path, options: ConvertOptions = ConvertOptions(), *, engine: EngineOptions = EngineOptions(),
    weights: Path | None = None, input_fps: Fraction | None = None, overwrite: bool = False, progress: Progress = SILENT,
    segment: Fraction | float | None = DEFAULT_SEGMENT, resume: bool = True, model: LoadedModel | None = None,
) -> Summary:
    """Everything ``vfi interpolate`` does after parsing; see :func:`vfi_cli.convert`. An output longer
    than ``segment`` seconds is made in segments that an interrupted run leaves for the next
    (:mod:`.segments`). A batch passes the ``model`` it loaded once (``weights`` and the device of
    ``engine`` are then not read again). The output is claimed for the whole run (:class:`OutputClaim`)."""
    source, destination = Path(source), Path(destination)
    info = open_input(source, destination, options, overwrite, input_fps)
    with OutputClaim(destination):  # a second run for this output is refused from now on
        return _convert(source, info, destination, options, engine, weights, overwrite, progress, segment, resume, model)


def _convert(source: Path, info: VideoInfo, destination: Path, options: ConvertOptions, engine: EngineOptions,
             weights: Path | None, overwrite: bool, progress: Progress, segment: Fraction | float | None, resume: bool,
             model: LoadedModel | None) -> Summary:
    from vfi_cli.backends.eager import load_model
    from vfi_cli.engine.pipeline import convert_video, expected_output_frames
    from vfi_cli.engine.runner import FrameInterpolator
    from vfi_cli.jobs.segmented import run_segments, weights_digest
    from vfi_cli.jobs.segments import plan_segments

    rate_out = options.output_rate(info.rate)
    model = model or load_model(weights, engine)
    progress.status(
        f"{source.name}: {info.width}x{info.height} {format_rate(info.rate)} fps -> {format_rate(rate_out)} fps | "
        f"model {model.parameters / 1e6:.2f}M params on {model.device} ({str(model.dtype).removeprefix('torch.')})"
    )
    interpolator = FrameInterpolator.from_options(model, info.height, info.width, engine)
    progress.status(f"{interpolator.backend.name} backend, {str(interpolator.dtype).removeprefix('torch.')}; "
                    f"flow at scale {engine.flow_scale:g}; {interpolator.plan.describe()}")
    plan = plan_segments(info, destination, options, engine, weights, segment)
    if plan is not None:
        return run_segments(plan, interpolator, weights_digest(model.card, model.weights),
                         expected_frames=expected_output_frames(info, options), resume=resume, overwrite=overwrite,
                         progress=progress)
    with progress.task("interpolating", expected_output_frames(info, options), unit="frames") as update:
        return convert_video(info, destination, interpolator, options, batch_size=engine.batch_size, on_frame=update,
                             overwrite=overwrite)
