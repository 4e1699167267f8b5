"""``vfi interpolate IN... -o DIR``: a batch, its one line per file, the table at the end and ``--json``."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import click

from vfi_cli import api
from vfi_cli.cli.options import call
from vfi_cli.cli.output import STDOUT, Output
from vfi_cli.config import RAY_TIMEOUT, ConvertOptions, EngineOptions
from vfi_cli.files import check_output_file
from vfi_cli.results import BatchSummary, FileResult, to_json


def run_batch(
    inputs: Sequence[Path], output_dir: Path, options: ConvertOptions, *, engine: EngineOptions, devices: Sequence[str],
    jobs: int, weights: Path | str | None, name: str | None, recursive: bool, overwrite: bool, json_path: Path | None, output: Output,
    segment: Fraction | float | None, resume: bool, ray: str | None = None, ray_timeout: float = RAY_TIMEOUT,
) -> None:
    """Convert the batch, say how each file went as it finishes, then the table (and the JSON); exit 1
    when a file failed."""
    if json_path is not None and json_path != STDOUT:
        call(lambda: check_output_file(json_path, "--json"))  # before the work; a rerun replaces it

    def report(result: FileResult) -> None:
        if result.status == "failed":
            reason = result.reason or "failed"
            click.echo(f"Error: {reason}" if str(result.source) in reason else f"Error: {result.source}: {reason}", err=True)
        elif result.status == "skipped":
            output.status(f"{result.source}: skipped, {result.destination} exists (--overwrite converts it again)")
        else:
            output.status(f"{result.source} -> {result.destination}: {frames(result)} frames in {result.seconds:.1f} s")

    summary = call(lambda: api.convert_batch(inputs, output_dir, options, name=name, recursive=recursive, overwrite=overwrite,
                                             engine=engine, devices=devices, jobs=jobs, weights=weights, progress=output,
                                             segment=segment, resume=resume, on_done=report, ray=ray,
                                             ray_timeout=ray_timeout))
    if not output.quiet:
        output.console.print(batch_table(summary, output_dir))
    if json_path == STDOUT:
        click.echo(to_json(summary.to_dict()), nl=False)
    elif json_path is not None:
        json_path.write_text(to_json(summary.to_dict()))
        output.status(f"wrote {json_path}")
    if summary.failed:
        sys.exit(1)


def frames(result: FileResult) -> str:
    return "" if result.summary is None else f"{result.summary.frames_in} -> {result.summary.frames_out}"


def batch_table(summary: BatchSummary, output_dir: Path) -> Any:
    """The rich table: one row per file (frames in -> out, seconds, status) and the totals."""
    from rich.table import Table

    table = Table(title=f"{len(summary.files)} file(s) -> {output_dir}")
    for column in ("file", "frames", "time", "status"):
        table.add_column(column, justify="right" if column in ("frames", "time") else "left")
    for result in summary.files:
        status = result.status if result.status != "failed" else f"failed: {result.reason}"
        table.add_row(str(result.source), frames(result), f"{result.seconds:.1f} s" if result.summary else "", status)
    totals = summary.to_dict()["totals"]
    table.add_section()
    table.add_row("total", f"{totals['frames_in']} -> {totals['frames_out']}", f"{summary.seconds:.1f} s",
                  ", ".join(f"{totals[s]} {s}" for s in ("converted", "skipped", "failed") if totals[s]) or "nothing to do")
    return table
