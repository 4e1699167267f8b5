"""``vfi eval``: triplets from videos and test-set folders, the model and baselines, tables and pictures.

A triplet is two input frames and the true frame half-way between them. Sources are generators,
so a long video is never held in memory; each method maps ``(first, second) -> middle`` on uint8
RGB frames and is scored by :func:`vfi_cli.evaluation.metrics.measure` on the whole frame and on
the source's masks (UCF101 motion masks, CityScapes trimaps).
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from vfi_cli.errors import VfiError
from vfi_cli.evaluation.metrics import SSIM_WINDOW, check_frame_size, dilate, measure

Method = Callable[[np.ndarray, np.ndarray], np.ndarray]

DEFINITIONS = {
    "ie": "sqrt(mean over pixels of sum over R,G,B of (pred-truth)^2), values 0-255 (Middlebury IE)",
    "psnr": "10*log10(255^2/MSE), MSE over all pixels and channels, capped at 100 dB; mean of per-triplet dB",
    "ssim": "scikit-image structural_similarity on RGB: 7x7 uniform window, K1=0.01, K2=0.03, data_range=255, channel mean",
}
VIDEO_TRIPLETS = 50  # default --max-triplets for a video; test-set folders are used whole
TRIMAP_WIDTHS = (0, 6, 12, 18, 24)
CITYSCAPES_HUMAN = (24, 25)  # person, rider (gtFine labelIds)
CITYSCAPES_VEHICLE = tuple(range(26, 34))  # car, truck, bus, caravan, trailer, train, motorcycle, bicycle
CITYSCAPES_ANNOTATED = 19  # index of the annotated frame in each 30-frame snippet
_CITYSCAPES_NAME = re.compile(r"^(?P<city>.+)_(?P<seq>\d+)_(?P<frame>\d+)_leftImg8bit\.png$")


@dataclass
class Triplet:
    name: str
    first: np.ndarray
    truth: np.ndarray
    second: np.ndarray
    regions: dict[str, np.ndarray] = field(default_factory=dict)  # masks scored besides the whole frame


@dataclass
class TripletSource:
    """Triplets of one source. ``skipped`` fills while iterating (triplets across a hard cut)."""

    kind: str
    path: Path
    planned: int
    triplets: Iterator[Triplet]
    skipped: list[str] = field(default_factory=list)


# ----------------------------------------------------------------------------- sources


def open_source(
    path: Path,
    *,
    stride: int = 1,
    max_triplets: int | None = None,
    start_fraction: float = 0.0,
    resize: tuple[int, int] | None = None,
    split: str = "val",
    trimap_widths: Sequence[int] = TRIMAP_WIDTHS,
) -> TripletSource:
    """A video file, a UCF101 (DVF) or Vimeo-90K triplet folder, or a CityScapes root, told apart by layout."""
    path = Path(path)
    if not path.exists():
        raise VfiError(f"input not found: {path}")
    if stride < 1:
        raise VfiError("--stride must be at least 1")
    if not 0.0 <= start_fraction < 1.0:
        raise VfiError("--start-fraction must be in [0, 1)")
    if path.is_file():
        return video_triplets(path, stride=stride, max_triplets=max_triplets, start_fraction=start_fraction, resize=resize)
    if cityscapes_base(path, split) is not None:
        return cityscapes_triplets(path, split=split, stride=stride, max_triplets=max_triplets,
                                   start_fraction=start_fraction, resize=resize, trimap_widths=trimap_widths)
    if stride != 1:
        raise VfiError("--stride applies to videos and CityScapes; a triplet folder fixes its own frames")
    return folder_triplets(path, max_triplets=max_triplets, start_fraction=start_fraction, resize=resize)


def tail_start(count: int, start_fraction: float) -> int:
    """Index of the first of ``count`` items in the part after ``start_fraction``: rounded to the
    nearest item, the rule `vfi train` uses to hold out a clip's last 20%, so that
    ``--start-fraction 0.8`` scores exactly the frames training never saw (no more, no fewer)."""
    return int(round(count * start_fraction))


def spread(candidates: Sequence[Any], limit: int | None, start_fraction: float = 0.0) -> list[Any]:
    """``limit`` items evenly spread over the candidates from ``start_fraction`` of the way on (all if no limit)."""
    tail = list(candidates)[tail_start(len(candidates), start_fraction) :]
    if not limit or limit >= len(tail):
        return tail
    picks = sorted({round(x) for x in np.linspace(0, len(tail) - 1, limit)})
    return [tail[i] for i in picks]


def video_triplets(
    path: Path,
    *,
    stride: int = 1,
    max_triplets: int | None = VIDEO_TRIPLETS,
    start_fraction: float = 0.0,
    resize: tuple[int, int] | None = None,
    detector: Any = None,
) -> TripletSource:
    """Frames i and i+2·stride in, frame i+stride as truth; spans across a hard cut are skipped.

    ``start_fraction`` keeps whole spans inside the last part of the video (a held-out tail).
    """
    from vfi_cli.engine.scenes import SceneDetector
    from vfi_cli.video.reader import probe, read_frames

    info = probe(path)
    count = _count_frames(path)
    first_allowed = tail_start(count, start_fraction)
    last = count - 1 - 2 * stride
    if last < first_allowed:
        raise VfiError(f"{path} has {count} frames: too few for --stride {stride}" +
                       (f" in its last {1 - start_fraction:.0%}" if start_fraction else ""))
    starts = spread(range(first_allowed, last + 1), VIDEO_TRIPLETS if max_triplets is None else max_triplets)
    detector = detector or SceneDetector()
    source = TripletSource("video", path, len(starts), iter(()))

    def generate() -> Iterator[Triplet]:
        wanted = {s + k * stride for s in starts for k in range(3)}
        kept: dict[int, np.ndarray] = {}
        pending = list(starts)
        frames = read_frames(info)
        try:
            for frame in frames:
                if frame.index in wanted:
                    kept[frame.index] = _resize(frame.rgb, resize)
                while pending and pending[0] + 2 * stride <= frame.index:
                    start = pending.pop(0)
                    first, truth, second = (kept[start + k * stride] for k in range(3))
                    name = f"frame{start + stride:06d}"
                    if detector.is_cut(first, truth) or detector.is_cut(truth, second):
                        source.skipped.append(name)
                    else:
                        yield Triplet(name, first, truth, second)
                    for index in [i for i in kept if not pending or i < pending[0]]:
                        del kept[index]
                if not pending:
                    break
        finally:
            frames.close()

    source.triplets = generate()
    return source


def _count_frames(path: Path) -> int:
    """Exact frame count from the packets (no decoding); headers only estimate it for some containers.

    Counted with the reader's rule, so that discard packets (opencv_box.mp4 has one) do not shift
    the held-out tail by a frame.
    """
    import av

    from vfi_cli.video.reader import holds_frame, video_stream

    with av.open(str(path)) as container:
        return sum(1 for packet in container.demux(video_stream(container)) if holds_frame(packet))


def folder_triplets(
    root: Path, *, max_triplets: int | None = None, start_fraction: float = 0.0, resize: tuple[int, int] | None = None
) -> TripletSource:
    """UCF101 as Deep Voxel Flow ships it (``<id>/frame_00.png, frame_01.png, frame_02.png, motion_mask.png``)
    or Vimeo-90K (``sequences/<a>/<b>/im1.png, im2.png, im3.png``, the ``tri_testlist.txt`` entries when present)."""
    ucf = sorted(p.parent for p in root.rglob("frame_00.png") if (p.parent / "frame_02.png").is_file())
    if ucf:
        kind, folders, names = "ucf101", ucf, ("frame_00.png", "frame_01.png", "frame_02.png")
    else:
        kind, folders, names = "vimeo90k", _vimeo_folders(root), ("im1.png", "im2.png", "im3.png")
    if not folders:
        raise VfiError(
            f"{root} holds no triplets: expected a video file, UCF101 folders (<id>/frame_00.png, frame_01.png, "
            "frame_02.png), Vimeo-90K (<seq>/im1.png, im2.png, im3.png) or CityScapes (leftImg8bit_sequence/<split>/)"
        )
    chosen = spread(folders, max_triplets, start_fraction)

    def generate() -> Iterator[Triplet]:
        for folder in chosen:
            first, truth, second = (_resize(read_rgb(folder / name), resize) for name in names)
            regions = {}
            if (folder / "motion_mask.png").is_file():
                regions["motion"] = _resize_mask(read_mask(folder / "motion_mask.png"), resize)
            yield Triplet(folder.relative_to(root).as_posix() or folder.name, first, truth, second, regions)

    return TripletSource(kind, root, len(chosen), generate())


def _vimeo_folders(root: Path) -> list[Path]:
    listing = root / "tri_testlist.txt"
    base = root / "sequences" if (root / "sequences").is_dir() else root
    if listing.is_file():
        entries = [line.strip() for line in listing.read_text().splitlines() if line.strip()]
        return [base / entry for entry in entries if (base / entry / "im1.png").is_file()]
    return sorted(p.parent for p in root.rglob("im1.png") if (p.parent / "im3.png").is_file())


def cityscapes_base(root: Path, split: str) -> Path | None:
    """The folder of a split's ``<city>/*_leftImg8bit.png`` sequence frames, or None."""
    for base in (root / "leftImg8bit_sequence" / split, root / split):
        if base.is_dir() and any(base.glob("*/*_leftImg8bit.png")):
            return base
    return None


def cityscapes_snippets(base: Path) -> dict[tuple[str, str], dict[int, Path]]:
    """Sequence frames grouped by (city, sequence), keyed by frame number."""
    snippets: dict[tuple[str, str], dict[int, Path]] = {}
    for image in base.glob("*/*_leftImg8bit.png"):
        match = _CITYSCAPES_NAME.match(image.name)
        if match:
            snippets.setdefault((match["city"], match["seq"]), {})[int(match["frame"])] = image
    return snippets


def cityscapes_triplets(
    root: Path,
    *,
    split: str = "val",
    stride: int = 1,
    max_triplets: int | None = None,
    start_fraction: float = 0.0,
    resize: tuple[int, int] | None = None,
    trimap_widths: Sequence[int] = TRIMAP_WIDTHS,
) -> TripletSource:
    """One triplet per 30-frame snippet, with the annotated frame (index 19) as truth.

    When ``gtFine/<split>`` is beside the sequences, the 'human' (person, rider) and 'vehicle'
    (car ... bicycle) pixels of the annotated frame, dilated by each trimap width, become regions.
    """
    base = cityscapes_base(root, split)
    if base is None:
        raise VfiError(f"no CityScapes frames in {root} (expected leftImg8bit_sequence/{split}/<city>/*_leftImg8bit.png)")
    labels_base = base.parent.parent / "gtFine" / split
    plans = []
    for (city, seq), frames in sorted(cityscapes_snippets(base).items()):
        numbers = sorted(frames)
        runs = np.split(np.array(numbers), np.flatnonzero(np.diff(numbers) != 1) + 1)
        for run in runs:
            truth = int(run[CITYSCAPES_ANNOTATED]) if len(run) > CITYSCAPES_ANNOTATED else int(run[len(run) // 2])
            if truth - stride in frames and truth + stride in frames:
                plans.append((city, seq, truth, frames))
    if not plans:
        raise VfiError(f"no CityScapes snippet in {base} has frames {stride} before and after its annotated frame")
    chosen = spread(plans, max_triplets, start_fraction)

    def generate() -> Iterator[Triplet]:
        for city, seq, truth, frames in chosen:
            first, middle, second = (_resize(read_rgb(frames[n]), resize) for n in (truth - stride, truth, truth + stride))
            regions = {}
            labels_path = labels_base / city / f"{city}_{seq}_{truth:06d}_gtFine_labelIds.png"
            if labels_path.is_file():
                labels = cv2.imread(str(labels_path), cv2.IMREAD_UNCHANGED)
                objects = _resize_mask(np.isin(labels, CITYSCAPES_HUMAN + CITYSCAPES_VEHICLE), resize)
                regions = {f"trimap-{width}": dilate(objects, width) for width in trimap_widths}
            yield Triplet(f"{city}_{seq}_{truth:06d}", first, middle, second, regions)

    return TripletSource("cityscapes", root, len(chosen), generate())


def read_rgb(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise VfiError(f"cannot read image {path}")
    return np.ascontiguousarray(image[:, :, ::-1])


def read_mask(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if image is None:
        raise VfiError(f"cannot read mask {path}")
    return image > 127


def _resize(rgb: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    if size is None or rgb.shape[:2] == size:
        return rgb
    shrink = size[0] * size[1] < rgb.shape[0] * rgb.shape[1]
    return cv2.resize(rgb, (size[1], size[0]), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)


def _resize_mask(mask: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    if size is None or mask.shape[:2] == size:
        return mask
    return cv2.resize(mask.astype(np.uint8), (size[1], size[0]), interpolation=cv2.INTER_NEAREST).astype(bool)


# ----------------------------------------------------------------------------- methods


def blend(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """The rounded average of the two inputs: what a flow of zero gives."""
    return ((first.astype(np.uint16) + second + 1) // 2).astype(np.uint8)


def repeat(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """The first input again: frame duplication, the floor."""
    return first.copy()


BASELINES: dict[str, Method] = {"blend": blend, "repeat": repeat}


def model_method(model: Any, device: Any, dtype: Any) -> Method:
    """The network through the same engine as ``vfi interpolate`` (padding, precision), at t = 0.5."""
    from vfi_cli.engine.runner import FrameInterpolator

    interpolators: dict[tuple[int, int], FrameInterpolator] = {}

    def interpolate(first: np.ndarray, second: np.ndarray) -> np.ndarray:
        size = first.shape[:2]
        if size not in interpolators:
            interpolators[size] = FrameInterpolator(model, device, dtype, *size)
        engine = interpolators[size]
        return engine.synthesize([(engine.prepare(first), engine.prepare(second), 0.5)])[0]

    return interpolate


# ----------------------------------------------------------------------------- evaluation


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
    """Strict JSON: NaN (an empty mask) becomes null."""

    def clean(value: Any) -> Any:
        if isinstance(value, float) and math.isnan(value):
            return None
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        if isinstance(value, list):
            return [clean(v) for v in value]
        return value

    path.write_text(json.dumps(clean(report), indent=1, allow_nan=False) + "\n")


# ----------------------------------------------------------------------------- pictures

_HEAT_RANGE = 64.0  # colour-difference norm shown at full heat
_TILE_WIDTH = 1024


def side_by_side(triplet: Triplet, outputs: dict[str, np.ndarray]) -> np.ndarray:
    """Ground truth, each method (and the blend), and the first method's error as a heat map, labelled."""
    tiles = [("ground truth", triplet.truth)] + list(outputs.items())
    if "blend" not in outputs:
        tiles.append(("blend", blend(triplet.first, triplet.second)))
    first_name, first_output = next(iter(outputs.items()))
    error = np.sqrt(np.sum((first_output.astype(np.float64) - triplet.truth) ** 2, axis=2))
    heat = cv2.applyColorMap(np.clip(error * 255 / _HEAT_RANGE, 0, 255).astype(np.uint8), cv2.COLORMAP_INFERNO)[:, :, ::-1]
    tiles.append((f"error of {first_name} (0-{_HEAT_RANGE:.0f})", heat))
    return np.concatenate([_labelled(label, image) for label, image in tiles], axis=1)


def _labelled(label: str, image: np.ndarray) -> np.ndarray:
    if image.shape[1] > _TILE_WIDTH:
        height = round(image.shape[0] * _TILE_WIDTH / image.shape[1])
        image = cv2.resize(image, (_TILE_WIDTH, height), interpolation=cv2.INTER_AREA)
    strip = np.full((22, image.shape[1], 3), 255, np.uint8)
    cv2.putText(strip, label, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([strip, image], axis=0)


_PALETTE = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75)]


def psnr_plot(curves: dict[str, list[float]], size: tuple[int, int] = (420, 840)) -> np.ndarray:
    """A line chart of PSNR per triplet, one line per method (RGB uint8), drawn with OpenCV."""
    height, width = size
    left, right, top, bottom = 56, 150, 30, 40
    image = np.full((height, width, 3), 255, np.uint8)
    values = [v for curve in curves.values() for v in curve if math.isfinite(v)]
    low, high = (min(values), max(values)) if values else (0.0, 1.0)
    step = _nice_step((high - low) or 1.0)
    low, high = math.floor(low / step) * step, math.ceil(high / step) * step + (step if high == low else 0)
    count = max(len(curve) for curve in curves.values())

    def point(index: int, value: float) -> tuple[int, int]:
        x = left + (index / max(count - 1, 1)) * (width - left - right)
        y = top + (high - value) / (high - low) * (height - top - bottom)
        return round(x), round(y)

    text = dict(fontFace=cv2.FONT_HERSHEY_SIMPLEX, fontScale=0.4, color=(60, 60, 60), thickness=1, lineType=cv2.LINE_AA)
    for tick in np.arange(low, high + step / 2, step):
        y = point(0, tick)[1]
        cv2.line(image, (left, y), (width - right, y), (225, 225, 225), 1)
        cv2.putText(image, f"{tick:g}", (6, y + 4), **text)
    for index in sorted({round(x) for x in np.linspace(0, count - 1, min(count, 8))}):
        x = point(index, low)[0]
        cv2.putText(image, str(index), (x - 4, height - bottom + 16), **text)
    cv2.rectangle(image, (left, top), (width - right, height - bottom), (120, 120, 120), 1)
    cv2.putText(image, "PSNR per triplet (dB)", (left, 20), **(text | {"fontScale": 0.5}))
    cv2.putText(image, "triplet", ((left + width - right) // 2 - 20, height - 8), **text)
    for number, (name, curve) in enumerate(curves.items()):
        colour = _PALETTE[number % len(_PALETTE)]
        points = [point(i, v) for i, v in enumerate(curve) if math.isfinite(v)]
        if len(points) > 1:
            cv2.polylines(image, [np.array(points, np.int32)], False, colour, 2, cv2.LINE_AA)
        for p in points:
            cv2.circle(image, p, 3, colour, -1, cv2.LINE_AA)
        y = top + 10 + 20 * number
        cv2.line(image, (width - right + 10, y), (width - right + 30, y), colour, 2)
        cv2.putText(image, name, (width - right + 36, y + 4), **text)
    return image


def _nice_step(span: float) -> float:
    """A 1-2-5 grid step giving about five lines over ``span``."""
    raw = span / 5
    magnitude = 10 ** math.floor(math.log10(raw))
    return next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)


# ----------------------------------------------------------------------------- the command


def run_eval(
    source_path: Path,
    *,
    weights: Path | None = None,
    use_model: bool = True,
    compare: Sequence[str] = (),
    device: str = "auto",
    precision: str | None = None,
    threads: int | None = None,
    stride: int = 1,
    max_triplets: int | None = None,
    start_fraction: float = 0.0,
    resize: tuple[int, int] | None = None,
    split: str = "val",
    trimap_widths: Sequence[int] = TRIMAP_WIDTHS,
    json_path: Path | None = None,
    save_dir: Path | None = None,
    save_count: int = 4,
    quiet: bool = False,
) -> dict[str, Any]:
    """Everything ``vfi eval`` does after parsing: prints the table, returns the report."""
    from rich.console import Console

    unknown = [name for name in compare if name not in BASELINES]
    if unknown:
        raise VfiError(f"unknown --compare method {unknown[0]!r} (use {', '.join(BASELINES)})")
    if not use_model and not compare:
        raise VfiError("--no-model needs --compare (e.g. --compare blend,repeat): there is nothing else to evaluate")
    if json_path is not None and not json_path.parent.resolve().is_dir():
        raise VfiError(f"--json directory does not exist: {json_path.parent}")
    check_outputs(json_path=json_path, save_dir=save_dir)
    if resize is not None:
        try:
            check_frame_size(resize, "--resize", smallest=SSIM_WINDOW)
        except ValueError as exc:
            raise VfiError(str(exc)) from None
    source = open_source(source_path, stride=stride, max_triplets=max_triplets, start_fraction=start_fraction,
                         resize=resize, split=split, trimap_widths=trimap_widths)
    console = Console(stderr=True, quiet=quiet, soft_wrap=True)
    methods: dict[str, Method] = {}
    model_info: dict[str, Any] = {}
    if use_model:
        methods["ours"], model_info = _load_model(weights, device, precision, threads)
        console.print(f"model: {model_info['weights']} on {model_info['device']} ({model_info['dtype']})")
    methods.update({name: BASELINES[name] for name in compare})
    console.print(f"{source.path}: {source.kind}, {source.planned} triplet(s)" + (f", stride {stride}" if source.kind in ("video", "cityscapes") else ""))
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(TextColumn("evaluating"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=console, disable=quiet) as progress:
        task = progress.add_task("evaluating", total=source.planned)
        report = evaluate(source, methods, save_dir=save_dir, save_count=save_count,
                          on_triplet=lambda done: progress.update(task, completed=done + len(source.skipped)))
    report.update(model=model_info, stride=stride, start_fraction=start_fraction,
                  resize=list(resize) if resize else None)
    Console(soft_wrap=True).print(summary_table(report))
    if source.skipped:
        console.print(f"skipped {len(source.skipped)} triplet(s) spanning a hard cut")
    if json_path is not None:
        write_json(report, json_path)
        console.print(f"wrote {json_path}")
    if save_dir is not None:
        console.print(f"pictures in {save_dir}")
    return report


def check_outputs(json_path: Path | None = None, save_dir: Path | None = None) -> None:
    """Refuse, before any work, a --json or --save-dir that could not be written at the end."""
    from vfi_cli.files import check_output_file, check_output_folder

    if json_path is not None:
        check_output_file(json_path, "--json")
    if save_dir is not None:
        check_output_folder(save_dir, "--save-dir")


def _load_model(weights: Path | None, device: str, precision: str | None, threads: int | None) -> tuple[Method, dict[str, Any]]:
    import torch

    from vfi_cli.engine.runner import resolve_device, resolve_precision
    from vfi_cli.model.weights import default_weights_path, load_weights

    torch_device = resolve_device(device)
    dtype = resolve_precision(precision, torch_device)
    model, card = load_weights(weights, torch_device)
    if threads is not None:
        torch.set_num_threads(threads)
    info = {"weights": str(weights or default_weights_path()), "sha256": card.get("sha256"),
            "device": str(torch_device), "dtype": str(dtype).removeprefix("torch.")}
    return model_method(model, torch_device, dtype), info


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
