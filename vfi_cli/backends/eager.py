"""PyTorch eager: resolve the device and the precision, load the weights, set the threads.

This is the one model-setup path: converting, evaluating, benchmarking and the API's
:func:`vfi_cli.load_model` all go through :func:`load_model`.
"""

from __future__ import annotations

import logging
import os
import platform
from pathlib import Path

import torch

from vfi_cli.config import EngineOptions, ModelConfig
from vfi_cli.errors import MissingWeightsError, VfiError
from vfi_cli.model.network import Interpolator
from vfi_cli.model.weights import default_weights_path, load_weights
from vfi_cli.results import LoadedModel

log = logging.getLogger(__name__)
DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def resolve_device(name: str) -> torch.device:
    """'auto' picks the first CUDA device when there is one, else the CPU; 'mps' is an Apple GPU.

    Raises:
        VfiError: an unknown device, or a CUDA or MPS device this machine does not have.
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise VfiError(f"unknown device {name!r} (use auto, cpu, cuda[:N] or mps)") from exc
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise VfiError(f"device {name} requested but CUDA is not available on this machine")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise VfiError(f"device {name} requested but only {torch.cuda.device_count()} CUDA device(s) exist")
    elif device.type == "mps":
        if not torch.backends.mps.is_available():
            raise VfiError(f"device {name} requested but MPS (an Apple GPU, macOS 12.3 or later) is not available on this machine")
    elif device.type != "cpu":
        raise VfiError(f"unsupported device {name!r} (use auto, cpu, cuda[:N] or mps)")
    return device


def native_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AMX or AVX-512 BF16), where oneDNN's bf16 convolutions
    are several times faster than float32; elsewhere they are emulated and slower."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def resolve_precision(name: str | None, device: torch.device, backend: str = "auto") -> torch.dtype:
    """fp16 autocast on CUDA by default; on the CPU bf16 where it is native (fp16 convolutions are
    slow there) and the backend runs it, else fp32. bf16 asked for on a CPU that emulates it is a
    warning: it works, several times slower than fp32.

    Raises:
        VfiError: an unknown precision, or fp16 on the CPU.
    """
    if name is None:
        if device.type == "cuda":
            return torch.float16
        cpu_bf16 = device.type == "cpu" and backend in ("auto", "torch", "openvino") and native_bf16()
        return torch.bfloat16 if cpu_bf16 else torch.float32  # fp32 on MPS too
    if name not in DTYPES:
        raise VfiError(f"unknown precision {name!r} (use {', '.join(DTYPES)})")
    if name == "fp16" and device.type == "cpu":
        raise VfiError("fp16 runs only on CUDA; use fp32 or bf16 on the CPU")
    if name == "bf16" and device.type == "cpu" and not native_bf16():  # about 8x slower than it is natively
        log.warning("this CPU has no native bf16 (AVX-512 BF16 or AMX): bf16 is emulated here and runs several times "
                    "slower than fp32")
    return DTYPES[name]


def device_name(device: torch.device) -> str:
    """The hardware behind ``device``: the GPU's name, or the CPU model and its core count."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    name = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{name} ({os.cpu_count()} cores)"


def load_model(weights: Path | None = None, engine: EngineOptions = EngineOptions(), *, random_if_missing: bool = False) -> LoadedModel:
    """Device → precision → weights → threads.

    ``weights`` None means the shipped model; with ``random_if_missing`` a randomly initialised
    model of the default architecture (seed 0) stands in when none is installed (speed does not
    depend on the weights' values).

    Raises:
        VfiError: a bad device or precision, or an unreadable weights file.
        MissingWeightsError: no weights given or installed (and no random stand-in asked for).
    """
    device = resolve_device(engine.device)
    dtype = resolve_precision(engine.precision, device, engine.backend)
    try:
        network, card = load_weights(weights, device)
        path = Path(weights) if weights is not None else default_weights_path()
    except MissingWeightsError:
        if not random_if_missing:
            raise
        torch.manual_seed(0)
        config = ModelConfig()
        network, card, path = Interpolator.from_config(config).eval().to(device), {"config": config.to_dict()}, None
    if engine.threads is not None:
        torch.set_num_threads(engine.threads)
    if log.isEnabledFor(logging.INFO):
        log.info("weights %s (sha256 %s) on %s in %s, %d CPU threads", path or "random (seed 0)", card.get("sha256", "none"),
                 device_name(device), str(dtype).removeprefix("torch."), torch.get_num_threads())
    return LoadedModel(network=network, card=card, weights=path, device=device, dtype=dtype)
