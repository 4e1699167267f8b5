"""Inference backends and ONNX export: every backend gives eager PyTorch's frame (within the
precision's tolerance) on a random pair, for prior-free models and for models with the classical DIS
prior (the shipped kind, whose prior is fed to the graph); exported graphs keep height and width
dynamic and are cached."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.conftest import smooth_texture
from vfi_cli import backends
from vfi_cli.backends import BACKENDS, auto_backend, available_backends, create_backend, exported_graph
from vfi_cli.config import ModelConfig
from vfi_cli.errors import VfiError
from vfi_cli.model.export import ONNX_INPUTS, PRIOR_INPUTS, export_onnx, graph_inputs
from vfi_cli.model.features import FeatureExtractor
from vfi_cli.model.network import Interpolator
from vfi_cli.model.synthesis import Synthesis

CONFIG = ModelConfig(unet_channels=(8, 16, 16), feature_channels=4, synthesis_channels=4, flow_downsample=2)
PRIOR_CONFIG = dataclasses.replace(CONFIG, flow_prior="dis")
COARSE_CONFIG = dataclasses.replace(CONFIG, flow_prior="coarse")  # coarse to fine: the prior is computed inside the graph
SYMMETRIC_CONFIG = dataclasses.replace(CONFIG, symmetric_flow=True)  # both frame orders in one batch, averaged
FUSED_CONFIG = dataclasses.replace(CONFIG, flow_scales=2)  # flows at two scales, fused by warp agreement
IFNET_CONFIG = ModelConfig(flow_module="ifnet", ifnet_width=16, feature_channels=4, synthesis_channels=4, symmetric_flow=True)
MAX_LEVEL_ERROR = 1 / 255  # the tolerance: within one 8-bit level of eager float32 ...
MIN_PSNR = 50.0  # ... or at least 50 dB against it


def trained_like(config: ModelConfig = CONFIG, seed: int = 0) -> Interpolator:
    """A model whose flow head and synthesis are not at their zero start, so warping really moves pixels."""
    torch.manual_seed(seed)
    model = Interpolator.from_config(config).eval()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.05)
        heads = [model.flow.head] if config.flow_module == "unet" else [getattr(model.flow, f"block{n}").conv1[2] for n in range(3)]
        for head in heads:
            head.weight.add_(torch.randn_like(head.weight) * 3)  # flows of a pixel or more
    return model


def pair(height: int, width: int, batch: int = 2, shift: tuple[int, int] = (2, 3)) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A band-limited texture (like a photograph) and the same moved: white noise would turn any
    sub-pixel flow difference into a large pixel error. A prior model's flows are the prior's (DIS
    finds the shift) plus small corrections, so its tests move the texture further."""
    texture = torch.from_numpy(smooth_texture(height, width, seed=height + width)).permute(2, 0, 1).float() / 255
    image1 = texture.expand(batch, -1, -1, -1).contiguous()
    image2 = torch.roll(image1, shifts=shift, dims=(2, 3))
    return image1, image2, torch.linspace(0.25, 0.75, batch)


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(10 * torch.log10(1 / ((a - b) ** 2).mean()))


def eager(model: Interpolator, image1: torch.Tensor, image2: torch.Tensor, t: torch.Tensor, flow_scale: float = 1.0) -> torch.Tensor:
    with torch.no_grad():
        out = model(image1, image2, t, flow_scale=flow_scale)
    assert out.flow1.abs().mean() > 1.0  # the test means something only if the flows move pixels
    return out.refined


@pytest.mark.parametrize("config", [CONFIG, PRIOR_CONFIG, COARSE_CONFIG, SYMMETRIC_CONFIG, FUSED_CONFIG, IFNET_CONFIG],
                         ids=["prior-free", "dis-prior", "coarse-to-fine", "symmetric", "two-scales", "ifnet"])
@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_exported_runtimes_match_eager_at_any_size(backend: str, config: ModelConfig, tmp_path: Path) -> None:
    if backend not in available_backends():
        pytest.skip(f"{backend} is not installed")
    model = trained_like(config)
    runner = create_backend(backend, model, torch.device("cpu"), torch.float32, cache_dir=tmp_path)
    for height, width in ((32, 48), (64, 96)):  # one graph, two sizes: height and width are dynamic
        image1, image2, t = pair(height, width, shift=(4, 6) if config.flow_prior == "dis" else (2, 3))
        assert runner.features(image1) is None
        out = runner.refine(image1, image2, t)
        assert out.shape == (2, 3, height, width) and (out - eager(model, image1, image2, t)).abs().max() < 1e-4


def test_the_torch_backend_is_channels_last_on_the_cpu_and_bf16_stays_within_tolerance() -> None:
    model = trained_like()
    image1, image2, t = pair(64, 96)
    reference = eager(model, image1, image2, t)
    fp32 = create_backend("torch", trained_like(), torch.device("cpu"), torch.float32)
    assert fp32.name == "torch" and fp32.model.flow.head.weight.is_contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        features = fp32.features(image1), fp32.features(image2)
        assert (fp32.refine(image1, image2, t, *features) - reference).abs().max() < 1e-4
        bf16 = create_backend("torch", trained_like(), torch.device("cpu"), torch.bfloat16)
        out = bf16.refine(image1, image2, t, bf16.features(image1), bf16.features(image2))
    assert out.dtype == torch.float32
    assert (out - reference).abs().max() < MAX_LEVEL_ERROR or psnr(out, reference) >= MIN_PSNR


def test_openvino_bf16_stays_within_tolerance(tmp_path: Path) -> None:
    if "openvino" not in available_backends():
        pytest.skip("openvino is not installed")
    model = trained_like()
    image1, image2, t = pair(64, 96)
    out = create_backend("openvino", model, torch.device("cpu"), torch.bfloat16, cache_dir=tmp_path).refine(image1, image2, t)
    reference = eager(model, image1, image2, t)
    assert (out - reference).abs().max() < MAX_LEVEL_ERROR or psnr(out, reference) >= MIN_PSNR


def test_exported_graphs_are_cached_per_weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("onnx")
    model = trained_like()
    first = exported_graph(model, 1.0, tmp_path)
    stamp = first.stat().st_mtime_ns
    assert exported_graph(trained_like(), 1.0, tmp_path) == first and first.stat().st_mtime_ns == stamp
    assert exported_graph(model, 0.5, tmp_path) != first
    assert exported_graph(trained_like(seed=1), 1.0, tmp_path) != first
    symmetric = trained_like(SYMMETRIC_CONFIG)
    assert symmetric.state_dict().keys() == model.state_dict().keys()
    symmetric.load_state_dict(model.state_dict())
    assert exported_graph(symmetric, 1.0, tmp_path) != first  # the same tensors, another forward pass
    fused = trained_like(FUSED_CONFIG)
    fused.load_state_dict(model.state_dict())
    assert exported_graph(fused, 1.0, tmp_path) not in (first, exported_graph(symmetric, 1.0, tmp_path))
    monkeypatch.setattr(backends, "model_source_digest", lambda: "other code")  # another vfi version or a local edit
    assert exported_graph(model, 1.0, tmp_path) != first
    assert not list(tmp_path.rglob("*.partial"))


def test_a_graph_whose_inputs_are_not_the_models_is_refused(tmp_path: Path) -> None:
    """The backend checks the graph's declared inputs: a prior model never runs a prior-free graph
    (which would ignore its prior), nor the reverse."""
    pytest.importorskip("onnxruntime")
    from vfi_cli.backends.runtimes import OnnxRuntimeBackend

    prior_free = export_onnx(trained_like(), tmp_path / "prior-free.onnx")
    with pytest.raises(VfiError, match="takes image1, image2, t, but this model gives .*prior_flow1"):
        OnnxRuntimeBackend(prior_free, torch.float32, trained_like(PRIOR_CONFIG))
    with_prior = export_onnx(trained_like(PRIOR_CONFIG), tmp_path / "prior.onnx")
    with pytest.raises(VfiError, match="delete it to export again"):
        OnnxRuntimeBackend(with_prior, torch.float32, trained_like())


def test_unknown_and_missing_runtimes_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(VfiError, match="unknown backend"):
        create_backend("tensorflow", trained_like(), torch.device("cpu"), torch.float32)
    monkeypatch.setattr("importlib.util.find_spec", lambda name, *args: None)
    assert available_backends() == ["torch"]
    with pytest.raises(VfiError, match=r"pip install 'vfi-zoom\[openvino\]'"):
        create_backend("openvino", trained_like(), torch.device("cpu"), torch.float32)


@pytest.mark.parametrize("config", [CONFIG, PRIOR_CONFIG, COARSE_CONFIG, IFNET_CONFIG], ids=["prior-free", "dis-prior", "coarse-to-fine", "ifnet"])
def test_vfi_export_onnx_writes_a_graph_that_matches_eager(config: ModelConfig, tmp_path: Path) -> None:
    """vfi export --onnx OUT.onnx --weights W: the graph, run in ONNX Runtime at a size it was not
    traced at on the inputs :func:`graph_inputs` gives (a prior model's prior among them), gives
    eager PyTorch's frame; the prior model's graph is exported at flow scale 0.5, where its prior
    is computed on frames shrunk four times."""
    onnxruntime = pytest.importorskip("onnxruntime")
    from click.testing import CliRunner

    from vfi_cli.cli import main
    from vfi_cli.model.weights import save_weights

    model = trained_like(config)
    weights = tmp_path / "student.safetensors"
    save_weights(model, config, weights)
    graph = tmp_path / "student.onnx"
    scale = 0.5 if config.flow_prior == "dis" else 1.0
    result = CliRunner().invoke(main, ["export", "--onnx", str(graph), "--weights", str(weights), "--scale", f"{scale:g}"])
    assert result.exit_code == 0, result.output
    session = onnxruntime.InferenceSession(str(graph), providers=["CPUExecutionProvider"])
    names = ONNX_INPUTS + (PRIOR_INPUTS if config.flow_prior == "dis" else ())
    assert tuple(node.name for node in session.get_inputs()) == names
    image1, image2, t = pair(48, 80, shift=(4, 6))
    out = session.run(None, graph_inputs(model, image1, image2, t, scale))[0]
    assert np.abs(out - eager(model, image1, image2, t, scale).numpy()).max() < 1e-4
    again = CliRunner().invoke(main, ["export", "--onnx", str(graph), "--weights", str(weights)])
    assert again.exit_code == 1 and "exists" in again.stderr


def test_auto_runs_openvino_on_the_cpu_when_installed_else_torch(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    """auto: the fastest backend within tolerance (OpenVINO on the CPU), torch when it is missing, on
    a GPU, in a precision it lacks, or when it fails on the model (with one warning)."""
    model, cpu = trained_like(), torch.device("cpu")
    if "openvino" in available_backends():
        assert create_backend("auto", model, cpu, torch.float32, cache_dir=tmp_path).name == "openvino"
    assert create_backend("auto", model, cpu, torch.float16, cache_dir=tmp_path).name == "torch"
    assert auto_backend(torch.device("cuda"), model) == "torch"
    from tests.test_tiling import GlobalShiftFlow

    hand_written = Interpolator(GlobalShiftFlow(radius=3), FeatureExtractor(4, 3), Synthesis(4, 4, 3), stride=8)
    assert auto_backend(cpu, hand_written) == "torch"  # a graph is as general as the modules traced: only vfi's own
    coarse = trained_like(COARSE_CONFIG)
    expected = "openvino" if "openvino" in available_backends() else "torch"
    assert auto_backend(cpu, coarse) == expected
    assert auto_backend(cpu, trained_like(IFNET_CONFIG)) == "torch"  # OpenVINO's bf16 loses its flows' precision
    coarse.coarse_flow = GlobalShiftFlow(radius=3)
    assert auto_backend(cpu, coarse) == "torch"

    def broken(*args: object, **kwargs: object) -> Path:
        raise RuntimeError("an operator this runtime lacks\nmore detail")

    monkeypatch.setattr("vfi_cli.backends.exported_graph", broken)
    monkeypatch.setattr("vfi_cli.backends.available_backends", lambda: list(BACKENDS))
    with caplog.at_level("WARNING", logger="vfi_cli.backends"):
        assert create_backend("auto", model, cpu, torch.float32, cache_dir=tmp_path).name == "torch"
    assert [r.getMessage() for r in caplog.records] == [
        "the openvino backend cannot run this model (an operator this runtime lacks); running torch (--backend torch skips this try)"
    ]
    monkeypatch.undo()
    monkeypatch.setattr("importlib.util.find_spec", lambda name, *args: None)
    assert create_backend("auto", model, cpu, torch.float32).name == "torch"


def test_openvino_loads_without_its_telemetry(tmp_path: Path) -> None:
    """Outside CI (where OpenVINO keeps quiet by itself), importing it sent events to Google Analytics
    from a forked process, which kept pytest and vfi from exiting on a machine without network, and
    wrote an id into ~/intel. Through vfi it does neither (a fresh HOME shows what it writes there)."""
    pytest.importorskip("openvino")
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "TF_BUILD", "JENKINS_URL")} | {"HOME": str(tmp_path)}
    code = ("import multiprocessing, sys\nfrom vfi_cli.backends.runtimes import import_openvino\n"
            "import_openvino().Core()\nprint(len(multiprocessing.active_children()), sys.modules['openvino_telemetry'])")
    shown = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60, check=True)
    assert shown.stdout.split() == ["0", "None"]
    assert list(tmp_path.iterdir()) == []
