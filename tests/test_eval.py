"""vfi eval: a clip whose middle frames are known, masked regions, the command (the triplet readers: test_datasets)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from tests.conftest import TINY_CONFIG, translating_frames
from tests.test_datasets import lossless_clip, write_png
from tests.test_engine import analytic_model
from vfi_cli.backends import BACKENDS, available_backends
from vfi_cli.cli import main
from vfi_cli.config import EvalOptions
from vfi_cli.datasets.testsets import folder_triplets, video_triplets
from vfi_cli.evaluation.evaluate import evaluate, evaluate_source
from vfi_cli.evaluation.methods import ModelMethod, blend, repeat
from vfi_cli.metrics import interpolation_error, psnr, ssim
from vfi_cli.model.network import Interpolator
from vfi_cli.model.weights import save_weights


@pytest.mark.parametrize("stride", [1, 2])
def test_eval_on_a_translating_clip_with_a_known_middle_frame(tmp_path: Path, stride: int) -> None:
    """A model with the true flow rebuilds the middle frames; blending and repeating do not."""
    frames = translating_frames(11, 40, 64, step=(2, -1))
    path = lossless_clip(tmp_path / "move.mkv", frames)
    model = analytic_model((2 * 2 * stride, -1 * 2 * stride))
    methods = {"ours": ModelMethod(model, torch.device("cpu"), torch.float32), "blend": blend, "repeat": repeat}
    report = evaluate(video_triplets(path, stride=stride, max_triplets=4), methods)
    assert report["triplets"] == 4
    means = {name: result["regions"]["all"] for name, result in report["methods"].items()}
    assert means["ours"]["psnr"] > 38 and means["ours"]["ssim"] > 0.98
    assert means["ours"]["psnr"] > means["blend"]["psnr"] + 10 > means["repeat"]["psnr"] + 10
    # The baselines' figures are those of their known outputs against the known truth.
    for row in report["per_triplet"]:
        middle = int(row["name"].removeprefix("frame"))
        truth, expected_blend = frames[middle], blend(frames[middle - stride], frames[middle + stride])
        assert row["metrics"]["blend"]["all"]["ie"] == pytest.approx(interpolation_error(expected_blend, truth))
        assert row["metrics"]["repeat"]["all"]["psnr"] == pytest.approx(psnr(frames[middle - stride], truth))
    assert means["blend"]["ssim"] == pytest.approx(np.mean([r["metrics"]["blend"]["all"]["ssim"] for r in report["per_triplet"]]))


def test_masked_regions_are_reported(tmp_path: Path) -> None:
    frames = translating_frames(3, 24, 32, step=(3, 0))
    mask = np.zeros((24, 32), np.uint8)
    mask[:, 10:20] = 255
    for index, frame in enumerate(frames):
        write_png(tmp_path / "a" / f"frame_{index:02d}.png", frame)
    write_png(tmp_path / "a" / "motion_mask.png", mask)
    report = evaluate(folder_triplets(tmp_path), {"blend": blend})
    motion = report["methods"]["blend"]["regions"]["motion"]
    expected = blend(frames[0], frames[2])
    assert motion["count"] == 1
    assert motion["psnr"] == pytest.approx(psnr(expected, frames[1], mask > 0))
    assert motion["ssim"] == pytest.approx(ssim(expected, frames[1], mask > 0))


def test_eval_command_table_json_and_pictures(tmp_path: Path, tiny_weights: Path) -> None:
    path = lossless_clip(tmp_path / "clip.mkv", translating_frames(12, 32, 48, step=(2, 0)))
    report_path, pictures = tmp_path / "report.json", tmp_path / "pictures"
    result = CliRunner().invoke(main, [
        "eval", str(path), "--weights", str(tiny_weights), "--compare", "blend,repeat", "--max-triplets", "5",
        "--json", str(report_path), "--save-dir", str(pictures), "--save-count", "2", "--quiet",
    ])
    assert result.exit_code == 0, result.output
    for name in ("ours", "blend", "repeat", "PSNR"):
        assert name in result.output
    report = json.loads(report_path.read_text())
    assert report["triplets"] == 5 and report["kind"] == "video"
    assert set(report["methods"]) == {"ours", "blend", "repeat"}
    assert report["methods"]["ours"]["regions"]["all"]["count"] == 5
    assert report["model"]["sha256"] and report["model"]["device"] == "cpu"
    assert report["model"]["backend"] == ("openvino" if "openvino" in available_backends() else "torch")
    panels = sorted(p for p in pictures.iterdir() if p.name != "psnr_per_triplet.png")
    assert len(panels) == 2
    panel = cv2.imread(str(panels[0]))
    assert panel.shape == (32 + 22, 5 * 48, 3)  # truth, ours, blend, repeat, heat map
    plot = cv2.imread(str(pictures / "psnr_per_triplet.png"))
    assert plot is not None and plot.std() > 0


def test_eval_scale_estimates_flow_on_shrunk_frames(tmp_path: Path) -> None:
    """vfi eval --scale 0.5 scores the model as vfi interpolate --scale 0.5 runs it (and says so)."""
    torch.manual_seed(0)
    model = Interpolator.from_config(TINY_CONFIG).eval()
    with torch.no_grad():
        model.flow.head.weight.normal_(std=0.5)  # flows of a few pixels, which the scale changes
    tiny_weights = tmp_path / "flows.safetensors"
    save_weights(model, TINY_CONFIG, tiny_weights)
    frames = translating_frames(6, 64, 64, step=(3, 1))
    path = lossless_clip(tmp_path / "clip.mkv", frames)
    reports = {}
    for scale in ("1", "0.5"):
        json_path = tmp_path / f"report{scale}.json"
        result = CliRunner().invoke(main, ["eval", str(path), "--weights", str(tiny_weights), "--scale", scale, "--max-triplets", "0",
                                          "--backend", "torch", "--precision", "fp32",
                                          "--json", str(json_path), "-q"])
        assert result.exit_code == 0, result.output
        reports[scale] = json.loads(json_path.read_text())
    assert reports["1"]["model"]["flow_scale"] == 1.0 and reports["0.5"]["model"]["flow_scale"] == 0.5
    first, second = (torch.from_numpy(f).permute(2, 0, 1)[None].float() / 255 for f in (frames[0], frames[2]))
    with torch.no_grad():
        expected = {scale: model(first, second, torch.tensor([0.5]), flow_scale=float(scale)).refined for scale in reports}
    truth = {scale: psnr((expected[scale][0].clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy(), frames[1]) for scale in reports}
    assert abs(truth["1"] - truth["0.5"]) > 0.1, truth  # the two scales give other frames ...
    for scale, report in reports.items():  # ... and each report scores its own
        scored = {row["name"]: row["metrics"]["ours"]["all"]["psnr"] for row in report["per_triplet"]}
        assert scored["frame000001"] == pytest.approx(truth[scale], abs=0.01)


def test_eval_reports_the_backend_that_ran_not_the_one_auto_preferred(
    tmp_path: Path, tiny_weights: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> Path:
        raise RuntimeError("an operator this runtime lacks")

    monkeypatch.setattr("vfi_cli.backends.exported_graph", broken)  # OpenVINO "installed" but failing: auto falls back
    monkeypatch.setattr("vfi_cli.backends.available_backends", lambda: list(BACKENDS))
    path = lossless_clip(tmp_path / "clip.mkv", translating_frames(5, 32, 32, step=(1, 0)))
    report = evaluate_source(path, EvalOptions(max_triplets=2), weights=tiny_weights)
    assert report["model"]["backend"] == "torch"


def test_eval_without_weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("vfi_cli.model.weights.weights_search_path", lambda: [tmp_path / "empty"])
    path = lossless_clip(tmp_path / "clip.mkv", translating_frames(5, 16, 16, step=(1, 0)))
    runner = CliRunner()
    failed = runner.invoke(main, ["eval", str(path)])
    assert failed.exit_code == 1 and "no trained weights" in failed.output and "Traceback" not in failed.output
    baselines = runner.invoke(main, ["eval", str(path), "--no-model", "--compare", "blend", "-q"])
    assert baselines.exit_code == 0, baselines.output
    assert "blend" in baselines.output and "ours" not in baselines.output
    for arguments, message in ((["--no-model"], "needs --compare"), (["--compare", "warp"], "unknown --compare")):
        refused = runner.invoke(main, ["eval", str(path), *arguments])
        assert refused.exit_code == 1 and message in refused.output


def test_unknown_folder_is_one_line_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["eval", str(tmp_path), "--no-model", "--compare", "blend"])
    assert result.exit_code == 1 and "holds no triplets" in result.output
