"""Numbered image folders in (--input-fps) and PNG folders out (16-bit for 10-bit video)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
from click.testing import CliRunner

from tests.conftest import decode_video, translating_frames
from tests.test_color import write_tagged
from vfi_cli import cli
from vfi_cli.video.reader import FrameReader, probe


def invoke(*args: str):
    return CliRunner().invoke(cli.main, list(args))


def write_pngs(folder: Path, frames: list[np.ndarray], name: str = "frame_{}.png") -> Path:
    folder.mkdir()
    for k, rgb in enumerate(frames):
        assert cv2.imwrite(str(folder / name.format(k + 1)), rgb[..., ::-1])
    return folder


def read_png(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    return image[..., ::-1]


def assert_one_line_error(result, fragment: str) -> None:
    assert result.exit_code != 0, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and fragment in lines[0], result.stderr


def test_image_folder_to_video(tmp_path: Path, tiny_weights: Path) -> None:
    frames = translating_frames(11, 32, 48, step=(2, 0))
    folder = write_pngs(tmp_path / "in", frames)  # frame_1 ... frame_11: frame_10 sorts after frame_9
    out = tmp_path / "out.mkv"
    result = invoke("interpolate", str(folder), str(out), "--input-fps", "24", "--weights", str(tiny_weights), "-q",
                    "--codec", "ffv1", "--pix-fmt", "yuv444p")
    assert result.exit_code == 0, result.output
    times, decoded = decode_video(out)
    assert len(decoded) == 22
    assert times == [Fraction(int(j * 1000 / 48 + 0.5), 1000) for j in range(22)]  # Matroska keeps milliseconds
    for k, rgb in enumerate(frames):  # copies in order, through BT.709 4:4:4 and back
        assert np.abs(decoded[2 * k].astype(int) - rgb).max() <= 2
    info = probe(out)
    assert (info.color.colorspace, info.color.color_primaries, info.color.color_trc) == (1, 1, 13)


def test_ten_bit_video_to_16_bit_pngs(tmp_path: Path, tiny_weights: Path) -> None:
    source = write_tagged(tmp_path / "in.mkv", 3, "yuv420p10le", "ffv1", (9, 1, 9, 14))
    out = tmp_path / "pngs"
    result = invoke("interpolate", str(source), str(out), "--weights", str(tiny_weights), "-q")
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in out.iterdir())
    assert names == [f"{j:08d}.png" for j in range(6)]
    expected = [frame.rgb for frame in FrameReader(probe(source), keep_depth=True)]
    for k, rgb in enumerate(expected):
        png = read_png(out / f"{2 * k:08d}.png")
        assert png.dtype == np.uint16 and np.array_equal(png, rgb)
    assert np.mean(read_png(out / "00000001.png") % 257 != 0) > 0.5  # synthesised frames keep 16-bit detail
    assert [p.name for p in tmp_path.iterdir() if "vfi-" in p.name] == []


def test_eight_bit_video_to_pngs_and_folder_to_folder(make_clip, tmp_path: Path, tiny_weights: Path) -> None:
    source = make_clip(count=4, audio=False)
    out = tmp_path / "pngs"
    out.mkdir()  # an existing empty folder is fine
    result = invoke("interpolate", str(source), str(out), "--weights", str(tiny_weights), "-q")
    assert result.exit_code == 0, result.output
    assert read_png(out / "00000000.png").dtype == np.uint8
    for k, frame in enumerate(FrameReader(probe(source))):
        assert np.array_equal(read_png(out / f"{2 * k:08d}.png"), frame.rgb)

    again = tmp_path / "again"
    result = invoke("interpolate", str(out), str(again), "--input-fps", "48", "--factor", "3",
                    "--weights", str(tiny_weights), "-q")
    assert result.exit_code == 0, result.output
    assert len(list(again.iterdir())) == 24
    assert np.array_equal(read_png(again / "00000003.png"), read_png(out / "00000001.png"))


def test_image_folder_refusals(tmp_path: Path, make_clip, tiny_weights: Path) -> None:
    frames = translating_frames(3, 32, 48, step=(2, 0))
    folder = write_pngs(tmp_path / "in", frames)
    weights = ["--weights", str(tiny_weights)]
    assert_one_line_error(invoke("interpolate", str(folder), str(tmp_path / "o.mp4"), *weights), "--input-fps")
    clip = make_clip(count=3)
    assert_one_line_error(invoke("interpolate", str(clip), str(tmp_path / "o.mp4"), "--input-fps", "24", *weights),
                          "folders of numbered images")
    cv2.imwrite(str(folder / "frame_4.png"), np.zeros((16, 16, 3), np.uint8))
    result = invoke("interpolate", str(folder), str(tmp_path / "o.mp4"), "--input-fps", "24", *weights, "-q")
    assert_one_line_error(result, "all images must match")
    assert not (tmp_path / "o.mp4").exists()
    (folder / "frame_4.png").unlink()

    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    assert_one_line_error(invoke("interpolate", str(folder), str(busy), "--input-fps", "24", *weights),
                          "files other than PNGs")
    assert (busy / "notes.txt").read_text() == "mine"
    old = write_pngs(tmp_path / "old", frames[:1])
    assert_one_line_error(invoke("interpolate", str(folder), str(old), "--input-fps", "24", *weights), "--overwrite")
    result = invoke("interpolate", str(folder), str(old), "--input-fps", "24", *weights, "--overwrite", "-q")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in old.iterdir()) == [f"{j:08d}.png" for j in range(6)]
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
