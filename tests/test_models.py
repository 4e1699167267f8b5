"""Shipped models chosen by name: the registry of the weights folder, `--model NAME`, and what `vfi info` lists."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import vfi_cli
from tests.conftest import TINY_CONFIG
from tests.test_cli import assert_one_line_error, invoke
from vfi_cli.config import DEFAULT_MODEL, ModelConfig
from vfi_cli.errors import VfiError
from vfi_cli.model.card import card_figures, card_path
from vfi_cli.model.network import Interpolator
from vfi_cli.model.weights import default_weights_path, resolve_weights, save_weights, sha256_file, shipped_models

SMALL_CONFIG = ModelConfig(unet_channels=(8, 16), feature_channels=4, synthesis_channels=4)


def holdout(psnr: tuple[float, float], ssim: tuple[float, float], seconds: tuple[float, float]) -> dict:
    """``metrics.holdout`` as the card of the shipped model holds it: two clips and their mean."""
    clips = {f"clip{i}": {"triplets": 10, "vfi": {"psnr": p, "ssim": s, "seconds_per_frame": t}, "opencv-dis": {"psnr": 30.0, "ssim": 0.9}}
             for i, (p, s, t) in enumerate(zip(psnr, ssim, seconds))}
    return {"clips": clips, "mean_of_clips": {"vfi": {"psnr": sum(psnr) / 2, "ssim": sum(ssim) / 2}, "opencv-dis": {"psnr": 30.0, "ssim": 0.9}}}


def ship(folder: Path, name: str, config: ModelConfig, metrics: dict, description: str | None = None) -> tuple[Path, int]:
    """Save a random model of ``config`` as ``folder/NAME.safetensors`` with its card, as a shipped model is; (path, parameters)."""
    torch.manual_seed(0)
    model = Interpolator.from_config(config)
    path = folder / f"{name}.safetensors"
    card = save_weights(model, config, path, metrics=metrics)
    if description is not None:
        card_path(path).write_text(json.dumps(card | {"description": description}))
    return path, sum(p.numel() for p in model.parameters())


@pytest.fixture
def shipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, tuple[Path, int]]:
    """A weights folder with the default model, a second one with a bench speed and a description, and
    a card-less file (not a shipped model), searched instead of the package's."""
    folder = tmp_path / "weights"
    folder.mkdir()
    models = {
        DEFAULT_MODEL: ship(folder, DEFAULT_MODEL, TINY_CONFIG, {"holdout": holdout((36.0, 37.0), (0.97, 0.98), (1.0, 2.0))}),
        "small": ship(folder, "small", SMALL_CONFIG, {"holdout": holdout((36.5, 37.0), (0.975, 0.98), (0.5, 0.7)),
                                                      "speed": {"size": [1080, 1920], "device_name": "CPU X", "ms_per_frame": {"median": 250.0}}},
                      description="fewer channels, twice as fast"),
    }
    card_path(ship(folder, "stray", SMALL_CONFIG, {})[0]).unlink()
    monkeypatch.setattr("vfi_cli.model.weights.weights_search_path", lambda: [folder])
    return models


def test_info_lists_every_shipped_model_with_its_figures(shipped: dict[str, tuple[Path, int]]) -> None:
    result = invoke("info")
    assert result.exit_code == 0, result.output
    listed = result.output.split("shipped models (--model NAME):\n")[1].splitlines()
    assert listed == [
        f"  small: {shipped['small'][1]:,d} parameters; hold-out PSNR 36.75 dB, SSIM 0.9775; 0.25 s per frame "
        "(vfi bench 1080x1920 on CPU X) — fewer channels, twice as fast",
        f"  vfi-ifnet (default): {shipped['vfi-ifnet'][1]:,d} parameters; hold-out PSNR 36.50 dB, SSIM 0.9750; 1.5 s per frame "
        "(mean of the hold-out clips)",
    ]
    assert f"weights: {shipped[DEFAULT_MODEL][0]} (sha256 {sha256_file(shipped[DEFAULT_MODEL][0])})" in result.output


@pytest.mark.parametrize("name", ["small", DEFAULT_MODEL])
def test_model_picks_each_shipped_model(shipped: dict[str, tuple[Path, int]], name: str) -> None:
    path, parameters = shipped[name]
    result = invoke("info", "--model", name)
    assert result.exit_code == 0, result.output
    assert f"weights: {path} (sha256 {sha256_file(path)})" in result.output
    assert result.output.splitlines()[-1].split() == ["total", f"{parameters:,d}", "parameters"]
    loaded = vfi_cli.load_model(name, vfi_cli.EngineOptions(device="cpu"))  # the API takes the name as weights
    assert loaded.weights == path and loaded.parameters == parameters


def test_bench_times_the_model_named(shipped: dict[str, tuple[Path, int]]) -> None:
    result = invoke("bench", "--model", "small", "--size", "64x64", "--warmup", "0", "--iterations", "1", "--device", "cpu", "--json", "-")
    assert result.exit_code == 0, result.output
    path = shipped["small"][0]
    assert json.loads(result.stdout)["weights"] == f"{path} (sha256 {sha256_file(path)})"


@pytest.mark.parametrize("args", [["info"], ["bench"], ["eval", "clip.mp4"], ["interpolate", "in.mp4", "out.mp4"], ["export", "--onnx", "m.onnx"]])
def test_model_and_weights_together_are_refused(shipped: dict[str, tuple[Path, int]], args: list[str]) -> None:
    result = invoke(*args, "--model", "small", "--weights", str(shipped["small"][0]))
    assert_one_line_error(result, "give either --weights or --model, not both", code=2)


def test_an_unknown_name_is_refused_listing_the_names(shipped: dict[str, tuple[Path, int]]) -> None:
    assert_one_line_error(invoke("info", "--model", "nope"), "no shipped model named 'nope'; the shipped models are: small, vfi-ifnet ")
    assert_one_line_error(invoke("info", "--model", "stray"), "no shipped model named 'stray'")  # no card: not shipped
    with pytest.raises(VfiError, match="the shipped models are: small, vfi-ifnet "):
        vfi_cli.describe("nope")
    result = invoke("info", "--model", str(shipped["small"][0]))
    assert result.exit_code == 2 and "give a file with --weights" in result.stderr


def test_a_str_with_a_folder_or_suffix_is_a_file(shipped: dict[str, tuple[Path, int]]) -> None:
    path = shipped["small"][0]
    assert resolve_weights(str(path)) == path == resolve_weights("small") == resolve_weights(path)
    assert resolve_weights("elsewhere.safetensors") == Path("elsewhere.safetensors") and resolve_weights(None) is None


def test_the_default_is_vfi_ifnet_when_shipped(shipped: dict[str, tuple[Path, int]], monkeypatch: pytest.MonkeyPatch) -> None:
    assert DEFAULT_MODEL == "vfi-ifnet" and default_weights_path() == shipped[DEFAULT_MODEL][0]
    assert [m["name"] for m in vfi_cli.describe()["models"] if m["default"]] == [DEFAULT_MODEL]
    card_path(shipped[DEFAULT_MODEL][0]).unlink()  # without its card it is not shipped, and there is no default
    assert list(shipped_models()) == ["small"] and default_weights_path() is None
    assert_one_line_error(invoke("info", "--model", DEFAULT_MODEL), "the shipped models are: small ")


def test_the_package_ships_vfi_ifnet_as_its_default() -> None:
    assert shipped_models()[DEFAULT_MODEL] == default_weights_path()
    assert default_weights_path().name == "vfi-ifnet.safetensors"


def test_card_figures_leave_out_what_a_card_lacks_or_holds_malformed() -> None:
    empty = {"parameters": None, "description": None, "psnr": None, "ssim": None, "seconds_per_frame": None, "speed_source": None}
    assert card_figures({}) == empty
    assert card_figures({"parameters": 5, "metrics": {"holdout": {"mean_of_clips": {"vfi": {"psnr": "x"}}}}}) == empty | {"parameters": 5}
    timed = {"metrics": {"holdout": holdout((30.0, 32.0), (0.9, 0.92), (1.0, 3.0)), "speed": {"size": "bad"}}}
    assert card_figures(timed) == empty | {"psnr": 31.0, "ssim": 0.91}
    del timed["metrics"]["speed"]
    assert card_figures(timed) == empty | {"psnr": 31.0, "ssim": 0.91, "seconds_per_frame": 2.0, "speed_source": "mean of the hold-out clips"}
