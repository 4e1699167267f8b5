"""ONNX Runtime and OpenVINO backends: the exported graph on the CPU (optional extras).

A model with the classical DIS prior runs its prior here, on the CPU, exactly as eager PyTorch
does (:func:`~vfi_cli.model.export.graph_inputs`), and feeds it to the graph.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vfi_cli.errors import VfiError
from vfi_cli.model.export import graph_inputs, input_names
from vfi_cli.model.network import Interpolator


def import_openvino() -> Any:
    """OpenVINO without its telemetry. At import, OpenVINO sends usage events to Google Analytics
    (through the ``openvino_telemetry`` package, unless the user opted out) from a forked process
    that, on a machine without network, kept the process from exiting, and writes an id to
    ``~/intel``. A video tool has no business doing either, and OpenVINO falls back to its own stub
    when that package cannot be imported, which a ``None`` in ``sys.modules`` makes so."""
    sys.modules.setdefault("openvino_telemetry", None)  # type: ignore[arg-type]
    import openvino

    return openvino


class _GraphFeed:
    """The inputs of one graph for one model, checked once against the names the graph declares
    (a graph cached for another model would otherwise fail, or miss its prior, on the first frame)."""

    def __init__(self, graph: Path, declared: Iterable[str], model: Interpolator, flow_scale: float) -> None:
        declared, expected = tuple(declared), input_names(model)
        if set(declared) != set(expected):
            raise VfiError(f"the graph {graph} takes {', '.join(declared)}, but this model gives {', '.join(expected)}: delete it to export again")
        self.model = model
        self.flow_scale = flow_scale

    def __call__(self, image1: torch.Tensor, image2: torch.Tensor, t: torch.Tensor) -> dict[str, np.ndarray]:
        return graph_inputs(self.model, image1, image2, t, self.flow_scale)


class OnnxRuntimeBackend:
    """The graph in ONNX Runtime's CPU execution provider, float32, on as many threads as torch uses."""

    name = "onnxruntime"

    def __init__(self, graph: Path, dtype: torch.dtype, model: Interpolator, flow_scale: float = 1.0) -> None:
        import onnxruntime

        if dtype != torch.float32:
            raise VfiError("the onnxruntime backend runs in float32: use --precision fp32")
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        self.session = onnxruntime.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])
        self.feed = _GraphFeed(graph, (node.name for node in self.session.get_inputs()), model, flow_scale)

    def features(self, image: torch.Tensor) -> None:
        return None

    def refine(self, image1: torch.Tensor, image2: torch.Tensor, t: torch.Tensor, features1: object = None, features2: object = None) -> torch.Tensor:
        return torch.from_numpy(self.session.run(None, self.feed(image1, image2, t))[0])


class OpenVinoBackend:
    """The graph compiled by OpenVINO for the CPU, in float32 or bf16 (its inference-precision hint)."""

    name = "openvino"

    def __init__(self, graph: Path, dtype: torch.dtype, model: Interpolator, flow_scale: float = 1.0) -> None:
        openvino = import_openvino()
        precisions = {torch.float32: "f32", torch.bfloat16: "bf16"}
        if dtype not in precisions:
            raise VfiError("the openvino backend runs in fp32 or bf16 on the CPU")
        config = {"INFERENCE_PRECISION_HINT": precisions[dtype], "INFERENCE_NUM_THREADS": torch.get_num_threads()}
        core = openvino.Core()
        network = core.read_model(str(graph))
        # The graph as written declares its inputs; the compiled one may rename them after its own casts.
        self.feed = _GraphFeed(graph, (port.get_any_name() for port in network.inputs), model, flow_scale)
        self.compiled = core.compile_model(network, "CPU", config)
        self.request = self.compiled.create_infer_request()

    def features(self, image: torch.Tensor) -> None:
        return None

    def refine(self, image1: torch.Tensor, image2: torch.Tensor, t: torch.Tensor, features1: object = None, features2: object = None) -> torch.Tensor:
        result = self.request.infer(self.feed(image1, image2, t))
        return torch.from_numpy(np.array(result[self.compiled.output(0)]))
