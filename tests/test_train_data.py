"""The training item pipeline: layouts mixed into items, crops paired with high-resolution truth, the flow teacher."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from tests.conftest import translating_frames, write_video
from tests.test_datasets import _clip_with_cut, _scene_of
from vfi_cli.datasets.base import DataSpec
from vfi_cli.errors import VfiError
from vfi_cli.training.items import build_dataset, collate_triplets
from vfi_cli.training.teachers.dis import teacher_flow


def test_ucf101_layout_gives_four_triplets_per_clip(tmp_path: Path) -> None:
    for name in ("ApplyEyeMakeup", "Basketball"):
        folder = tmp_path / "UCF-101" / name
        folder.mkdir(parents=True)
        _clip_with_cut(folder / f"v_{name}_g01_c01.avi", before=9, after=9)
    dataset = build_dataset([DataSpec("ucf101", tmp_path)], "train", crop=32, cache_dir=tmp_path / "cache", seed=3)
    assert len(dataset) == 8
    for index in range(len(dataset)):
        source, local = dataset._locate(index)
        triplet = source.triplet(local, np.random.default_rng(index), "train")
        assert len({_scene_of(f) for f in (triplet.first, triplet.middle, triplet.last)}) == 1
        item = dataset[index]
        assert item["image1"].shape == (3, 32, 32)


def _write_png(path: Path, rgb: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), rgb[:, :, ::-1])


def test_cityscapes_layout_pairs_low_resolution_inputs_with_full_resolution_truth(tmp_path: Path) -> None:
    frames = translating_frames(5, 128, 256, step=(4, 0), seed=4)
    for split in ("train", "val"):
        for number, frame in enumerate(frames):
            _write_png(tmp_path / "leftImg8bit_sequence" / split / "aachen" / f"aachen_000001_{19 + number:06d}_leftImg8bit.png", frame)
    dataset = build_dataset([DataSpec("cityscapes", tmp_path)], "train", crop=32, cache_dir=tmp_path / "cache")
    assert len(dataset) == 1
    item = dataset[0]
    assert item["image1"].shape == (3, 32, 32)
    assert item["target_hr"].shape == (3, 128, 128)  # the default scale of CityScapes is 1/4
    assert float(item["hr_scale"]) == 4.0
    # The low-resolution target is the area-downscaled high-resolution one: same region, same picture.
    high = (item["target_hr"].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    low = cv2.resize(high, (32, 32), interpolation=cv2.INTER_AREA)
    assert np.abs(low.astype(int) - (item["target"].permute(1, 2, 0).numpy() * 255).round()).max() <= 1
    val = build_dataset([DataSpec("cityscapes", tmp_path)], "val", crop=32, cache_dir=tmp_path / "cache", stride=8)
    assert val[0]["image1"].shape == (3, 32, 64)  # 128x256 at 1/4, whole frame (multiple of the stride)


def test_synthetic_items_are_reproducible_and_move(tmp_path: Path) -> None:
    dataset = build_dataset([DataSpec("synthetic")], "train", crop=64, cache_dir=tmp_path, num_rois=5, flow_teacher="dis")
    np.random.seed(7)
    first = dataset[3]
    np.random.seed(7)
    second = dataset[3]
    for key in ("image1", "image2", "target", "target_hr", "teacher"):
        assert torch.equal(first[key], second[key]), key
    assert first["boxes"].shape == (5, 4)
    assert first["teacher"].shape == (5, 64, 64)
    assert first["target_hr"].shape == (3, 128, 128)
    assert (first["image1"] - first["image2"]).abs().mean() > 0.01  # something moves
    batch = collate_triplets([first, second])
    assert batch["image1"].shape == (2, 3, 64, 64) and isinstance(batch["boxes"], list)


def test_teacher_flow_recovers_a_translation() -> None:
    frames = translating_frames(3, 96, 96, step=(3, -2), seed=5)
    teacher = teacher_flow(frames[0], frames[1], frames[2])
    centre = teacher[:, 24:72, 24:72]
    # Frame 1's pixel p is at p - step in frame 0 and p + step in frame 2 (backward flows).
    assert np.median(centre[0]) == pytest.approx(-3, abs=0.3) and np.median(centre[1]) == pytest.approx(2, abs=0.3)
    assert np.median(centre[2]) == pytest.approx(3, abs=0.3) and np.median(centre[3]) == pytest.approx(-2, abs=0.3)
    assert np.median(centre[4]) > 0.5


def test_cached_teacher_follows_crops_flips_and_reversal(tmp_path: Path) -> None:
    """Whatever crop, flips and reversal an item got, its teacher flows warp each input onto the target."""
    from vfi_cli.model.warp import backward_warp

    frames = translating_frames(6, 96, 128, step=(3, 2), seed=6)
    write_video(tmp_path / "clip.mkv", frames, 25, codec="ffv1", pix_fmt="yuv444p")
    dataset = build_dataset([DataSpec("videos", tmp_path / "clip.mkv")], "train", crop=64, cache_dir=tmp_path / "cache",
                            flow_teacher="dis")
    for seed in range(8):
        np.random.seed(seed)
        item = dataset[seed % len(dataset)]
        teacher = item["teacher"][None]
        inner = (slice(None), slice(None), slice(12, -12), slice(12, -12))
        for image, flow in ((item["image1"], teacher[:, 0:2]), (item["image2"], teacher[:, 2:4])):
            error = (backward_warp(image[None], flow) - item["target"][None])[inner].abs().mean()
            blend_error = ((item["image1"] + item["image2"]) / 2 - item["target"])[None][inner].abs().mean()
            assert error < 0.25 * blend_error, (seed, float(error), float(blend_error))
    assert len(list((tmp_path / "cache" / "teacher").glob("*.npy"))) >= 1


def test_bad_specs_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(VfiError, match="unknown --data kind"):
        DataSpec("imagenet", tmp_path)
    with pytest.raises(VfiError, match="needs a root"):
        DataSpec("videos")
    with pytest.raises(VfiError, match="not found"):
        DataSpec("videos", tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(VfiError, match="no videos"):
        build_dataset([DataSpec("videos", tmp_path / "empty")], "train", crop=32, cache_dir=tmp_path / "cache")
