"""vfi bench at a small size on the CPU: sane fields, random weights when none exist, end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from vfi_cli.cli import main
from vfi_cli import BenchOptions, EngineOptions, benchmark
from vfi_cli.backends import available_backends
from vfi_cli.backends.eager import native_bf16


def test_bench_fields_with_given_weights(tiny_weights: Path, tmp_path: Path) -> None:
    result = benchmark(BenchOptions(size=(48, 80), warmup=1, iterations=3, json_path=tmp_path / "bench.json"),
                       weights=tiny_weights, engine=EngineOptions(device="cpu", batch_size=2, threads=1))
    ms = result["ms_per_frame"]
    assert 0 < ms["min"] <= ms["median"] <= ms["max"]
    assert result["fps"] == pytest.approx(1000 / ms["median"])
    assert result["size"] == [48, 80] and result["batch_size"] == 2 and result["threads"] == 1
    assert result["device"] == "cpu" and result["dtype"] == ("bfloat16" if native_bf16() else "float32") and result["device_name"]
    assert result["backend"] == ("openvino" if "openvino" in available_backends() else "torch")  # what auto ran
    assert result["memory_kind"] == "process peak RSS" and 10 < result["peak_memory_mib"] < 1e6
    assert result["iterations"] == 3 and result["warmup"] == 1
    assert str(tiny_weights) in result["weights"] and result["tiling"]
    assert json.loads((tmp_path / "bench.json").read_text()) == json.loads(json.dumps(result))


def test_bench_passes_engine_options_through(tiny_weights: Path) -> None:
    timing = BenchOptions(size=(64, 96), warmup=0, iterations=1)
    whole = benchmark(timing, weights=tiny_weights, engine=EngineOptions(device="cpu", batch_size=1))
    tiled = benchmark(timing, weights=tiny_weights, engine=EngineOptions(device="cpu", batch_size=1, tile=32, tile_overlap=8, flow_scale=0.5))
    assert "whole frames" in whole["tiling"] and "flow_scale=1.0" in whole["tiling"]
    assert "tiles of" in tiled["tiling"] and "flow_scale=0.5" in tiled["tiling"]


def test_bench_command_random_weights_and_e2e(make_clip, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("vfi_cli.model.weights.weights_search_path", lambda: [tmp_path / "empty"])
    clip = make_clip(count=6, size=(32, 32), audio=False)
    report = tmp_path / "bench.json"
    result = CliRunner().invoke(main, ["bench", "--size", "32x64", "--device", "cpu", "--iterations", "1", "--warmup", "0",
                                       "--e2e", str(clip), "--json", str(report)])
    assert result.exit_code == 0, result.output
    assert "random" in result.output and "ms per frame" in result.output
    data = json.loads(report.read_text())
    assert data["weights"].startswith("random") and data["parameters"] == 4_820_616
    e2e = data["e2e"]
    assert (e2e["frames_in"], e2e["frames_out"], e2e["synthesized"]) == (6, 12, 5)
    assert e2e["output_fps"] == pytest.approx(12 / e2e["seconds"])
    assert set(e2e["busy_share"]) == {"decode", "model", "encode"}
    assert all(0 <= share <= 1.05 for share in e2e["busy_share"].values())
    assert e2e["busy_share"]["model"] > e2e["busy_share"]["decode"]


def test_bench_refuses_bad_sizes() -> None:
    result = CliRunner().invoke(main, ["bench", "--size", "1024by2048"])
    assert result.exit_code == 2 and "HEIGHTxWIDTH" in result.output


@pytest.mark.parametrize("prior", ["none", "dis"])
def test_bench_backend_all_times_every_backend_in_one_run_against_eager_fp32(prior: str, tmp_path: Path) -> None:
    """--backend all: the reference (eager float32, default layout) first, then each installed backend
    and precision, each with its time, its ratio to the reference and its distance from the
    reference's frame; float32 runtimes agree to the level, reduced precisions within 1/255 or 50 dB.
    Models with the DIS prior (the shipped kind) run in the exported runtimes too."""
    import dataclasses

    from tests.test_backends import CONFIG, trained_like
    from vfi_cli.model.weights import save_weights

    config = dataclasses.replace(CONFIG, flow_prior=prior)
    weights = tmp_path / "student.safetensors"
    save_weights(trained_like(config), config, weights)
    result = CliRunner().invoke(main, ["bench", "--size", "64x96", "--device", "cpu", "--iterations", "1", "--warmup", "0",
                                       "--weights", str(weights), "--backend", "all", "--json", str(tmp_path / "b.json")])
    assert result.exit_code == 0, result.output
    rows = json.loads((tmp_path / "b.json").read_text())["backends"]
    assert rows[0]["backend"] == "torch (default layout)" and rows[0]["ratio_to_reference"] == 1.0
    timed = {(row["backend"], row["dtype"]) for row in rows[1:]}
    expected = {("torch", "float32")} | ({("torch", "bfloat16")} if native_bf16() else set())
    expected |= {(name, "float32") for name in available_backends() if name != "torch"}
    assert expected <= timed
    for row in rows:
        assert row["ms_per_frame"] > 0 and row["ratio_to_reference"] > 0
        if row["dtype"] == "float32":
            assert row["max_level_difference"] <= 1
        else:
            assert row["max_level_difference"] <= 1 or row["psnr_vs_reference"] >= 50
    assert "backends, one run" in result.output
