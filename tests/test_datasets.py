"""Datasets: the clip cache, training sources, the held-out split, and the triplets ``vfi eval`` reads
(video, UCF101 as DVF ships it, Vimeo-90K, CityScapes with trimaps)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.conftest import translating_frames, write_video
from vfi_cli.datasets.base import spread, split_range
from vfi_cli.datasets.cache import cache_clip, opencv_frames
from vfi_cli.datasets.cityscapes import cityscapes_triplets
from vfi_cli.datasets.testsets import folder_triplets, open_source, video_triplets
from vfi_cli.datasets.videos import VideoSource
from vfi_cli.errors import VfiError
from vfi_cli.metrics import dilate


def write_png(path: Path, image: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), image[:, :, ::-1] if image.ndim == 3 else image)

def lossless_clip(path: Path, frames: list[np.ndarray]) -> Path:
    """FFV1 in RGB: decoded frames equal the generated ones exactly, so the truth is known."""
    return write_video(path, frames, 25, codec="ffv1", pix_fmt="bgr0", options={})


def _tinted(frames: list[np.ndarray], channel: int) -> list[np.ndarray]:
    """Push one colour channel up so two scenes have clearly different colours (a hard cut between them)."""
    out = []
    for frame in frames:
        tinted = frame.astype(np.int16)
        tinted[..., channel] = np.minimum(255, tinted[..., channel] + 60)
        tinted[..., (channel + 1) % 3] //= 3
        out.append(tinted.astype(np.uint8))
    return out


def _scene_of(frame: np.ndarray) -> str:
    return "red" if frame[..., 0].mean() > frame[..., 2].mean() else "blue"


def _clip_with_cut(path: Path, before: int = 8, after: int = 8, size: tuple[int, int] = (48, 64)) -> Path:
    red = _tinted(translating_frames(before, *size, step=(2, 0), seed=1), 0)
    blue = _tinted(translating_frames(after, *size, step=(0, 2), seed=2), 2)
    return write_video(path, red + blue, 25, codec="ffv1", pix_fmt="yuv444p")


def test_cache_finds_the_cut_and_decodes_once(tmp_path: Path) -> None:
    clip = _clip_with_cut(tmp_path / "cut.mkv")
    cached = cache_clip(clip, tmp_path / "cache")
    assert cached.frame_count == 16
    assert cached.cuts == frozenset({7})
    # A second call reads the cache instead of decoding again.
    frames_file = cached.directory / "frames.npy"
    stamp = frames_file.stat().st_mtime_ns
    again = cache_clip(clip, tmp_path / "cache")
    assert again.cuts == cached.cuts and frames_file.stat().st_mtime_ns == stamp
    assert np.array_equal(np.asarray(again.frames[3]), np.asarray(cached.frames[3]))


def test_cache_follows_the_content_not_the_path_or_time(tmp_path: Path) -> None:
    """A copied or re-provisioned dataset (new path, new mtime) finds its decoded frames, and so the
    teacher outputs keyed by the folder's name; a re-encoded file of the same name does not."""
    for folder in "abc":
        (tmp_path / folder).mkdir()
    clip = _clip_with_cut(tmp_path / "a" / "cut.mkv")
    cached = cache_clip(clip, tmp_path / "cache")
    copy = tmp_path / "b" / "cut.mkv"
    shutil.copyfile(clip, copy)
    os.utime(copy, ns=(clip.stat().st_atime_ns, clip.stat().st_mtime_ns + 10**9))
    assert cache_clip(copy, tmp_path / "cache").directory == cached.directory
    changed = _clip_with_cut(tmp_path / "c" / "cut.mkv", before=9, after=7)
    assert cache_clip(changed, tmp_path / "cache").directory != cached.directory


def test_another_decoder_fills_the_cache_that_training_reads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A machine without PyAV (the GPU machines) fills the cache with OpenCV's decoder under the
    clip's own folder; the cuts are found from those frames, and a training source then reads them
    without decoding again."""
    import vfi_cli.datasets.cache as cache

    clip = _clip_with_cut(tmp_path / "cut.mkv")
    reference = cache_clip(clip, tmp_path / "pyav")

    opened: list[Path] = []

    def opencv(path: Path):
        opened.append(path)
        yield from opencv_frames(path)

    primed = cache_clip(clip, tmp_path / "cv", decode=opencv)
    assert opened == [clip]
    assert primed.directory.name == reference.directory.name and primed.frame_count == reference.frame_count == 16
    assert primed.cuts == reference.cuts == frozenset({7})
    difference = np.abs(np.asarray(primed.frames, np.int16) - np.asarray(reference.frames, np.int16))
    assert difference.mean() < 3  # the same pictures, within the two decoders' colour conversions

    def no_pyav(path: Path):
        raise AssertionError("decoded again")
        yield

    monkeypatch.setattr(cache, "_pyav_frames", no_pyav)
    source = VideoSource(clip, "train", tmp_path / "cv", 1.0)
    triplet = source.triplet(0, np.random.default_rng(0), "train")
    assert triplet.first.shape == (48, 64, 3)


def test_no_triplet_spans_a_cut_and_the_tail_is_held_out(tmp_path: Path) -> None:
    folder = tmp_path / "videos" / "nested"
    folder.mkdir(parents=True)
    _clip_with_cut(folder / "a.mkv", before=10, after=10)
    train = VideoSource(tmp_path / "videos", "train", tmp_path / "cache", 1.0)
    val = VideoSource(tmp_path / "videos", "val", tmp_path / "cache", 1.0)
    rng = np.random.default_rng(0)
    for _ in range(40):
        for index in range(len(train)):
            triplet = train.triplet(index, rng, "train")
            scenes = {_scene_of(f) for f in (triplet.first, triplet.middle, triplet.last)}
            assert len(scenes) == 1, f"triplet {triplet.key} spans the cut"
            start, j, k = (int(v) for v in triplet.key.split("/")[-1].split("-"))
            assert start + k < 16 and triplet.t == pytest.approx(j / k)  # frames 16..19 are the validation tail
    val_starts = [start for _, start, _ in val.items]
    assert val_starts and min(val_starts) >= 16
    for index in range(len(val)):
        assert val.triplet(index, rng, "val").t == 0.5


def test_training_reads_every_video_a_batch_would_convert(tmp_path: Path) -> None:
    """Camcorder files (.MTS, upper case) count as clips; other files in the folder are left alone."""
    folder = tmp_path / "videos"
    folder.mkdir()
    _clip_with_cut(folder / "a.mkv", before=6, after=0)
    shutil.copy(folder / "a.mkv", folder / "b.MTS")
    (folder / "notes.txt").write_text("not a video")
    source = VideoSource(folder, "train", tmp_path / "cache", 1.0)
    assert len(source.clips) == 2


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


@pytest.mark.parametrize("size", [(12, 16), (48, 40)], ids=["shrink", "enlarge"])
def test_resize_gives_every_frame_and_mask_the_size_asked_for(tmp_path: Path, size: tuple[int, int]) -> None:
    """``--resize`` of vfi eval, for a video and for a folder: OpenCV's resize (area to shrink,
    bicubic to enlarge) of each frame, and the nearest-neighbour resize of a mask."""
    frames = translating_frames(5, 24, 32, step=(1, 0))
    interpolation = cv2.INTER_AREA if size[0] < 24 else cv2.INTER_CUBIC
    expected = [cv2.resize(frame, size[::-1], interpolation=interpolation) for frame in frames]
    video = video_triplets(lossless_clip(tmp_path / "clip.mkv", frames), max_triplets=0, resize=size)
    for triplet in video.triplets:
        assert triplet.first.shape == (*size, 3)
        assert any(np.array_equal(triplet.truth, e) for e in expected)
    mask = np.zeros((24, 32), np.uint8)
    mask[4:12, 6:20] = 255
    for index, frame in enumerate(frames[:3]):
        write_png(tmp_path / "ucf" / "1" / f"frame_{index:02d}.png", frame)
    write_png(tmp_path / "ucf" / "1" / "motion_mask.png", mask)
    (triplet,) = open_source(tmp_path / "ucf", resize=size).triplets
    assert np.array_equal(triplet.first, expected[0]) and np.array_equal(triplet.truth, expected[1])
    assert np.array_equal(triplet.regions["motion"], cv2.resize(mask, size[::-1], interpolation=cv2.INTER_NEAREST) > 0)


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
    path = lossless_clip(tmp_path / "clip.mkv", translating_frames(count, 16, 16, step=(1, 0)))
    held_out = split_range(count, "val")
    assert len(split_range(count, "train")) + len(held_out) == count
    names = [t.name for t in video_triplets(path, stride=1, max_triplets=0, start_fraction=0.8).triplets]
    # Every frame of every evaluated triplet is held out, and every held-out triplet is evaluated.
    assert names == [f"frame{i + 1:06d}" for i in range(held_out.start, count - 2)]
