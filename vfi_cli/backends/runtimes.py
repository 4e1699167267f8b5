"""ONNX Runtime and OpenVINO backends: the exported graph on the CPU (optional extras)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from vfi_cli.errors import VfiError


def _feed(image1: torch.Tensor, image2: torch.Tensor, t: torch.Tensor) -> dict[str, np.ndarray]:
    return {
        "image1": image1.float().contiguous().numpy(),
        "image2": image2.float().contiguous().numpy(),
        "t": t.float().contiguous().numpy(),
    }


class OnnxRuntimeBackend:
    """The graph in ONNX Runtime's CPU execution provider, float32, on as many threads as torch uses."""

    name = "onnxruntime"

    def __init__(self, graph: Path, dtype: torch.dtype) -> None:
        import onnxruntime

        if dtype != torch.float32:
            raise VfiError("the onnxruntime backend runs in float32: use --precision fp32")
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        self.session = onnxruntime.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])

    def features(self, image: torch.Tensor) -> None:
        return None

    def refine(self, image1: torch.Tensor, image2: torch.Tensor, t: torch.Tensor, features1: object = None, features2: object = None) -> torch.Tensor:
        return torch.from_numpy(self.session.run(None, _feed(image1, image2, t))[0])


class OpenVinoBackend:
    """The graph compiled by OpenVINO for the CPU, in float32 or bf16 (its inference-precision hint)."""

    name = "openvino"

    def __init__(self, graph: Path, dtype: torch.dtype) -> None:
        import openvino

        precisions = {torch.float32: "f32", torch.bfloat16: "bf16"}
        if dtype not in precisions:
            raise VfiError("the openvino backend runs in fp32 or bf16 on the CPU")
        config = {"INFERENCE_PRECISION_HINT": precisions[dtype], "INFERENCE_NUM_THREADS": torch.get_num_threads()}
        self.compiled = openvino.Core().compile_model(str(graph), "CPU", config)
        self.request = self.compiled.create_infer_request()

    def features(self, image: torch.Tensor) -> None:
        return None

    def refine(self, image1: torch.Tensor, image2: torch.Tensor, t: torch.Tensor, features1: object = None, features2: object = None) -> torch.Tensor:
        result = self.request.infer(_feed(image1, image2, t))
        return torch.from_numpy(np.array(result[self.compiled.output(0)]))
