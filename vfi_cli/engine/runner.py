"""Runs the network over a stream of frames: device, precision, padding, batching, feature reuse."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Protocol

import numpy as np
import torch

from vfi_cli.config import EngineOptions
from vfi_cli.engine.color import YuvLayout, rgb_to_yuv, yuv_to_rgb
from vfi_cli.engine.scenes import SceneDetector, is_still, thumbnail as scene_thumbnail
from vfi_cli.engine.schedule import OutputFrame, Schedule
from vfi_cli.engine.tiling import MemoryPlan, bytes_per_pixel, cache_bytes_per_pixel, default_budget, plan_memory
from vfi_cli.engine.transfer import Download, Transfer
from vfi_cli.model.network import Interpolator
from vfi_cli.model.padding import Padder
from vfi_cli.results import LoadedModel
from vfi_cli.video.color import yuv_planes


class HasRGB(Protocol):
    rgb: np.ndarray | None  # None for a video frame read as planes only (see FrameInterpolator.planes_in)
    time: Fraction | None


@dataclass
class _Prepared:
    image: torch.Tensor  # [1,3,H',W'] padded, on the device
    features: torch.Tensor | None  # None when tiled: each tile encodes its own crop
    peak: int  # 255 for uint8 frames, 65535 for uint16 (the RGB of 10-bit video)


class FrameInterpolator:
    """Synthesises frames between pairs of RGB arrays of one size (uint8, or uint16 for 10-bit video), in batches.

    Each frame is uploaded, padded and encoded to features once (:meth:`prepare`); the prepared
    frame then serves both pairs it belongs to. Frames too large for ``max_memory`` (default: a
    share of the free memory, see :mod:`vfi_cli.engine.tiling`) go through the model in fewer
    pairs per call, or in overlapping tiles; ``tile`` forces tiles of that side. Tiles recompute
    features per tile: a cached whole-frame feature map alone would be 256 B per pixel, while the
    7×7 feature layer is about 1% of the network's arithmetic. ``flow_scale`` (1, 0.5, 0.25)
    estimates flow on downscaled frames. ``backend`` names how the network runs
    (:func:`vfi_cli.backends.create_backend`); backends that run an exported graph compute the
    features inside it, so nothing is cached for them.

    With :attr:`planes_in` set, :meth:`prepare` takes a frame's Y, Cb, Cr planes and converts them
    on the device; with :attr:`planes_out` set, :meth:`synthesize` converts its frames to planes of
    that format on the device and returns :class:`~vfi_cli.engine.transfer.Download` handles (the
    pipeline sets both on CUDA; see :mod:`vfi_cli.engine.color`).
    """

    planes_in: YuvLayout | None = None
    planes_out: YuvLayout | None = None

    def __init__(
        self,
        model: Interpolator,
        device: torch.device,
        dtype: torch.dtype,
        height: int,
        width: int,
        *,
        flow_scale: float = 1.0,
        batch_size: int = 4,
        max_memory: int | None = None,
        tile: int | None = None,
        tile_overlap: int | None = None,
        backend: str = "auto",
    ) -> None:
        from vfi_cli.backends import create_backend

        self.model = model.to(device).eval()
        self.backend = create_backend(backend, self.model, device, dtype, flow_scale)
        self.device = device
        self.dtype = dtype
        self.transfer = Transfer(device)
        self.flow_scale = flow_scale
        self.padder = Padder(height, width, model.multiple(flow_scale))
        self.plan: MemoryPlan = plan_memory(
            self.padder.padded_height, self.padder.padded_width, model.multiple(flow_scale),
            model_bpp=bytes_per_pixel(model, flow_scale, dtype), cache_bpp=cache_bytes_per_pixel(model, dtype),
            batch_size=batch_size, budget=default_budget(device) if max_memory is None else max_memory,
            tile=tile, overlap=tile_overlap,
        )

    @classmethod
    def from_options(cls, model: LoadedModel, height: int, width: int, engine: EngineOptions) -> FrameInterpolator:
        """The interpolator for ``model`` on frames of ``height``×``width``, as ``engine`` asks."""
        return cls(
            model.network, model.device, model.dtype, height, width, flow_scale=engine.flow_scale,
            batch_size=engine.batch_size, max_memory=engine.max_memory, tile=engine.tile, tile_overlap=engine.tile_overlap,
            backend=engine.backend,
        )

    @torch.inference_mode()
    def prepare(self, pixels: np.ndarray | list[np.ndarray]) -> _Prepared:
        """Upload, pad and encode one frame: an ``[H,W,3]`` RGB array, or its planes (see :attr:`planes_in`)."""
        if isinstance(pixels, np.ndarray):
            peak = int(np.iinfo(pixels.dtype).max)
            host = pixels if pixels.dtype == np.uint8 else pixels.astype(np.float32)  # torch has few uint16 kernels
            tensor = self.transfer.upload([np.ascontiguousarray(host)])[0]
            image = self.padder.pad(tensor.permute(2, 0, 1).unsqueeze(0).float().div_(peak))
        else:
            assert self.planes_in is not None, "planes need planes_in"
            peak = self.planes_in.peak
            image = self.padder.pad(yuv_to_rgb(self.transfer.upload(pixels), self.planes_in).unsqueeze(0))
        if self.plan.tiles is not None:
            return _Prepared(image=image, features=None, peak=peak)
        return _Prepared(image=image, features=self.backend.features(image), peak=peak)

    @torch.inference_mode()
    def synthesize(self, pairs: Sequence[tuple[_Prepared, _Prepared, float]]) -> list[np.ndarray] | list[Download]:
        """Frames at t between each (first, second) pair, as RGB arrays of the inputs' dtype (or planes, see
        :attr:`planes_out`: quantised to the same RGB levels first, so that they are the RGB path's frames)."""
        results: list = []
        step = self.plan.pairs_per_call
        for start in range(0, len(pairs), step):
            chunk = pairs[start : start + step]
            refined = self._whole(chunk) if self.plan.tiles is None else self._tiled(chunk)
            peak = chunk[0][0].peak
            frames = self.padder.unpad(refined).clamp_(0, 1).mul_(peak).round_()
            if self.planes_out is not None:
                planes = rgb_to_yuv(frames.div_(peak), self.planes_out)
                results.extend(self.transfer.download([plane[i] for plane in planes]) for i in range(len(chunk)))
            elif peak == 255:
                results.extend(frames.to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy())
            else:
                results.extend(frames.to(torch.int32).permute(0, 2, 3, 1).cpu().numpy().astype(np.uint16))
        return results

    def _whole(self, pairs: Sequence[tuple[_Prepared, _Prepared, float]]) -> torch.Tensor:
        t = torch.tensor([float(p[2]) for p in pairs], device=self.device)
        return self._refine(
            _stack([p[0].image for p in pairs]), _stack([p[1].image for p in pairs]), t,
            _stack([p[0].features for p in pairs]), _stack([p[1].features for p in pairs]),
        )

    def _refine(self, image1: torch.Tensor, image2: torch.Tensor, t: torch.Tensor,
                features1: torch.Tensor | None = None, features2: torch.Tensor | None = None) -> torch.Tensor:
        """Only Ĩt in float32: the flows, mask and Ît die here, before the next tile's forward pass."""
        return self.backend.refine(image1, image2, t, features1, features2)

    def _tiled(self, pairs: Sequence[tuple[_Prepared, _Prepared, float]]) -> torch.Tensor:
        """Each tile through the whole network, blended into the frame with its feather weight."""
        image1 = _stack([p[0].image for p in pairs])
        image2 = _stack([p[1].image for p in pairs])
        t = torch.tensor([float(p[2]) for p in pairs], device=self.device)
        frame = torch.zeros(image1.shape, device=self.device)
        grid = self.plan.tiles
        assert grid is not None
        for rows, columns, weight in grid.windows(self.device):
            frame[..., rows, columns] += self._refine(image1[..., rows, columns], image2[..., rows, columns], t) * weight
        return frame


def _stack(tensors: list[torch.Tensor | None]) -> torch.Tensor | None:
    """torch.cat, without its copy for the common single tensor; None for a backend that keeps no features."""
    if any(x is None for x in tensors):
        return None
    return tensors[0] if len(tensors) == 1 else torch.cat(tensors)  # type: ignore[arg-type]


@dataclass
class PairCounts:
    """How many pairs of consecutive input frames were not interpolated, and why.

    A segment of a longer conversion counts only the pairs whose first frame's time lies in its
    ``span`` (begin, end; end None: to the end), so that its neighbours do not count them again."""

    cuts: int = 0  # a hard cut between the two frames: each output frame repeats the nearer one
    static: int = 0  # the same picture twice: output frames repeat it exactly
    span: tuple[Fraction, Fraction | None] | None = None

    def owns(self, time: Fraction | None) -> bool:
        """Whether the pair whose first frame is at ``time`` counts here."""
        if self.span is None or time is None:
            return True
        return self.span[0] <= time and (self.span[1] is None or time < self.span[1])


def interpolate_stream(
    frames: Iterable[HasRGB],
    schedule: Schedule,
    interpolator: FrameInterpolator,
    batch_size: int,
    detector: SceneDetector | None = None,
    counts: PairCounts | None = None,
) -> Iterator[tuple[OutputFrame, HasRGB | np.ndarray | Download]]:
    """Yield every output frame in order: an input frame itself for copies, what ``interpolator`` made otherwise
    (an RGB array, or a download of planes).

    Synthesis jobs are gathered until ``batch_size`` of them are pending; only the input frames
    that pending or future jobs can still use are kept. Nothing is synthesised across a cut found
    by ``detector`` (None: no cut detection): output frames before the midpoint of the pair repeat
    its first frame, those at or after it the second, as nearest-neighbour resampling would. Pairs of
    identical frames repeat the first, so a still picture stays pixel-identical. ``counts`` tallies both.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    counts = counts if counts is not None else PairCounts()
    window: dict[int, HasRGB] = {}
    prepared: dict[int, _Prepared] = {}
    pending: list[OutputFrame] = []
    cuts: set[int] = set()  # left index of each pair that straddles a cut
    statics: set[int] = set()  # left index of each pair of identical frames
    thumbnails: dict[int, np.ndarray] = {}

    def classify(index: int) -> None:
        """Decide whether the pair (index - 1, index) may be interpolated."""
        if detector is not None:
            thumbnails[index] = scene_thumbnail(window[index].rgb)
        if index == 0:
            return
        owned = counts.owns(window[index - 1].time)
        first, second = pixels(index - 1), pixels(index)
        if isinstance(first, np.ndarray):
            first, second = [first], [second]
        if all(is_still(a, b) for a, b in zip(first, second)):  # same planes <=> same picture, as same RGB is
            statics.add(index - 1)
            counts.static += owned
        elif detector is not None and detector.is_cut_between(thumbnails[index - 1], thumbnails[index]):
            cuts.add(index - 1)
            counts.cuts += owned

    def pixels(index: int) -> np.ndarray | list[np.ndarray]:
        """What the interpolator takes of a frame: its planes when it converts colour on its device, else RGB."""
        if getattr(interpolator, "planes_in", None) is not None:
            return yuv_planes(window[index].picture)  # type: ignore[attr-defined]
        return window[index].rgb  # type: ignore[return-value]

    def repeats(job: OutputFrame) -> int | None:
        """The input frame that output frame ``job`` repeats, or None when it is synthesised."""
        if job.is_copy or job.left in statics:
            return job.left
        if job.left in cuts:
            return job.left + (job.t >= Fraction(1, 2))
        return None

    def flush() -> Iterator[tuple[OutputFrame, HasRGB | np.ndarray | Download]]:
        jobs = [job for job in pending if repeats(job) is None]
        made: dict[int, np.ndarray | Download] = {}
        for start in range(0, len(jobs), batch_size):
            chunk = jobs[start : start + batch_size]
            pairs = []
            for job in chunk:
                for index in (job.left, job.left + 1):
                    if index not in prepared:
                        prepared[index] = interpolator.prepare(pixels(index))
                pairs.append((prepared[job.left], prepared[job.left + 1], float(job.t)))
            for job, rgb in zip(chunk, interpolator.synthesize(pairs)):
                made[job.number] = rgb
        for job in pending:
            source = repeats(job)
            yield job, (made[job.number] if source is None else window[source])
        pending.clear()

    def release(keep_from: int) -> None:
        for store in (window, prepared, thumbnails):
            for index in [i for i in store if i < keep_from]:
                del store[index]
        for marks in (cuts, statics):
            marks.difference_update([i for i in marks if i < keep_from])

    index = -1
    for index, frame in enumerate(frames):
        window[index] = frame
        classify(index)
        pending.extend(schedule.add_input(frame.time))
        synth_pending = sum(repeats(job) is None for job in pending)
        if synth_pending == 0 or synth_pending >= batch_size:
            yield from flush()
        release(min([index] + [job.left for job in pending]))
    if index >= 0:
        pending.extend(schedule.finish())
        yield from flush()
