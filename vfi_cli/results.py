"""What the public functions return: plain dataclasses, standard library only (torch types are named, not imported)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch


@dataclass
class LoadedModel:
    """A network ready to run: on its device, in eval mode, with the precision it runs in.

    ``weights`` is the file it came from (None for the randomly initialised model that
    :func:`vfi_cli.benchmark` times when no weights are installed); ``card`` its weights card
    (config, recipe, metrics, sha256).
    """

    network: torch.nn.Module
    card: dict[str, Any]
    weights: Path | None
    device: torch.device
    dtype: torch.dtype

    @property
    def parameters(self) -> int:
        return sum(p.numel() for p in self.network.parameters())


@dataclass(frozen=True)
class Summary:
    """One finished conversion: frame counts, rates, durations (exact), wall time and what was not interpolated."""

    frames_in: int
    frames_out: int
    synthesized: int
    rate_in: Fraction
    rate_out: Fraction
    duration_in: Fraction
    duration_out: Fraction
    seconds: float
    output: Path
    busy_seconds: dict[str, float]  # time each stage (decode, model, encode) spent working, not waiting
    frames_lost: int = 0  # input frames that could not be decoded (corrupt packets), skipped
    decode_error: str | None = None  # the first decoding error, when frames were lost
    cuts: int = 0  # input pairs straddling a hard cut (not interpolated: the nearer frame is repeated)
    static_pairs: int = 0  # pairs of identical input frames (copied, not synthesised)
    duplicates: int = 0  # input frames dropped as repeats of a held drawing (--dedup), their spans re-timed
    start: Fraction = Fraction(0)  # where in the input (seconds from its first frame) the output begins: a preview's first frame
    # Of the decode and encode stages' busy time, the seconds spent converting colour on the host (YUV <-> RGB);
    # on CUDA the conversion of synthesised frames runs on the device, inside the model stage.
    colour_seconds: dict[str, float] = field(default_factory=dict)



@dataclass(frozen=True)
class FileResult:
    """One file of a batch: ``status`` is "converted", "skipped" (its output existed) or "failed"
    (``reason`` says why in one line); ``summary`` is the conversion's, when it ran to the end."""

    source: Path
    destination: Path | None
    status: str
    reason: str | None = None
    summary: Summary | None = None
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """The file's record in a batch's JSON report."""
        return {
            "file": self.source, "output": self.destination, "status": self.status, "reason": self.reason,
            "frames_in": None if self.summary is None else self.summary.frames_in,
            "frames_out": None if self.summary is None else self.summary.frames_out,
            "rate_out": None if self.summary is None else self.summary.rate_out,
            "seconds": round(self.seconds, 3),
        }


@dataclass(frozen=True)
class BatchSummary:
    """A finished batch: every file's result in the order planned, and the batch's wall time."""

    files: tuple[FileResult, ...]
    seconds: float

    def count(self, status: str) -> int:
        return sum(result.status == status for result in self.files)

    @property
    def failed(self) -> int:
        return self.count("failed")

    def to_dict(self) -> dict[str, Any]:
        """The JSON report (``--json``): per-file records and the totals."""
        totals = {status: self.count(status) for status in ("converted", "skipped", "failed")}
        converted = [r.summary for r in self.files if r.summary is not None]
        return {
            "files": [result.to_dict() for result in self.files],
            "totals": {"files": len(self.files), **totals, "frames_in": sum(s.frames_in for s in converted),
                       "frames_out": sum(s.frames_out for s in converted), "seconds": round(self.seconds, 3)},
        }


@dataclass
class TrainResult:
    """Where a training run stopped: its step and epoch, the last logged losses and its checkpoint
    (None in the processes of a multi-process run that do not write it); ``exported`` is the card
    of the weights written at the end when asked for."""

    step: int
    epoch: int
    last_metrics: dict[str, float]
    checkpoint: Path | None
    exported: dict[str, Any] | None = None


def to_json(data: Any) -> str:
    """A report as strict JSON, the same in a file and on stdout (``--json -``): NaN (an empty mask)
    becomes null, paths and fractions become text; one value per line, ending with a newline."""

    def clean(value: Any) -> Any:
        if isinstance(value, float) and math.isnan(value):
            return None
        if isinstance(value, dict):
            return {str(k): clean(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [clean(v) for v in value]
        if isinstance(value, (Path, Fraction)):
            return str(value)
        return value

    return json.dumps(clean(data), indent=1, allow_nan=False) + "\n"
