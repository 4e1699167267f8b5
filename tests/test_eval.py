"""vfi eval: triplet readers for each layout, cut skipping, a clip whose middle frames are known, the command."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from tests.conftest import translating_frames, write_video
from tests.test_engine import analytic_model
from vfi_cli.cli import main
from vfi_cli.errors import VfiError
from vfi_cli.evaluation.evaluate import (
    blend,
    cityscapes_triplets,
    evaluate,
    folder_triplets,
    model_method,
    open_source,
    repeat,
    spread,
    video_triplets,
)
from vfi_cli.evaluation.metrics import dilate, interpolation_error, psnr, ssim


def write_png(path: Path, image: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), image[:, :, ::-1] if image.ndim == 3 else image)


def lossless_clip(path: Path, frames: list[np.ndarray]) -> Path:
    """FFV1 in RGB: decoded frames equal the generated ones exactly, so the truth is known."""
    return write_video(path, frames, 25, codec="ffv1", pix_fmt="bgr0", options={})


def test_spread_picks_evenly_and_keeps_the_tail() -> None:
    assert spread(range(10), None) == list(range(10))
    picked = spread(range(100), 5)
    assert len(picked) == 5 and picked[0] == 0 and picked[-1] == 99
    assert np.ptp(np.diff(picked)) <= 1
    assert spread(range(10), 0, start_fraction=0.8) == [8, 9]
    assert spread(range(100), 3, start_fraction=0.5) == [50, 74, 99]


def test_ucf101_folder_layout_with_motion_masks(tmp_path: Path) -> None:
    frames = translating_frames(3, 24, 32, step=(1, 0))
    mask = np.zeros((24, 32), np.uint8)
    mask[4:12, 6:20] = 255
    for name in ("1", "2"):
        for index, frame in enumerate(frames):
            write_png(tmp_path / name / f"frame_{index:02d}.png", frame)
    write_png(tmp_path / "2" / "motion_mask.png", mask)
    source = open_source(tmp_path)
    assert source.kind == "ucf101" and source.planned == 2
    triplets = list(source.triplets)
    assert [t.name for t in triplets] == ["1", "2"]
    for triplet in triplets:
        assert np.array_equal(triplet.first, frames[0]) and np.array_equal(triplet.truth, frames[1])
        assert np.array_equal(triplet.second, frames[2])
    assert triplets[0].regions == {}
    assert np.array_equal(triplets[1].regions["motion"], mask > 0)


def test_vimeo_layout_follows_the_test_list(tmp_path: Path) -> None:
    frames = translating_frames(3, 16, 24, step=(0, 1))
    for sequence in ("00001/0001", "00001/0002", "00002/0001"):
        for index, frame in enumerate(frames, start=1):
            write_png(tmp_path / "sequences" / sequence / f"im{index}.png", frame)
    (tmp_path / "tri_testlist.txt").write_text("00001/0002\n00002/0001\n\n")
    source = folder_triplets(tmp_path)
    assert source.kind == "vimeo90k"
    triplets = list(source.triplets)
    assert [t.name for t in triplets] == ["sequences/00001/0002", "sequences/00002/0001"]
    assert np.array_equal(triplets[0].truth, frames[1])
    # Without the list, every sequence counts.
    (tmp_path / "tri_testlist.txt").unlink()
    assert folder_triplets(tmp_path).planned == 3


def make_cityscapes(root: Path, labels: bool) -> np.ndarray:
    """One 30-frame snippet (frames 100..129) whose frame n is a constant image of value n."""
    for number in range(100, 130):
        write_png(root / "leftImg8bit_sequence" / "val" / "bonn" / f"bonn_000042_{number:06d}_leftImg8bit.png",
                  np.full((20, 30, 3), number, np.uint8))
    label_map = np.zeros((20, 30), np.uint8)
    label_map[5:9, 4:8] = 24  # person
    label_map[12:15, 20:27] = 26  # car
    label_map[0:3, 0:3] = 7  # road: not an object
    if labels:
        write_png(root / "gtFine" / "val" / "bonn" / "bonn_000042_000119_gtFine_labelIds.png", label_map)
    return (label_map == 24) | (label_map == 26)


@pytest.mark.parametrize("stride", [1, 3])
def test_cityscapes_annotated_frame_is_the_truth_and_trimaps_come_from_gtfine(tmp_path: Path, stride: int) -> None:
    objects = make_cityscapes(tmp_path, labels=True)
    source = open_source(tmp_path, stride=stride, trimap_widths=(0, 4))
    assert source.kind == "cityscapes"
    (triplet,) = list(source.triplets)
    assert triplet.name == "bonn_000042_000119"
    assert (triplet.first[0, 0, 0], triplet.truth[0, 0, 0], triplet.second[0, 0, 0]) == (119 - stride, 119, 119 + stride)
    assert set(triplet.regions) == {"trimap-0", "trimap-4"}
    assert np.array_equal(triplet.regions["trimap-0"], objects)
    assert np.array_equal(triplet.regions["trimap-4"], dilate(objects, 4))
    assert triplet.regions["trimap-4"].sum() > objects.sum()


def test_cityscapes_without_gtfine_has_no_trimaps(tmp_path: Path) -> None:
    make_cityscapes(tmp_path, labels=False)
    (triplet,) = list(cityscapes_triplets(tmp_path).triplets)
    assert triplet.truth[0, 0, 0] == 119 and triplet.regions == {}


def cut_clip(tmp_path: Path) -> tuple[Path, list[np.ndarray]]:
    """20 frames: a bright moving texture, then (from frame 10) a dark, different one."""
    first = translating_frames(10, 32, 48, step=(2, 0), seed=0)
    second = [(frame // 4) for frame in translating_frames(10, 32, 48, step=(0, 2), seed=1)]
    frames = first + second
    return lossless_clip(tmp_path / "cut.mkv", frames), frames


def test_video_triplets_skip_hard_cuts_and_keep_the_tail(tmp_path: Path) -> None:
    path, frames = cut_clip(tmp_path)
    source = video_triplets(path, stride=1, max_triplets=0)
    assert source.planned == 18
    triplets = list(source.triplets)
    # Spans 8-10 and 9-11 cross the cut between frames 9 and 10.
    assert source.skipped == ["frame000009", "frame000010"]
    assert [t.name for t in triplets] == [f"frame{i:06d}" for i in range(1, 19) if i not in (9, 10)]
    for triplet in triplets:
        middle = int(triplet.name.removeprefix("frame"))
        assert np.array_equal(triplet.first, frames[middle - 1])
        assert np.array_equal(triplet.truth, frames[middle])
        assert np.array_equal(triplet.second, frames[middle + 1])
    tail = video_triplets(path, stride=1, max_triplets=0, start_fraction=0.8)
    assert [t.name for t in tail.triplets] == ["frame000017", "frame000018"]  # spans within frames 16-19
    with pytest.raises(VfiError, match="too few"):
        video_triplets(path, stride=2, start_fraction=0.8)  # frames 16, 18, 20 would need a 21st frame
    spread_out = video_triplets(path, stride=2, max_triplets=3)
    assert [t.name for t in spread_out.triplets] == ["frame000002", "frame000017"] and spread_out.skipped == ["frame000010"]


@pytest.mark.parametrize("count", [23, 24, 27])  # 80% falls at 18.4, 19.2, 21.6 frames
def test_the_evaluated_tail_is_exactly_the_frames_training_held_out(tmp_path: Path, count: int) -> None:
    from vfi_cli.train.data import _split_range

    path = lossless_clip(tmp_path / "clip.mkv", translating_frames(count, 16, 16, step=(1, 0)))
    held_out = _split_range(count, "val")
    assert len(_split_range(count, "train")) + len(held_out) == count
    names = [t.name for t in video_triplets(path, stride=1, max_triplets=0, start_fraction=0.8).triplets]
    # Every frame of every evaluated triplet is held out, and every held-out triplet is evaluated.
    assert names == [f"frame{i + 1:06d}" for i in range(held_out.start, count - 2)]


@pytest.mark.parametrize("stride", [1, 2])
def test_eval_on_a_translating_clip_with_a_known_middle_frame(tmp_path: Path, stride: int) -> None:
    """A model with the true flow rebuilds the middle frames; blending and repeating do not."""
    frames = translating_frames(11, 40, 64, step=(2, -1))
    path = lossless_clip(tmp_path / "move.mkv", frames)
    model = analytic_model((2 * 2 * stride, -1 * 2 * stride))
    methods = {"ours": model_method(model, torch.device("cpu"), torch.float32), "blend": blend, "repeat": repeat}
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
    panels = sorted(p for p in pictures.iterdir() if p.name != "psnr_per_triplet.png")
    assert len(panels) == 2
    panel = cv2.imread(str(panels[0]))
    assert panel.shape == (32 + 22, 5 * 48, 3)  # truth, ours, blend, repeat, heat map
    plot = cv2.imread(str(pictures / "psnr_per_triplet.png"))
    assert plot is not None and plot.std() > 0


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
