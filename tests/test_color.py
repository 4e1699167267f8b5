"""Colour: RGB conversions against the ITU-T H.273 formulas, tags kept, copies untouched, 10 bits kept."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from click.testing import CliRunner

from tests.conftest import TINY_CONFIG, translating_frames
from vfi_cli import cli
from vfi_cli.video.color import ColorInfo, from_rgb, to_rgb

# (Kr, Kb) per AVColorSpace tag: BT.709, BT.601 (SMPTE 170M), BT.2020 non-constant luminance.
KR_KB = {1: (0.2126, 0.0722), 6: (0.299, 0.114), 9: (0.2627, 0.0593)}
MATRICES = {"bt709": 1, "bt601": 6, "bt2020": 9}
RANGES = {"limited": 1, "full": 2}


def levels(bits: int, full: bool) -> tuple[float, float, float, float]:
    if full:
        return 0, 2**bits - 1, 2 ** (bits - 1), 2**bits - 1
    s = 2 ** (bits - 8)
    return 16 * s, 219 * s, 128 * s, 224 * s


def reference_rgb(y, cb, cr, colorspace: int, bits: int, full: bool) -> np.ndarray:
    """H.273 inverse, in float64: code values -> R'G'B' in [0, 1]."""
    kr, kb = KR_KB[colorspace]
    y0, ys, c0, cs = levels(bits, full)
    luma, pb, pr = (y - y0) / ys, (cb - c0) / cs, (cr - c0) / cs
    r = luma + 2 * (1 - kr) * pr
    b = luma + 2 * (1 - kb) * pb
    g = (luma - kr * r - kb * b) / (1 - kr - kb)
    return np.clip(np.stack([r, g, b], axis=-1), 0, 1)


def reference_ycbcr(rgb: np.ndarray, colorspace: int, bits: int, full: bool) -> np.ndarray:
    kr, kb = KR_KB[colorspace]
    r, g, b = np.moveaxis(rgb, -1, 0)
    luma = kr * r + (1 - kr - kb) * g + kb * b
    y0, ys, c0, cs = levels(bits, full)
    return np.stack([y0 + ys * luma, c0 + cs * (b - luma) / (2 - 2 * kb), c0 + cs * (r - luma) / (2 - 2 * kr)])


def planes(frame: av.VideoFrame) -> list[np.ndarray]:
    dtype = np.uint16 if frame.format.components[0].bits > 8 else np.uint8
    size = np.dtype(dtype).itemsize
    return [np.frombuffer(p, dtype=dtype).reshape(p.height, p.line_size // size)[:, : p.width].copy() for p in frame.planes]


def yuv_frame(values: np.ndarray, pix_fmt: str) -> av.VideoFrame:
    """A 4:4:4 frame holding exactly the code values ``values`` ([3,H,W])."""
    frame = av.VideoFrame(values.shape[2], values.shape[1], pix_fmt)
    dtype = np.uint16 if "10" in pix_fmt else np.uint8
    for plane, data in zip(frame.planes, values):
        view = np.frombuffer(plane, dtype=dtype).reshape(plane.height, plane.line_size // np.dtype(dtype).itemsize)
        view[:, : plane.width] = data
    return frame


@pytest.mark.parametrize("bits", [8, 10])
@pytest.mark.parametrize("matrix", MATRICES)
@pytest.mark.parametrize("color_range", RANGES)
def test_to_rgb_matches_the_h273_formulas(bits: int, matrix: str, color_range: str) -> None:
    colorspace, full = MATRICES[matrix], color_range == "full"
    y0, ys, c0, cs = levels(bits, full)
    rng = np.random.default_rng(bits + colorspace)
    codes = np.stack([rng.integers(y0, y0 + ys + 1, (16, 24)), rng.integers(c0 - cs / 2, c0 + cs / 2 + 1, (16, 24)),
                      rng.integers(c0 - cs / 2, c0 + cs / 2 + 1, (16, 24))])
    frame = yuv_frame(codes, "yuv444p" if bits == 8 else "yuv444p10le")
    rgb = to_rgb(frame, ColorInfo(colorspace, RANGES[color_range], 1, 1, 16))
    peak = 255 if bits == 8 else 65535
    assert rgb.dtype == (np.uint8 if bits == 8 else np.uint16)
    expected = reference_rgb(*codes.astype(np.float64), colorspace, bits, full) * peak
    # Exact to rounding: 8-bit via swscale, 10-bit into 16-bit RGB by our own float32 matrix.
    assert np.abs(rgb - expected).max() <= (0.52 if bits == 8 else 0.51)
    # The same codes read with another matrix are far off: the check above can fail.
    other = 1 if colorspace != 1 else 9
    assert np.abs(reference_rgb(*codes.astype(np.float64), other, bits, full) * peak - expected).max() > 0.02 * peak


@pytest.mark.parametrize("bits", [8, 10])
@pytest.mark.parametrize("matrix", MATRICES)
@pytest.mark.parametrize("color_range", RANGES)
def test_from_rgb_matches_the_h273_formulas(bits: int, matrix: str, color_range: str) -> None:
    colorspace, full = MATRICES[matrix], color_range == "full"
    peak = 255 if bits == 8 else 65535
    rgb = np.random.default_rng(colorspace).integers(0, peak + 1, (16, 24, 3)).astype(np.uint8 if bits == 8 else np.uint16)
    frame = from_rgb(rgb, "yuv444p" if bits == 8 else "yuv444p10le", ColorInfo(colorspace, RANGES[color_range], 1, 1, 16))
    expected = reference_ycbcr(rgb / peak, colorspace, bits, full)
    error = np.abs(np.stack(planes(frame)) - expected)
    assert error.max() <= 0.51  # exact to rounding (swscale's own 8-bit encode was up to 1.05 levels off)


def test_untagged_video_uses_the_players_guess() -> None:
    assert ColorInfo(height=576).matrix.name == "ITU601"
    assert ColorInfo(height=1080).matrix.name == "ITU709"
    assert ColorInfo().range_for("yuv420p").name == "MPEG"
    assert ColorInfo().range_for("yuvj420p").name == "JPEG"


# ---------------------------------------------------------------------------- end to end


def write_tagged(path: Path, count: int, pix_fmt: str, codec: str, tags: tuple[int, int, int, int],
                 size: tuple[int, int] = (32, 64), options: dict[str, str] | None = None) -> Path:
    """A clip whose stream carries colour tags (colorspace, range, primaries, transfer)."""
    colorspace, color_range, primaries, trc = tags
    color = ColorInfo(colorspace, color_range, primaries, trc, size[0])
    rate = Fraction(25)
    frames = translating_frames(count, *size, step=(2, 1))
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=rate)
        stream.height, stream.width = size
        stream.pix_fmt = pix_fmt
        context = stream.codec_context
        context.colorspace, context.color_range, context.color_primaries, context.color_trc = tags
        stream.options = options or {}
        for index, rgb in enumerate(frames):
            if "10" in pix_fmt:  # 10-bit detail below the 8-bit step
                rgb = rgb.astype(np.uint16) * 257 + np.arange(rgb.shape[1], dtype=np.uint16)[None, :, None] * 5
            frame = from_rgb(rgb, pix_fmt, color)
            frame.pts = index
            frame.time_base = 1 / rate
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def decoded(path: Path) -> tuple[av.VideoFrame, list[list[np.ndarray]]]:
    with av.open(str(path)) as container:
        frames = list(container.decode(video=0))
    return frames[0], [planes(f) for f in frames]


CASES = [
    ("bt601-limited-8bit-x264", "yuv420p", "libx264", (6, 1, 6, 6), {"qp": "0", "preset": "ultrafast"}, ".mp4",
     ["--preset", "ultrafast"]),
    ("bt709-full-8bit-ffv1", "yuv420p", "ffv1", (1, 2, 1, 1), {}, ".mkv", ["--codec", "ffv1"]),
    ("bt2020-limited-10bit-ffv1", "yuv420p10le", "ffv1", (9, 1, 9, 14), {}, ".mkv", ["--codec", "ffv1"]),
    ("bt709-limited-10bit-x265", "yuv420p10le", "libx265", (1, 1, 1, 1),
     {"x265-params": "lossless=1:log-level=error", "preset": "ultrafast"}, ".mkv",
     ["--codec", "libx265", "--preset", "ultrafast"]),
]


@pytest.mark.parametrize(("name", "pix_fmt", "codec", "tags", "options", "suffix", "args"), CASES, ids=[c[0] for c in CASES])
def test_tags_kept_copies_untouched_and_depth_kept(tmp_path: Path, tiny_weights: Path, name, pix_fmt, codec, tags, options,
                                                   suffix, args) -> None:
    source = write_tagged(tmp_path / f"in{suffix}", 4, pix_fmt, codec, tags, options=options)
    destination = tmp_path / f"out{suffix}"
    extra = ["--crf", "0"] if codec.startswith("lib") else []
    result = CliRunner().invoke(cli.main, ["interpolate", str(source), str(destination), "--weights", str(tiny_weights),
                                           "-q", *args, *extra])
    assert result.exit_code == 0, result.output
    first_in, inputs = decoded(source)
    first_out, outputs = decoded(destination)
    assert first_out.format.name == pix_fmt  # 10-bit stays 10-bit
    assert (first_out.colorspace, first_out.color_range, first_out.color_primaries, first_out.color_trc) == tags
    assert len(outputs) == 2 * len(inputs)
    for k, planes_in in enumerate(inputs):
        for plane_in, plane_out in zip(planes_in, outputs[2 * k]):
            error = np.abs(plane_in.astype(int) - plane_out)
            if codec != "libx265":  # lossless encoders: the original frames arrive bit for bit (no RGB round trip)
                assert error.max() == 0
            else:  # x265 at CRF 0 is near-lossless only
                assert error.mean() < 1.5
    if pix_fmt.endswith("10le"):
        # Synthesised frames carry 10-bit precision: an 8-bit pipeline would leave luma on multiples of 4.
        luma = outputs[1][0]
        assert np.mean(luma % 4 != 0) > 0.5


def test_16_bit_frames_are_processed_in_16_bits(tiny_weights: Path) -> None:
    """The model sees uint16 RGB at full precision and returns uint16 that agrees with the 8-bit path."""
    import torch

    from vfi_cli.engine.runner import FrameInterpolator
    from vfi_cli.model.network import Interpolator

    torch.manual_seed(0)
    model = Interpolator.from_config(TINY_CONFIG)
    first, second = translating_frames(2, 32, 48, step=(2, 0))
    runner = FrameInterpolator(model, torch.device("cpu"), torch.float32, 32, 48)
    out8 = runner.synthesize([(runner.prepare(first), runner.prepare(second), 0.5)])[0]
    # 16-bit frames: the 8-bit picture plus detail below one 8-bit step.
    detail = np.random.default_rng(0).integers(0, 128, first.shape)
    deep = [(f.astype(np.int64) * 257 + detail).astype(np.uint16) for f in (first, second)]
    out16 = runner.synthesize([(runner.prepare(deep[0]), runner.prepare(deep[1]), 0.5)])[0]
    assert out16.dtype == np.uint16 and out8.dtype == np.uint8
    assert np.abs(out16 / 257.0 - out8).max() <= 1.0
    inside = out16[(out16 > 0) & (out16 < 65535)]  # the untrained model clips some of its output
    assert inside.size > 100 and np.mean(inside % 257 != 0) > 0.9  # not 8-bit values scaled up
