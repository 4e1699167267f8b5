"""The network as an ONNX graph, for ONNX Runtime, OpenVINO, TensorRT or ncnn.

The graph takes ``image1``, ``image2`` ([N,3,H,W] float32 RGB in [0,1], H and W multiples of
:meth:`Interpolator.multiple`) and ``t`` ([N] float32) and returns ``frame`` ([N,3,H,W], the
refined frame Ĩt, not clamped). Batch, height and width are dynamic. Warping uses ``GridSample``,
which needs opset 16 or newer.

A model with the classical DIS prior (such as the shipped one) also takes the prior, which runs in
OpenCV outside any graph: ``prior_flow1``, ``prior_flow2`` ([N,2,h,w] float32, flows from frame t
into each input in pixels of the U-Net's frames) and ``prior_mask`` ([N,1,h,w] float32, input 1's
weight), where h, w are H, W over :meth:`Interpolator.flow_shrink`. :func:`graph_inputs` computes
every input exactly as eager PyTorch does; everything after the prior (the U-Net, upsampling,
warping, synthesis) is in the graph.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

from vfi_cli.errors import VfiError
from vfi_cli.files import commit_output, identity
from vfi_cli.model.network import Interpolator
from vfi_cli.model.prior import FlowPrior

ONNX_OPSET = 17
ONNX_INPUTS = ("image1", "image2", "t")
PRIOR_INPUTS = ("prior_flow1", "prior_flow2", "prior_mask")
ONNX_OUTPUT = "frame"


class _RefinedFrame(nn.Module):
    """The interpolator with one output, at a fixed ``flow_scale``; a prior model's prior comes in
    as three more tensors, so the graph and eager share :meth:`Interpolator.forward`."""

    def __init__(self, model: Interpolator, flow_scale: float) -> None:
        super().__init__()
        self.model = model
        self.flow_scale = flow_scale

    def forward(self, image1: torch.Tensor, image2: torch.Tensor, t: torch.Tensor, *prior: torch.Tensor) -> torch.Tensor:
        given = FlowPrior(*prior) if prior else None
        return self.model(image1, image2, t, flow_scale=self.flow_scale, prior=given).refined


def input_names(model: Interpolator) -> tuple[str, ...]:
    """The inputs of ``model``'s graph, in order."""
    return ONNX_INPUTS + (PRIOR_INPUTS if model.flow_prior == "dis" else ())


def graph_inputs(
    model: Interpolator, image1: torch.Tensor, image2: torch.Tensor, t: torch.Tensor, flow_scale: float = 1.0
) -> dict[str, np.ndarray]:
    """Everything ``model``'s graph at ``flow_scale`` takes, for padded CPU frames: the frames, t
    and, for a prior model, the DIS prior as the eager forward pass computes it."""
    tensors = [image1, image2, t]
    prior = model.flow_prior_of(image1, image2, t, flow_scale)
    if prior is not None:
        tensors += [prior.flow1, prior.flow2, prior.mask]
    return {name: tensor.float().contiguous().numpy() for name, tensor in zip(input_names(model), tensors)}


def export_onnx(model: Interpolator, path: Path, *, flow_scale: float = 1.0, opset: int = ONNX_OPSET, overwrite: bool = True) -> Path:
    """Write ``model`` (float32, on the CPU) to ``path`` as ONNX; the file appears complete or not at
    all, and without ``overwrite`` never replaces one that appeared at ``path`` meanwhile.

    Raises:
        VfiError: ``opset`` is below 16.
    """
    if opset < 16:
        raise VfiError("ONNX export needs opset 16 or newer (GridSample)")
    import warnings

    wrapped = _RefinedFrame(model.float().cpu().eval(), flow_scale)
    side = model.multiple(flow_scale) * 2
    names = input_names(model)
    sample = (torch.rand(1, 3, side, side), torch.rand(1, 3, side, side), torch.tensor([0.5]))
    if model.flow_prior == "dis":  # a still prior: the graph does not depend on its values, and DIS needs 12 pixels or more
        small = side // model.flow_shrink(flow_scale)
        sample += (torch.zeros(1, 2, small, small), torch.zeros(1, 2, small, small), torch.full((1, 1, small, small), 0.5))
    axes = {name: {0: "batch", 2: "height", 3: "width"} for name in ("image1", "image2", ONNX_OUTPUT)}
    axes |= {name: {0: "batch", 2: "flow_height", 3: "flow_width"} for name in PRIOR_INPUTS if name in names}
    axes["t"] = {0: "batch"}
    path = Path(path)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        with warnings.catch_warnings(), torch.no_grad():
            # The tracer warns about the forward pass's shape checks, which hold for the sample.
            warnings.simplefilter("ignore")
            torch.onnx.export(
                wrapped, sample, str(partial), opset_version=opset, input_names=list(names),
                output_names=[ONNX_OUTPUT], dynamic_axes=axes, dynamo=False,
            )
        commit_output(partial, path, identity(path) if overwrite else None)
    finally:
        partial.unlink(missing_ok=True)
    return path
