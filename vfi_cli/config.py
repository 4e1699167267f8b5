"""Every option dataclass, with its defaults and choices: the one place both the API and the command line read them.

Standard library only (importing it is free). Field names are the API's words; the command line
maps its flags onto them (``--tile-overlap`` → :attr:`EngineOptions.tile_overlap`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from vfi_cli.architecture import MAX_FLOW_SCALES, ModelConfig
from vfi_cli.errors import VfiError
from vfi_cli.units import MAX_FACTOR, check_output_rate, parse_rate, parse_time

PRECISIONS = ("fp32", "fp16", "bf16")  # None: fp16 on CUDA; bf16 on CPUs with native bf16, else fp32
BACKENDS = ("auto", "torch", "onnxruntime", "openvino")  # how the network runs (vfi_cli.backends)
FLOW_SCALES = (1.0, 0.5, 0.25)
MAX_THREADS = 256
# vfi's --preset names (x264's), mapped to each encoder's own (vfi_cli.video.encoders).
PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow", "placebo")
DEFAULT_CUT_THRESHOLD = 0.3  # scene-cut score above which a pair is not interpolated
DEDUP_MAX_HOLD = 4  # frames a drawing may be held ("on fours") and still be re-timed; longer holds stay still
DEFAULT_SEGMENT = 60  # seconds of output per segment of a long conversion (each is kept when the run is interrupted)
RAY_LOCAL = "local"  # --ray without an address: a Ray instance started on this machine, on its cores
RAY_TIMEOUT = 30.0  # seconds a Ray cluster's address has to answer before the run fails
BATCH_NAME = "{stem}_{fps}fps{suffix}"  # a batch's output names: clip.mp4 -> clip_60fps.mp4
BATCH_NAME_FIELDS = ("stem", "ext", "suffix", "fps", "factor")  # what a batch's name pattern may use
# full: the paper's objective (Eq. 7-8); flow: a warm-up of the flow U-Net alone on Ît (photometric,
# smoothness, teacher), with neither synthesis nor discriminator, several times cheaper a step
TRAIN_STAGES = ("full", "flow")
ADVERSARIAL_MODES = ("none", "image", "instance")  # the paper's Ours-baseline / Ours-gan / Ours-roigan
PROPOSAL_KINDS = ("motion", "maskrcnn")
FEATURE_INITS = ("learned", "resnet18")
DATA_KINDS = ("synthetic", "videos", "ucf101", "cityscapes")
TEACHER_KINDS = ("dis", "rife", "vfi")  # --teacher dis, rife:PATH or vfi:WEIGHTS (vfi_cli.training.teachers)
VIDEO_TRIPLETS = 50  # what `vfi eval` scores of a video unless told (test-set folders are used whole)
BENCH_ROUNDS = {"cuda": (3, 20), "cpu": (1, 3)}  # (warm-up, timed) calls of `vfi bench` unless told: a 2K CPU frame takes seconds
TRIMAP_WIDTHS = (0, 6, 12, 18, 24)  # CityScapes trimap dilations (pixels) of the paper's Fig. 5–6
DEFAULT_MODEL = "vfi-ifnet"  # the shipped model (vfi_cli/weights/NAME.safetensors) used unless --model or --weights says otherwise


def is_model_name(text: str) -> bool:
    """Whether ``text`` names a shipped model rather than a weights file: no folder, no ``.safetensors``."""
    return not text.endswith(".safetensors") and "/" not in text and "\\" not in text


def _choice(name: str, value: Any, choices: tuple[Any, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(str, choices))}, got {value!r}")


@dataclass(frozen=True)
class EngineOptions:
    """How the network runs: device, precision, threads, pairs per call and the memory plan.

    ``device`` is "auto" (CUDA when present), "cpu", "cuda" or "cuda:N"; ``precision`` None means
    fp16 autocast on CUDA and, on the CPU, bf16 where the CPU computes it natively (AMX or
    AVX-512 BF16; within 1/255 of float32, see README, Speed) and fp32 elsewhere. ``backend``
    names the runtime (:mod:`vfi_cli.backends`; "auto" is eager PyTorch). ``flow_scale`` (1, 0.5, 0.25) estimates flow on
    frames shrunk by it. ``max_memory`` (bytes; None: a share of what is free) bounds the model's
    working memory: frames that do not fit go through in fewer pairs per call or in tiles;
    ``tile`` forces tiles of that side and ``tile_overlap`` sets the band they share.
    """

    device: str = "auto"
    precision: str | None = None
    backend: str = "auto"
    threads: int | None = None
    batch_size: int = 4
    flow_scale: float = 1.0
    max_memory: int | None = None
    tile: int | None = None
    tile_overlap: int | None = None

    def __post_init__(self) -> None:
        if self.precision is not None:
            _choice("precision", self.precision, PRECISIONS)
        _choice("flow_scale", float(self.flow_scale), FLOW_SCALES)
        _choice("backend", self.backend, BACKENDS)
        object.__setattr__(self, "flow_scale", float(self.flow_scale))
        if self.batch_size < 1 or (self.threads is not None and not 1 <= self.threads <= MAX_THREADS):
            raise ValueError(f"batch_size must be at least 1, threads from 1 to {MAX_THREADS}")


BENCH_ENGINE = EngineOptions(batch_size=1)  # what `vfi bench` times unless told otherwise: one frame per call


@dataclass(frozen=True)
class EncodeSettings:
    """The output video's encoder: ``crf`` and ``preset`` apply to the encoders that take them;
    ``pix_fmt`` None keeps the input's when the encoder takes it (else one of the same bit depth).

    ``options`` are passed to the encoder as given (FFmpeg's names: ``tune``, ``x265-params``,
    ``svtav1-params`` ...), after and over ``crf`` and ``preset``; a dict or (key, value) pairs.
    Parameter lists (keys ending in ``-params``, ``key=value:key=value``) given twice are merged,
    the later value of a key winning. An option the encoder does not take is refused when it opens.
    """

    codec: str = "libx264"
    crf: int | None = 18
    preset: str | None = "medium"
    pix_fmt: str | None = None
    options: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        pairs = self.options.items() if isinstance(self.options, Mapping) else self.options
        merged: dict[str, str] = {}
        for key, value in pairs:
            key, value = str(key).strip(), str(value)
            if not key or "=" in key:
                raise ValueError(f"encoder option names must be non-empty and without '=', got {key!r}")
            merged[key] = merge_params(merged[key], value) if key.endswith("-params") and key in merged else value
        object.__setattr__(self, "options", tuple(merged.items()))


def merge_params(first: str, second: str) -> str:
    """Two ``key=value:key=value`` parameter lists (x265-params, svtav1-params ...) as one; ``second``
    wins where both set a key. Entries without '=' (flags) are kept once."""
    entries: dict[str, str] = {}
    for text in (first, second):
        for entry in filter(None, text.split(":")):
            entries[entry.split("=", 1)[0]] = entry
    return ":".join(entries.values())


@dataclass(frozen=True)
class ConvertOptions:
    """The target rate and the output of a conversion.

    Give ``factor`` (N−1 new frames between each pair, following the input's own timestamps) or
    ``fps`` (a constant rate: a Fraction, a number or text such as "59.94"); with neither the
    factor is 2. ``scene_threshold`` None turns cut detection off (identical frames are still copied).

    ``start``, ``end`` and ``duration`` (seconds from the input's first frame: Fractions, numbers or
    text such as "1:30.5") convert a part only, for a preview: from the first input frame at or
    after ``start`` to before ``end``, or for ``duration`` seconds from that frame; the output (and
    the audio, cut to match) starts at 0.

    ``dedup`` (None: off) drops frames that repeat the previous drawing — bit for bit with 0, else
    within that many 8-bit levels (the largest mean difference of an 8×8 block) — and spreads the
    motion evenly over the span it was held for (animation "on twos"); see :mod:`vfi_cli.engine.dedup`.
    """

    factor: int | None = None
    fps: Fraction | None = None
    encode: EncodeSettings = EncodeSettings()
    scene_threshold: float | None = DEFAULT_CUT_THRESHOLD
    start: Fraction | None = None
    end: Fraction | None = None
    duration: Fraction | None = None
    dedup: float | None = None

    def __post_init__(self) -> None:
        if self.dedup is not None and not 0 <= self.dedup <= 255:
            raise ValueError(f"dedup must be a tolerance from 0 (exact) to 255 levels, got {self.dedup!r}")
        for name in ("start", "end", "duration"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, parse_time(getattr(self, name)))
        if self.end is not None and self.duration is not None:
            raise ValueError("give either end or duration, not both")
        if self.end is not None and self.end <= (self.start or 0):
            raise ValueError(f"end ({float(self.end):g} s) must come after start ({float(self.start or 0):g} s)")
        if self.duration is not None and self.duration <= 0:
            raise ValueError("duration must be positive")
        if self.factor is not None and self.fps is not None:
            raise ValueError("give either factor or fps, not both")
        if self.fps is None and self.factor is None:
            object.__setattr__(self, "factor", 2)
        if self.factor is not None and (isinstance(self.factor, bool) or not isinstance(self.factor, int)
                                        or not 2 <= self.factor <= MAX_FACTOR):
            raise ValueError(f"factor must be a whole number from 2 to {MAX_FACTOR}, got {self.factor!r}")
        if self.fps is not None:
            object.__setattr__(self, "fps", parse_rate(self.fps) if isinstance(self.fps, str) else Fraction(self.fps))
            if self.fps <= 0:
                raise ValueError(f"fps must be positive, got {self.fps}")

    def output_rate(self, rate_in: Fraction) -> Fraction:
        """The target rate for an input at ``rate_in``; a :class:`VfiError` when it lies outside
        :func:`~vfi_cli.units.rate_bounds` of the input's (1 fps or the input's rate ... 64x)."""
        rate = Fraction(rate_in) * self.factor if self.factor is not None else Fraction(self.fps)
        try:
            check_output_rate(Fraction(rate_in), rate)
        except ValueError as exc:
            raise VfiError(str(exc)) from None
        return rate

    @property
    def is_part(self) -> bool:
        """Whether only a part of the input is converted (``start``, ``end`` or ``duration`` given)."""
        return any(value is not None for value in (self.start, self.end, self.duration))


@dataclass(frozen=True)
class EvalOptions:
    """What :func:`vfi_cli.evaluate` scores and writes.

    Triplets: frames i and i+2·``stride`` in, i+``stride`` the truth (videos and CityScapes);
    ``max_triplets`` spread evenly (None: :data:`VIDEO_TRIPLETS` of a video, all of a folder; 0: all);
    ``start_fraction`` keeps only those after that share of the frames (0.8: training's held-out
    tail). ``resize`` (height, width) resizes frames and masks first. ``compare`` names baselines
    scored beside the model (``use_model`` False: the baselines alone). ``json_path`` and
    ``save_dir`` receive the report and ``save_count`` side-by-side pictures.
    """

    stride: int = 1
    max_triplets: int | None = None
    start_fraction: float = 0.0
    resize: tuple[int, int] | None = None
    split: str = "val"
    trimap_widths: tuple[int, ...] = TRIMAP_WIDTHS
    compare: tuple[str, ...] = ()
    use_model: bool = True
    json_path: Path | None = None
    save_dir: Path | None = None
    save_count: int = 4


@dataclass(frozen=True)
class BenchOptions:
    """What :func:`vfi_cli.benchmark` times: ``size`` (height, width) frames, ``warmup`` untimed and
    ``iterations`` timed calls (None: :data:`BENCH_ROUNDS`), and optionally a whole
    conversion of the video ``e2e`` at ``factor``; ``json_path`` receives the figures."""

    size: tuple[int, int] = (1024, 2048)  # the paper's 0.36 s anchor (CityScapes frames)
    warmup: int | None = None
    iterations: int | None = None
    e2e: Path | None = None
    factor: int = 2
    json_path: Path | None = None
    all_backends: bool = False  # also time every installed backend and precision against eager fp32


@dataclass
class LossWeights:
    """λ0..λ4 of Eq. 7–8 (the paper's defaults), the optional flow teacher's starting weight and
    the weight of a squared-error term that the paper does not have (off by default)."""

    photometric: float = 1.0
    perceptual: float = 1.0
    smoothness: float = 0.01
    discriminator: float = 0.1
    adversarial: float = 0.01
    teacher: float = 1.0
    teacher_mask: float = 0.1  # a network teacher's blending mask, beside its flows (``teacher``)
    mse: float = 0.0


@dataclass
class TrainConfig:
    """Everything a run depends on; saved to ``config.json`` so a run can be resumed or repeated.

    ``data`` lists sources as ``{"kind", "root", "weight"}`` (kinds: :data:`DATA_KINDS`);
    ``model`` a :class:`ModelConfig` as a dict. Give exactly one of ``steps`` and ``epochs``.
    """

    run_dir: str
    data: list[dict[str, Any]] = field(default_factory=lambda: [{"kind": "synthetic", "root": None, "weight": 1.0}])
    model: dict[str, Any] = field(default_factory=lambda: ModelConfig().to_dict())
    crop: int = 256
    train_scale: float | None = None
    batch_size: int = 8
    steps: int | None = None
    epochs: int | None = None
    lr: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)
    lr_decay: float = 0.1
    lr_decay_epochs: int = 10
    lr_floor: float = 1e-8
    stage: str = "full"  # full: the paper's objective; flow: the flow U-Net alone, Ît against the truth and the teacher
    adversarial: str = "instance"
    proposals: str = "motion"
    num_rois: int = 16
    roi_size: int = 64
    d_steps: int = 2
    d_channels: int = 64
    d_lr: float = 1e-4
    real_noise: float = 0.1
    noise_decay_steps: int = 10_000
    flow_teacher: str | None = None  # dis, rife:PATH or vfi:WEIGHTS (vfi_cli.training.teachers)
    teacher_decay_steps: int = 5_000
    clip_starts: int | None = None  # at most this many start frames per video clip
    motion_crops: float = 0.0  # share of crops of teacher-covered triplets drawn where the teacher sees motion
    teacher_motion_scale: float = 0.0  # > 0: a teacher flow's weight grows by 1 + |flow| / this many pixels
    losses: LossWeights = field(default_factory=LossWeights)
    feature_init: str = "learned"
    init_weights: str | None = None  # start the generator from these weights (fine-tuning)
    init_flow: str | None = None  # start an "ifnet" flow module from RIFE HDv3's weights (flownet.pkl or .safetensors)
    resnet18_weights: str | None = None
    vgg_weights: str | None = None
    detector_weights: str | None = None
    allow_download: bool = False
    cache_dir: str | None = None
    workers: int = 2
    log_every: int = 10
    val_every: int = 500
    val_triplets: int = 32
    checkpoint_every: int = 250
    sample_every: int = 500
    seed: int = 0
    device: str = "auto"
    amp: bool = True
    cpu_amp: bool = False  # bf16 autocast on the CPU as well (about 2.7× faster steps on AMX / AVX-512 BF16 CPUs)
    command: str = ""
    perceptual_source: str = ""  # filled in by the trainer: which network the perceptual loss used
    proposal_source: str = ""  # filled in by the trainer: where the RoIs came from

    def __post_init__(self) -> None:
        if isinstance(self.losses, dict):
            self.losses = LossWeights(**self.losses)
        self.betas = tuple(self.betas)  # type: ignore[assignment]
        if self.stage not in TRAIN_STAGES:
            raise VfiError(f"--stage must be one of {', '.join(TRAIN_STAGES)}")
        if self.adversarial not in ADVERSARIAL_MODES:
            raise VfiError(f"--adversarial must be one of {', '.join(ADVERSARIAL_MODES)}")
        if self.proposals not in PROPOSAL_KINDS:
            raise VfiError(f"--proposals must be one of {', '.join(PROPOSAL_KINDS)}")
        if self.feature_init not in FEATURE_INITS:
            raise VfiError(f"--feature-init must be one of {', '.join(FEATURE_INITS)}")
        if self.train_scale is not None and not 0 < self.train_scale <= 1:
            raise VfiError("--train-scale must be in (0, 1]")
        if (self.steps is None) == (self.epochs is None):
            raise VfiError("give exactly one of --steps and --epochs")
        if self.roi_size < 32:
            raise VfiError("--roi-size must be at least 32 (the discriminator's smallest input)")
        try:
            model = ModelConfig.from_dict(self.model)
        except ValueError as exc:
            raise VfiError(f"the run's model config: {exc}") from None
        if self.init_flow and (self.init_weights or model.flow_module != "ifnet"):
            raise VfiError('--init-flow starts a flow_module "ifnet" model from RIFE\'s weights; it does not go with --init-weights')
        if self.crop % model.multiple:
            raise VfiError(f"--crop {self.crop} must be a multiple of the network's stride {model.multiple}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    @property
    def run_path(self) -> Path:
        return Path(self.run_dir)


def default(options: type, name: str) -> Any:
    """The default of field ``name`` of the dataclass ``options`` (for help texts and option declarations)."""
    spec = next(f for f in dataclasses.fields(options) if f.name == name)
    return spec.default_factory() if spec.default_factory is not dataclasses.MISSING else spec.default
