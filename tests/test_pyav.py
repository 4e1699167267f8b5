"""The PyAV releases vfi supports: the range pyproject declares is the one checked at run time, an
unsupported PyAV is one line before anything imports it, and the API that moved between the
supported releases (side data, rationals) is read the same from each."""

from __future__ import annotations

import re
import tomllib
from fractions import Fraction
from importlib import metadata
from pathlib import Path

import av
import pytest
from click.testing import CliRunner

from tests.test_hostile import clip
from vfi_cli import cli
from vfi_cli.environment import PYAV_REQUIREMENT, check_pyav, unsupported_pyav
from vfi_cli.errors import VfiError
from vfi_cli.video.pyav import rational, side_data
from vfi_cli.video.streams import display_matrix

ROOT = Path(__file__).resolve().parents[1]


def test_pyproject_declares_the_range_vfi_checks() -> None:
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert PYAV_REQUIREMENT in declared
    assert unsupported_pyav(metadata.version("av")) is None  # the tests run on a supported PyAV


@pytest.mark.parametrize(("version", "supported"), [
    ("14.4.0", False), ("17.1.0", False), ("18.0.0", True), ("18.1.0", True), ("18.1.1", True), ("19.0.2", True),
    ("20.0.0", False), ("20.0.0rc1", False), ("18.2.0.dev3", True),
])
def test_supported_releases(version: str, supported: bool) -> None:
    reason = unsupported_pyav(version)
    assert (reason is None) is supported
    if not supported:
        assert reason == (f"PyAV {version} is installed, but vfi needs PyAV 18.0 or later, before 20.0: "
                          "pip install 'av>=18.0,<20'")


def test_an_unsupported_pyav_is_one_line_before_any_command(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(metadata, "version", lambda name: "17.1.0" if name == "av" else "1.0")
    result = CliRunner().invoke(cli.main, ["interpolate", str(tmp_path / "in.mp4"), str(tmp_path / "out.mp4")])
    assert result.exit_code == 1
    assert result.stderr.splitlines() == ["Error: PyAV 17.1.0 is installed, but vfi needs PyAV 18.0 or later, before 20.0: "
                                          "pip install 'av>=18.0,<20'"]
    assert not (tmp_path / "out.mp4").exists()


def test_a_missing_pyav_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(name: str) -> str:
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "version", missing)
    with pytest.raises(VfiError, match=re.escape("pip install 'av>=18.0,<20'")):
        check_pyav()


def test_rates_and_time_bases_become_fractions() -> None:
    assert rational(Fraction(30000, 1001)) == Fraction(30000, 1001) and type(rational(Fraction(1, 25))) is Fraction
    assert rational(None) is None and rational(Fraction(0)) is None
    path = Path(__file__).resolve().parents[1] / "samples" / "bbb_640x360_25fps.mp4"
    with av.open(str(path)) as container:  # whatever type this PyAV uses
        stream = container.streams.video[0]
        assert rational(stream.average_rate) == Fraction(25) and type(rational(stream.time_base)) is Fraction
        frame = next(container.decode(stream))
        assert Fraction(frame.pts) * rational(frame.time_base) == 0


def test_side_data_of_a_rotated_clip(tmp_path: Path) -> None:
    """A phone clip's display matrix (a quarter turn: 16.16 fixed-point ±1 off the diagonal, 2.30 w)
    is found by its type on the decoded frame; a clip without one gives None."""
    rotated = clip(tmp_path / "rotated.mp4", count=2, rotation=90)
    matrix = display_matrix(rotated)
    assert matrix is not None and matrix[0] == matrix[4] == 0 and abs(matrix[1]) == abs(matrix[3]) == 1 << 16
    assert matrix[1] == -matrix[3] and matrix[8] == 1 << 30
    plain = clip(tmp_path / "plain.mp4", count=2)
    with av.open(str(plain)) as container:
        assert side_data(next(container.decode(video=0)), av.sidedata.sidedata.Type.DISPLAYMATRIX) is None
    assert display_matrix(plain) is None
