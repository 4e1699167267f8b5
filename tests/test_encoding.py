"""What the encoder is told: --encoder-opt (over --crf and --preset, parameter lists merged), refusals."""

from __future__ import annotations

from pathlib import Path

import av
import pytest
from click.testing import CliRunner

from tests.test_cli import assert_one_line_error
from vfi_cli import cli
from vfi_cli.config import EncodeSettings, merge_params


def invoke(*args: str):
    return CliRunner().invoke(cli.main, list(args))


def encoder_settings(path: Path) -> str:
    """The settings x264 and x265 write into their headers ("options: cabac=1 ref=3 ..."): in the stream's
    extradata, or in the first packet."""
    with av.open(str(path)) as container:
        data = (container.streams.video[0].codec_context.extradata or b"") + bytes(next(p for p in container.demux(video=0) if p.size))
    start = data.index(b"options: ")
    return data[start : data.index(b"\x00", start)].decode("ascii", "replace")


def keyframes(path: Path) -> list[int]:
    with av.open(str(path)) as container:
        packets = sorted((p for p in container.demux(video=0) if p.size), key=lambda p: p.pts)
        return [k for k, p in enumerate(packets) if p.is_keyframe]


def test_settings_take_a_dict_or_pairs_and_merge_parameter_lists() -> None:
    assert EncodeSettings(options={"tune": "film"}).options == (("tune", "film"),)
    merged = EncodeSettings(options=[("x265-params", "aq-mode=3:keyint=5"), ("tune", "grain"), ("x265-params", "keyint=9:no-sao")])
    assert merged.options == (("x265-params", "aq-mode=3:keyint=9:no-sao"), ("tune", "grain"))
    assert merge_params("a=1:flag", "flag:b=2:a=3") == "a=3:flag:b=2"
    with pytest.raises(ValueError, match="encoder option names"):
        EncodeSettings(options=[("", "1")])


def test_encoder_options_reach_x264_over_crf_and_preset(make_clip, tiny_weights: Path, tmp_path: Path) -> None:
    out = tmp_path / "o.mp4"
    result = invoke("interpolate", str(make_clip(count=8, audio=False)), str(out), "--weights", str(tiny_weights), "-q",
                    "--crf", "18", "--preset", "medium", "--encoder-opt", "crf=33", "--encoder-opt", "preset=ultrafast",
                    "--encoder-opt", "x264-params=keyint=5:min-keyint=5:scenecut=0")
    assert result.exit_code == 0, result.output
    settings = encoder_settings(out)
    assert "crf=33.0" in settings and "cabac=0" in settings  # ultrafast turns CABAC off; medium keeps it
    assert keyframes(out) == [0, 5, 10, 15]  # 16 output frames, a keyframe every 5


def test_x265_parameter_lists_given_twice_are_merged(make_clip, tiny_weights: Path, tmp_path: Path) -> None:
    out = tmp_path / "o.mkv"
    result = invoke("interpolate", str(make_clip(count=4, audio=False, size=(32, 64))), str(out), "--weights", str(tiny_weights),
                    "-q", "--codec", "libx265", "--preset", "ultrafast", "--encoder-opt", "x265-params=aq-mode=3:log-level=error",
                    "--encoder-opt", "x265-params=psy-rd=1.5")
    assert result.exit_code == 0, result.output
    settings = encoder_settings(out).split()
    assert "aq-mode=3" in settings and "psy-rd=1.50" in settings


@pytest.mark.parametrize(("option", "fragment"), [
    ("no-such-option=1", "libx264 does not take the encoder option(s) no-such-option"),
    ("tune=nonsense", "libx264 refused the encoder options (tune=nonsense)"),
    ("x264-params=keyint=5:nonsense=1", "libx264 did not take the encoder options: Error parsing option 'nonsense = 1'."),
])
def test_an_option_the_encoder_does_not_take_is_one_line_and_writes_nothing(make_clip, tiny_weights: Path, tmp_path: Path,
                                                                            option: str, fragment: str) -> None:
    source = make_clip(count=4, audio=False)
    result = invoke("interpolate", str(source), str(tmp_path / "o.mp4"), "--weights", str(tiny_weights), "-q", "--encoder-opt", option)
    assert_one_line_error(result, fragment)
    assert sorted(p.name for p in tmp_path.iterdir()) == [source.name]


def test_encoder_opt_without_an_equals_sign_is_a_usage_error(make_clip, tmp_path: Path) -> None:
    result = invoke("interpolate", str(make_clip(count=4)), str(tmp_path / "o.mp4"), "--encoder-opt", "tune")
    assert result.exit_code == 2 and "'tune' is not KEY=VALUE" in result.stderr
