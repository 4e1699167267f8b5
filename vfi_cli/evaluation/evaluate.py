"""``vfi eval``: score methods on the triplets of a source (the whole frame and the source's masks).

Each method maps ``(first, second) -> middle`` on uint8 RGB frames (:mod:`.methods`) and is scored
by :func:`vfi_cli.metrics.measure`; sources come from :mod:`vfi_cli.datasets`.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from vfi_cli.config import EngineOptions, EvalOptions
from vfi_cli.datasets.base import TripletSource
from vfi_cli.errors import VfiError
from vfi_cli.evaluation.figures import psnr_plot, side_by_side
from vfi_cli.evaluation.methods import BASELINES, Method, ModelMethod
from vfi_cli.files import check_output_file, check_output_folder
from vfi_cli.metrics import SSIM_WINDOW, check_frame_size, measure
from vfi_cli.progress import SILENT, Progress
from vfi_cli.results import to_json

DEFINITIONS = {
    "ie": "sqrt(mean over pixels of sum over R,G,B of (pred-truth)^2), values 0-255 (Middlebury IE)",
    "psnr": "10*log10(255^2/MSE), MSE over all pixels and channels, capped at 100 dB; mean of per-triplet dB",
    "ssim": "scikit-image structural_similarity on RGB: 7x7 uniform window, K1=0.01, K2=0.03, data_range=255, channel mean",
}


def evaluate(
    source: TripletSource,
    methods: dict[str, Method],
    *,
    on_triplet: Callable[[int], None] | None = None,
    save_dir: Path | None = None,
    save_count: int = 4,
) -> dict[str, Any]:
    """Score every method on every triplet; returns the report (also what ``--json`` writes).

    Per region and method: the mean IE, PSNR (mean of per-triplet dB) and SSIM over the triplets
    whose region is not empty, and their count. Seconds are the wall time of each method's call.
    """
    if not methods:
        raise VfiError("nothing to evaluate: no model and no --compare baselines")
    save_at = set(np.linspace(0, max(source.planned - 1, 0), save_count).round().astype(int)) if save_dir and save_count else set()
    rows: list[dict[str, Any]] = []
    for number, triplet in enumerate(source.triplets):
        row: dict[str, Any] = {"name": triplet.name, "seconds": {}, "metrics": {}}
        outputs = {}
        for name, method in methods.items():
            started = time.perf_counter()
            outputs[name] = method(triplet.first, triplet.second)
            row["seconds"][name] = time.perf_counter() - started
            try:
                row["metrics"][name] = measure(outputs[name], triplet.truth, {"all": None, **triplet.regions})
            except ValueError as exc:  # frames smaller than SSIM's window, a mask of another size
                raise VfiError(f"cannot score {triplet.name}: {exc}") from None
        rows.append(row)
        if save_dir is not None and number + len(source.skipped) in save_at:
            save_dir.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(save_dir / f"{number:04d}_{_safe(triplet.name)}.png"), side_by_side(triplet, outputs)[:, :, ::-1])
        if on_triplet is not None:
            on_triplet(number + 1)
    if not rows:
        raise VfiError(f"no triplets to evaluate in {source.path}" + (f" ({len(source.skipped)} skipped at hard cuts)" if source.skipped else ""))
    summary = {}
    for name in methods:
        regions = {}
        for region in dict.fromkeys(region for r in rows for region in r["metrics"][name]):
            values = {key: [r["metrics"][name][region][key] for r in rows if region in r["metrics"][name]] for key in DEFINITIONS}
            finite = [v for v in values["ie"] if not math.isnan(v)]
            regions[region] = {key: _nanmean(v) for key, v in values.items()} | {"count": len(finite)}
        summary[name] = {"seconds_per_frame": float(np.mean([r["seconds"][name] for r in rows])), "regions": regions}
    report = {
        "source": str(source.path),
        "kind": source.kind,
        "triplets": len(rows),
        "skipped_at_cuts": source.skipped,
        "definitions": DEFINITIONS,
        "methods": summary,
        "per_triplet": rows,
    }
    if save_dir is not None:
        save_dir.mkdir(parents=True, exist_ok=True)
        curves = {name: [r["metrics"][name]["all"]["psnr"] for r in rows] for name in methods}
        cv2.imwrite(str(save_dir / "psnr_per_triplet.png"), psnr_plot(curves)[:, :, ::-1])
    return report


def _nanmean(values: list[float]) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return float(np.mean(finite)) if finite else math.nan


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)[:80]


def write_json(report: dict[str, Any], path: Path) -> None:
    """Strict JSON: NaN (an empty mask) becomes null (:func:`vfi_cli.results.to_json`)."""
    path.write_text(to_json(report))


def evaluate_source(
    source_path: Path, options: EvalOptions = EvalOptions(), *, weights: Path | None = None,
    engine: EngineOptions = EngineOptions(), progress: Progress = SILENT,
) -> dict[str, Any]:
    """Everything ``vfi eval`` does after parsing; see :func:`vfi_cli.evaluate`. Returns the report."""
    from vfi_cli.datasets.testsets import open_source

    unknown = [name for name in options.compare if name not in BASELINES]
    if unknown:
        raise VfiError(f"unknown --compare method {unknown[0]!r} (use {', '.join(BASELINES)})")
    if not options.use_model and not options.compare:
        raise VfiError("--no-model needs --compare (e.g. --compare blend,repeat): there is nothing else to evaluate")
    if options.json_path is not None and not options.json_path.parent.resolve().is_dir():
        raise VfiError(f"--json directory does not exist: {options.json_path.parent}")
    check_outputs(json_path=options.json_path, save_dir=options.save_dir)
    if options.resize is not None:
        try:
            check_frame_size(options.resize, "--resize", smallest=SSIM_WINDOW)
        except ValueError as exc:
            raise VfiError(str(exc)) from None
    source = open_source(source_path, stride=options.stride, max_triplets=options.max_triplets, start_fraction=options.start_fraction,
                         resize=options.resize, split=options.split, trimap_widths=options.trimap_widths)
    methods: dict[str, Method] = {}
    model_info: dict[str, Any] = {}
    ours: ModelMethod | None = None
    if options.use_model:
        from vfi_cli.backends import auto_backend
        from vfi_cli.backends.eager import load_model

        model = load_model(weights, engine)
        ours = ModelMethod(model.network, model.device, model.dtype, engine.backend, engine.flow_scale)
        methods["ours"] = ours
        model_info = {"weights": str(model.weights), "sha256": model.card.get("sha256"),
                      "device": str(model.device), "dtype": str(model.dtype).removeprefix("torch."), "flow_scale": engine.flow_scale,
                      "backend": auto_backend(model.device, model.network) if engine.backend == "auto" else engine.backend}
        progress.status(f"model: {model_info['weights']} on {model_info['device']} ({model_info['dtype']})")
    methods.update({name: BASELINES[name] for name in options.compare})
    progress.status(f"{source.path}: {source.kind}, {source.planned} triplet(s)"
                    + (f", stride {options.stride}" if source.kind in ("video", "cityscapes") else ""))
    with progress.task("evaluating", source.planned, unit="triplets") as update:
        report = evaluate(source, methods, save_dir=options.save_dir, save_count=options.save_count,
                          on_triplet=lambda done: update(done + len(source.skipped)))
    if ours is not None and ours.backends_run:  # what ran, not what auto would pick (they differ on a fall-back)
        model_info["backend"] = ", ".join(ours.backends_run)
    report.update(model=model_info, stride=options.stride, start_fraction=options.start_fraction,
                  resize=list(options.resize) if options.resize else None)
    if options.json_path is not None:
        write_json(report, options.json_path)
    return report


def check_outputs(json_path: Path | None = None, save_dir: Path | None = None) -> None:
    """Refuse, before any work, a --json or --save-dir that could not be written at the end."""
    if json_path is not None:
        check_output_file(json_path, "--json")
    if save_dir is not None:
        check_output_folder(save_dir, "--save-dir")
