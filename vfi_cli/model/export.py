"""The network as an ONNX graph, for ONNX Runtime, OpenVINO, TensorRT or ncnn.

The graph takes ``image1``, ``image2`` ([N,3,H,W] float32 RGB in [0,1], H and W multiples of
:meth:`Interpolator.multiple`) and ``t`` ([N] float32) and returns ``frame`` ([N,3,H,W], the
refined frame Ĩt, not clamped). Batch, height and width are dynamic. Warping uses ``GridSample``,
which needs opset 16 or newer. Only prior-free models export: the classical DIS prior runs in
OpenCV, outside any graph.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from vfi_cli.errors import VfiError
from vfi_cli.files import commit_output, identity
from vfi_cli.model.network import Interpolator

ONNX_OPSET = 17
ONNX_INPUTS = ("image1", "image2", "t")
ONNX_OUTPUT = "frame"


class _RefinedFrame(nn.Module):
    """The interpolator with one output, at a fixed ``flow_scale``."""

    def __init__(self, model: Interpolator, flow_scale: float) -> None:
        super().__init__()
        self.model = model
        self.flow_scale = flow_scale

    def forward(self, image1: torch.Tensor, image2: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.model(image1, image2, t, flow_scale=self.flow_scale).refined


def export_onnx(model: Interpolator, path: Path, *, flow_scale: float = 1.0, opset: int = ONNX_OPSET, overwrite: bool = True) -> Path:
    """Write ``model`` (float32, on the CPU) to ``path`` as ONNX; the file appears complete or not at
    all, and without ``overwrite`` never replaces one that appeared at ``path`` meanwhile.

    Raises:
        VfiError: the model has a classical flow prior, or ``opset`` is below 16.
    """
    if model.flow_prior != "none":
        raise VfiError(f"a model with the {model.flow_prior} flow prior cannot be exported: its prior runs in OpenCV, outside the graph")
    if opset < 16:
        raise VfiError("ONNX export needs opset 16 or newer (GridSample)")
    import warnings

    wrapped = _RefinedFrame(model.float().cpu().eval(), flow_scale)
    side = model.multiple(flow_scale) * 2
    sample = (torch.rand(1, 3, side, side), torch.rand(1, 3, side, side), torch.tensor([0.5]))
    axes = {name: {0: "batch", 2: "height", 3: "width"} for name in ("image1", "image2", ONNX_OUTPUT)}
    axes["t"] = {0: "batch"}
    path = Path(path)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        with warnings.catch_warnings(), torch.no_grad():
            # The tracer warns about the forward pass's shape checks, which hold for the sample.
            warnings.simplefilter("ignore")
            torch.onnx.export(
                wrapped, sample, str(partial), opset_version=opset, input_names=list(ONNX_INPUTS),
                output_names=[ONNX_OUTPUT], dynamic_axes=axes, dynamo=False,
            )
        commit_output(partial, path, identity(path) if overwrite else None)
    finally:
        partial.unlink(missing_ok=True)
    return path
