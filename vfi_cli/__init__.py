"""vfi: video frame-rate conversion with the Zoom-In-to-Check interpolation network (CVPR 2019).

The public API (:mod:`vfi_cli.api`); the ``vfi`` command calls nothing else:

- :func:`load_model` — weights → a model set up on a device, in a precision;
- :func:`interpolate` — frames at any t between numpy RGB frames (a pair or a sequence);
- :func:`convert` — a video (or image folder) to a higher frame rate → :class:`Summary`;
- :func:`convert_batch` — many videos into one folder, past files that fail → :class:`BatchSummary`;
- :func:`train`, :func:`export` — train the network in a run directory, write its weights;
- :func:`export_onnx` — a model as an ONNX graph (dynamic size) for other runtimes;
- :func:`evaluate`, :func:`benchmark` — quality (IE, PSNR, SSIM) and speed;
- :func:`describe` — versions, devices and the weights in use.

Options are the dataclasses :class:`EngineOptions`, :class:`ConvertOptions`,
:class:`EncodeSettings`, :class:`EvalOptions`, :class:`BenchOptions`, :class:`TrainConfig`,
:class:`LossWeights` and :class:`ModelConfig`; errors a user can act on are :class:`VfiError`.
Importing the package is cheap: torch and PyAV load when a function first needs them.
"""

__version__ = "0.1.1"

from vfi_cli.api import benchmark, convert, convert_batch, describe, evaluate, export, export_onnx, interpolate, load_model, train  # noqa: E402
from vfi_cli.config import (  # noqa: E402
    BenchOptions,
    ConvertOptions,
    EncodeSettings,
    EngineOptions,
    EvalOptions,
    LossWeights,
    ModelConfig,
    TrainConfig,
)
from vfi_cli.errors import Interrupted, MissingWeightsError, VfiError, VideoError  # noqa: E402
from vfi_cli.progress import Progress  # noqa: E402
from vfi_cli.results import BatchSummary, FileResult, LoadedModel, Summary, TrainResult  # noqa: E402

__all__ = [
    "load_model", "interpolate", "convert", "convert_batch", "train", "export", "export_onnx", "evaluate", "benchmark", "describe",
    "EngineOptions", "ConvertOptions", "EncodeSettings", "EvalOptions", "BenchOptions", "TrainConfig", "LossWeights",
    "ModelConfig", "LoadedModel", "Summary", "BatchSummary", "FileResult", "TrainResult", "Progress",
    "VfiError", "MissingWeightsError", "VideoError", "Interrupted",
]
