"""HDR10 and HLG kept: the mastering display and content light level of a generated x265 HDR10 clip
come out of every encoder that takes them (frame side data), with the
BT.2020 / PQ or HLG tags; an encoder that cannot carry them says so."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from click.testing import CliRunner

from tests.conftest import smooth_texture
from vfi_cli import cli
from vfi_cli.video.hdr import HdrMetadata
from vfi_cli.video.reader import probe

# ST 2086 as HDR10 grading monitors state it: BT.2020 primaries, D65, 1000 cd/m² peak, 0.0001 black.
MASTER_DISPLAY = "G(8500,39850)B(6550,2300)R(35400,14600)WP(15635,16450)L(10000000,1)"
BT2020, PQ, HLG, BT2020_NCL = 9, 16, 18, 9


def hdr_clip(path: Path, transfer: int = PQ, master_display: str | None = MASTER_DISPLAY, max_cll: str = "1000,400",
             frames: int = 6) -> Path:
    """A 10-bit BT.2020 clip from libx265 with the HDR10 metadata in its x265-params (as grading tools write it)."""
    params = ":".join(([f"master-display={master_display}"] if master_display else []) + [f"max-cll={max_cll}", "log-level=error"])
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx265", rate=24, options={"preset": "ultrafast", "crf": "20", "x265-params": params})
        stream.width, stream.height = 64, 48
        stream.pix_fmt = "yuv420p10le"
        context = stream.codec_context
        context.color_primaries, context.color_trc, context.colorspace, context.color_range = BT2020, transfer, BT2020_NCL, 1
        texture = smooth_texture(48, 96)
        for index in range(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(texture[:, index * 4 : index * 4 + 64]), format="rgb24")
            frame = frame.reformat(format="yuv420p10le")
            frame.pts, frame.time_base = index, Fraction(1, 24)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def first_frame(path: Path) -> av.VideoFrame:
    with av.open(str(path)) as container:
        return next(container.decode(video=0))


def convert(source: Path, destination: Path, weights: Path, *args: str):
    return CliRunner().invoke(cli.main, ["interpolate", str(source), str(destination), "--weights", str(weights), "-q", *args])


def test_the_generated_clip_carries_hdr10_metadata(tmp_path: Path) -> None:
    info = probe(hdr_clip(tmp_path / "hdr10.mp4"))
    assert info.hdr == HdrMetadata(
        primaries=((Fraction(354, 500), Fraction(146, 500)), (Fraction(85, 500), Fraction(797, 1000)), (Fraction(131, 1000), Fraction(23, 500))),
        white_point=(Fraction(3127, 10000), Fraction(329, 1000)), luminance=(Fraction(1, 10000), Fraction(1000)), max_cll=1000, max_fall=400,
    )
    assert (info.pix_fmt, info.color.color_trc, info.color.color_primaries) == ("yuv420p10le", PQ, BT2020)


@pytest.mark.parametrize(("codec", "suffix", "args"), [
    ("libx265", ".mp4", ["--preset", "ultrafast"]),
    ("libx265", ".mkv", ["--preset", "ultrafast", "--encoder-opt", "x265-params=aq-mode=3"]),  # the user's list merged with vfi's
    ("libx264", ".mp4", ["--preset", "ultrafast"]),
    ("libsvtav1", ".mkv", ["--preset", "10"]),
])
def test_hdr10_metadata_reaches_the_output(tmp_path: Path, tiny_weights: Path, codec: str, suffix: str, args: list[str]) -> None:
    source = hdr_clip(tmp_path / "hdr10.mp4")
    out = tmp_path / f"out{suffix}"
    result = convert(source, out, tiny_weights, "--codec", codec, *args)
    assert result.exit_code == 0, result.output
    assert "Warning" not in result.stderr
    before, after = probe(source).hdr, HdrMetadata.of_frame(first_frame(out))
    assert after is not None and (after.max_cll, after.max_fall) == (1000, 400)
    # AV1 stores chromaticities in 1/65536 and luminance in 1/16384 (min): equal to that precision.
    close = Fraction(1, 50000) if codec == "libsvtav1" else 0
    assert all(abs(a - b) <= close for pa, pb in zip(after.primaries, before.primaries) for a, b in zip(pa, pb))
    assert all(abs(a - b) <= close for a, b in zip(after.white_point, before.white_point))
    assert abs(after.luminance[0] - before.luminance[0]) <= (Fraction(1, 16384) if close else 0) and after.luminance[1] == 1000
    frame = first_frame(out)
    assert (frame.format.name, frame.color_trc, frame.color_primaries, frame.colorspace) == ("yuv420p10le", PQ, BT2020, BT2020_NCL)
    if codec == "libx265" and suffix == ".mkv":
        with av.open(str(out)) as container:
            header = container.streams.video[0].codec_context.extradata + bytes(next(p for p in container.demux(video=0) if p.size))
        assert b"aq-mode=3" in header and b"master-display=" in header


def test_hlg_keeps_its_transfer_and_light_level(tmp_path: Path, tiny_weights: Path) -> None:
    source = hdr_clip(tmp_path / "hlg.mp4", transfer=HLG, master_display=None, max_cll="800,200")
    out = tmp_path / "out.mkv"
    assert convert(source, out, tiny_weights, "--codec", "libx265", "--preset", "ultrafast").exit_code == 0
    frame = first_frame(out)
    assert (frame.color_trc, frame.color_primaries) == (HLG, BT2020)
    assert HdrMetadata.of_frame(frame) == HdrMetadata(max_cll=800, max_fall=200)


def test_an_encoder_that_cannot_carry_the_metadata_says_so_once(tmp_path: Path, tiny_weights: Path) -> None:
    out = tmp_path / "out.mkv"
    result = convert(hdr_clip(tmp_path / "hdr10.mp4"), out, tiny_weights, "--codec", "ffv1")
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.stderr.splitlines() if line.startswith("Warning: ")]
    assert warnings == ["Warning: the HDR10 metadata of hdr10.mp4 (mastering display, content light level) cannot be written by "
                        "ffv1 and is left out; libx265, libx264, libsvtav1 keep it"]
    assert HdrMetadata.of_frame(first_frame(out)) is None and first_frame(out).color_trc == PQ
