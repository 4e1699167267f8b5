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


def test_synthetic_scenes_carry_their_exact_motion() -> None:
    """The packed motion warps each input onto the middle frame wherever its weight says the layer
    is seen, and most scenes hold a small object moving further than its size (without the small
    fast objects, or with them large, fewer than half do)."""
    from vfi_cli.datasets.synthetic import SyntheticSource
    from vfi_cli.model.warp import backward_warp

    def tensor(image: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float()

    source = SyntheticSource("train", 0.5, seed=0, size=128)
    small_and_fast = 0
    for index in range(12):
        triplet = source.triplet(index, None, "train")
        motion = torch.from_numpy(triplet.motion)[None]
        assert motion.shape == (1, 8, 128, 128)
        middle, blend = tensor(triplet.middle), (tensor(triplet.first) + tensor(triplet.last)) / 2
        for image, flow, weight in ((triplet.first, motion[:, 0:2], motion[:, 5]), (triplet.last, motion[:, 2:4], motion[:, 6])):
            error = (backward_warp(tensor(image), flow) - middle).abs().mean(1)
            assert weight.mean() > 0.8
            assert float((error * weight).sum() / weight.sum()) < 0.35 * float((blend - middle).abs().mean())  # edges of small objects
        # Pixels of one layer share its velocity (the flow into the last frame minus the one into the first).
        velocity = np.round(triplet.motion[2:4] - triplet.motion[0:2], 3).reshape(2, -1).T
        layers, which, area = np.unique(velocity, axis=0, return_inverse=True, return_counts=True)
        seen_in_both = np.bincount(which.ravel(), (triplet.motion[5] * triplet.motion[6]).ravel()) / area
        # A whole object (mostly seen in both inputs, not a fragment of a hidden one) under a tenth of the
        # frame's side across that moves further than its size.
        small_and_fast += int(any(a <= (0.1 * 128) ** 2 and seen > 0.6 and np.hypot(*v) > np.sqrt(a)
                                  for v, a, seen in zip(layers, area, seen_in_both)))
    assert small_and_fast >= 6


@pytest.mark.parametrize("teacher", ["dis", "rife"])
def test_synthetic_items_teach_their_exact_motion_through_crops_flips_and_reversal(tmp_path: Path, teacher: str) -> None:
    """Whatever crop, downscaling, flips and reversal an item got, the scene's exact motion, in the
    layout of the run's teacher, warps each input onto the target where it is trusted."""
    from vfi_cli.model.warp import backward_warp

    spec = teacher
    if teacher == "rife":  # a network teacher's layout; synthetic scenes never run the network
        (tmp_path / "flownet.pkl").write_bytes(b"never read")
        spec = f"rife:{tmp_path / 'flownet.pkl'}"
    dataset = build_dataset([DataSpec("synthetic")], "train", crop=64, cache_dir=tmp_path / "cache", flow_teacher=spec)
    for seed in range(8):
        np.random.seed(seed)
        item = dataset[seed]
        target = item["teacher"][None]
        weights = (target[:, 4], target[:, 4]) if teacher == "dis" else (target[:, 5], target[:, 6])
        blend_error = float(((item["image1"] + item["image2"]) / 2 - item["target"]).abs().mean())
        for image, flow, weight in ((item["image1"], target[:, 0:2], weights[0]), (item["image2"], target[:, 2:4], weights[1])):
            error = (backward_warp(image[None], flow) - item["target"][None]).abs().mean(1)
            assert float((error * weight).sum() / weight.sum()) < 0.5 * blend_error, seed
