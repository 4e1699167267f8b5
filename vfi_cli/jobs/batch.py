"""What a batch converts: the input files (folders expanded), each one's output name under the
output folder, and which of them are already done.

A plan is plain data (:class:`BatchJob`: source, destination, options), picklable, so that any
executor can run it: :mod:`.executors` runs it here, one file after another or several at once;
another executor may send the same jobs elsewhere. Nothing here loads a model or decodes a frame;
only a name that needs the input's frame rate reads the file's header.
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

from vfi_cli.config import BATCH_NAME, BATCH_NAME_FIELDS, DEFAULT_SEGMENT, ConvertOptions
from vfi_cli.errors import VfiError, first_line
from vfi_cli.results import FileResult
from vfi_cli.video.paths import VIDEO_SUFFIXES


@dataclass(frozen=True)
class BatchJob:
    """One file to convert: where from, where to, and how."""

    source: Path
    destination: Path
    options: ConvertOptions
    overwrite: bool = False
    segment: Fraction | float | None = DEFAULT_SEGMENT  # as for :func:`vfi_cli.convert`
    resume: bool = True
    input_fps: Fraction | None = None  # the rate of a folder of images (one file's conversion, not a batch's)


@dataclass
class BatchPlan:
    """``jobs`` to run, in order, and the files already settled: ``settled`` holds those skipped (their
    output exists) and those that failed while being named (an unreadable header). ``sources`` are
    all the files, in the order of the inputs."""

    jobs: list[BatchJob] = field(default_factory=list)
    settled: list[FileResult] = field(default_factory=list)
    sources: list[Path] = field(default_factory=list)

    def order(self, results: Sequence[FileResult]) -> tuple[FileResult, ...]:
        """``results`` of the jobs and the settled files, in the order of the inputs."""
        rank = {source: k for k, source in enumerate(self.sources)}
        return tuple(sorted([*results, *self.settled], key=lambda r: rank.get(r.source, len(rank))))


def compact_rate(rate: Fraction) -> str:
    """A rate for a file name: '48', '59.94' (no spaces, no slash; at most three decimals)."""
    return str(rate.numerator) if rate.denominator == 1 else f"{float(rate):.3f}".rstrip("0").rstrip(".")


def name_fields(pattern: str) -> set[str]:
    """The fields ``pattern`` uses; a one-line :class:`VfiError` for an unknown one, a path, or bad braces."""
    try:
        used = {name for _, name, _, _ in string.Formatter().parse(pattern) if name is not None}
    except ValueError as exc:
        raise VfiError(f"--name {pattern!r} is not a valid pattern ({exc})") from None
    unknown = sorted(name for name in used if name not in BATCH_NAME_FIELDS)
    if unknown or "" in used:
        shown = ", ".join("{" + name + "}" for name in unknown) or "{}"
        raise VfiError(f"--name {pattern!r} uses {shown}; the fields are " + ", ".join("{" + f + "}" for f in BATCH_NAME_FIELDS))
    if "/" in pattern or "\\" in pattern or pattern.strip() in ("", ".", ".."):
        raise VfiError(f"--name {pattern!r} must make a file name, not a path (with --recursive subfolders are mirrored)")
    return used


def output_name(pattern: str, source: Path, options: ConvertOptions, rate_in: Fraction | None) -> str:
    """``pattern`` filled in for ``source``: ``rate_in`` (the input's rate) is needed for {fps} with a
    factor and for {factor} with a rate; the factor of a rate is the output rate over the input's."""
    rate_out = options.fps if options.fps is not None else None if rate_in is None else options.output_rate(rate_in)
    factor = Fraction(options.factor) if options.factor is not None else None if rate_in is None else rate_out / rate_in
    values = {"stem": source.stem, "ext": source.suffix.removeprefix("."), "suffix": source.suffix,
              "fps": "" if rate_out is None else compact_rate(rate_out), "factor": "" if factor is None else compact_rate(factor)}
    return pattern.format(**values)


def video_files(folder: Path, recursive: bool, exclude: Path | None = None) -> list[Path]:
    """The video files in ``folder`` (and its subfolders, ``recursive``), sorted; hidden files and
    folders (vfi's own partial outputs among them) are left out, and so is ``exclude`` (the output
    folder, when it lies inside) with all it holds."""
    found = []
    for path in sorted(folder.rglob("*") if recursive else folder.iterdir()):
        relative = path.relative_to(folder)
        if any(part.startswith(".") for part in relative.parts) or "vfi-partial" in path.name:
            continue
        if exclude is not None and path.resolve().is_relative_to(exclude) and exclude != folder.resolve():
            continue
        if path.suffix.lower() in VIDEO_SUFFIXES and path.is_file():
            found.append(path)
    return found


def plan_batch(
    inputs: Sequence[Path], output_dir: Path, options: ConvertOptions, *, name: str = BATCH_NAME,
    recursive: bool = False, overwrite: bool = False, segment: Fraction | float | None = DEFAULT_SEGMENT, resume: bool = True,
) -> BatchPlan:
    """Expand ``inputs`` (files, or folders of videos) into jobs writing under ``output_dir``.

    A folder's files keep their place below it under ``output_dir`` with ``recursive`` (subfolders
    are mirrored); a file given by name goes straight into ``output_dir``. An output that exists is
    skipped unless ``overwrite``; a file whose output this batch writes is not an input.

    Raises:
        VfiError: a missing input, a bad ``name``, two inputs that would write one output, or an
            output that is an input; nothing has been written then.
    """
    from vfi_cli.video.reader import probe

    used = name_fields(name)
    needs_rate = ("fps" in used and options.fps is None) or ("factor" in used and options.factor is None)
    output_dir = Path(output_dir)
    if output_dir.exists() and not output_dir.is_dir():
        raise VfiError(f"--output-dir {output_dir} exists and is not a folder")
    exclude = output_dir.resolve()
    sources: list[tuple[Path, Path]] = []  # (file, its folder under output_dir)
    for given in map(Path, inputs):
        if given.is_dir():
            sources += [(path, output_dir / path.parent.relative_to(given)) for path in video_files(given, recursive, exclude)]
        elif given.is_file():
            sources.append((given, output_dir))
        else:
            raise VfiError(f"input not found: {given}")
    plan, claimed = BatchPlan(), {}
    named: list[tuple[Path, Path]] = []
    unique: dict[Path, tuple[Path, Path]] = {}
    for source, folder in sources:
        unique.setdefault(source.resolve(), (source, folder))  # a file given twice is converted once, in its first place
    for source, folder in unique.values():
        plan.sources.append(source)
        try:
            rate = probe(source).rate if needs_rate else None
        except VfiError as exc:
            plan.settled.append(FileResult(source, None, "failed", first_line(exc)))
            continue
        destination = folder / output_name(name, source, options, rate)
        if destination.resolve() in claimed:
            raise VfiError(f"{claimed[destination.resolve()]} and {source} would both be written to {destination}; "
                           "change --name or convert them separately")
        claimed[destination.resolve()] = source
        named.append((source, destination))
    for source, destination in named:
        if destination.resolve() == source.resolve():
            raise VfiError(f"the output of {source} would be the file itself; change --name or --output-dir")
    for source, destination in named:
        if source.resolve() in claimed:
            continue  # named as another input's output (a batch written into its inputs' folder): an output, not an input
        if destination.exists() and not overwrite:
            plan.settled.append(FileResult(source, destination, "skipped", "output exists"))
        else:
            plan.jobs.append(BatchJob(source, destination, options, overwrite, segment, resume))
    return plan
