"""Installs anywhere Python does: the wheel is the ``vfi-zoom`` distribution with the ``vfi`` command and
the shipped weights as package data, found through importlib.resources from an installed copy; memory
through psutil; ``--device mps`` understood."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest
import torch

from vfi_cli.errors import VfiError
from vfi_cli.memory import available_memory, peak_rss
from vfi_cli.model.weights import DEFAULT_WEIGHTS_NAME, default_weights_path, sha256_file

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel built offline from a copy of the source (no build files land in the checkout)."""
    work = tmp_path_factory.mktemp("build")
    source = work / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "vfi_cli", source / "vfi_cli", ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
                    "-w", str(work / "dist"), str(source)], check=True, capture_output=True)
    return next((work / "dist").glob("*.whl"))


def test_the_wheel_is_vfi_zoom_with_the_command_and_the_weights(wheel: Path) -> None:
    assert wheel.name.startswith("vfi_zoom-")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        info = next(n for n in names if n.endswith(".dist-info/METADATA"))
        metadata = archive.read(info).decode()
        entry_points = archive.read(info.replace("METADATA", "entry_points.txt")).decode()
        shipped = archive.read(f"vfi_cli/weights/{DEFAULT_WEIGHTS_NAME}")
    assert "Name: vfi-zoom\n" in metadata and "Requires-Dist: psutil" in metadata
    assert "vfi = vfi_cli.cli:main" in entry_points
    assert "vfi_cli/weights/vfi-zoom.card.json" in names and not any(n.startswith(("share/", "weights/")) for n in names)
    assert shipped == default_weights_path().read_bytes()


def test_an_installed_wheel_finds_its_weights_outside_the_checkout(wheel: Path, tmp_path: Path) -> None:
    """A virtual environment (reusing this interpreter's torch, PyAV ...) with the wheel installed:
    ``vfi info`` runs from elsewhere, imports the installed package and finds the weights inside it.

    The packages are reached through a ``.pth`` file naming this interpreter's site-packages, not
    through ``system_site_packages``: run from inside a virtual environment, that would reach the
    base Python's, which lacks them. A ``.pth`` line adds a folder without reading the ``.pth``
    files in it, so this checkout's editable install stays out and the wheel is what is imported."""
    target = tmp_path / "venv"
    venv.create(target, with_pip=False)
    python = target / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    ours = dict.fromkeys(sysconfig.get_paths()[key] for key in ("purelib", "platlib"))
    (Path(site) / "parent-site-packages.pth").write_text("".join(f"{folder}\n" for folder in ours))
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", "-q", str(wheel)],
                   check=True, capture_output=True)
    command = target / ("Scripts/vfi.exe" if os.name == "nt" else "bin/vfi")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    shown = subprocess.run([str(command), "info"], cwd=tmp_path, env=env, check=True, capture_output=True, text=True).stdout
    weights_line = next(line for line in shown.splitlines() if line.startswith("weights: "))
    installed = Path(weights_line.removeprefix("weights: ").split(" (sha256")[0])
    assert installed.is_relative_to(target) and installed.name == DEFAULT_WEIGHTS_NAME
    assert sha256_file(installed) in weights_line


def test_memory_is_read_through_psutil() -> None:
    import psutil

    assert 0 < available_memory() <= psutil.virtual_memory().total
    assert peak_rss() >= psutil.Process().memory_info().rss * 0.9  # the peak is at least what is resident now


def test_mps_is_a_device(monkeypatch: pytest.MonkeyPatch) -> None:
    from vfi_cli.backends.eager import resolve_device, resolve_precision

    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    with pytest.raises(VfiError, match="MPS .* is not available on this machine"):
        resolve_device("mps")
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    device = resolve_device("mps")
    assert device.type == "mps" and resolve_precision(None, device) == torch.float32
    with pytest.raises(VfiError, match=r"use auto, cpu, cuda\[:N\] or mps"):
        resolve_device("tpu")


def test_cuda_defaults_to_fp16(monkeypatch: pytest.MonkeyPatch) -> None:
    """With a GPU (mocked), 'auto' picks it and precision defaults to fp16 for every backend; an explicit choice stands."""
    from vfi_cli.backends.eager import resolve_device, resolve_precision

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    device = resolve_device("auto")
    assert device.type == "cuda"
    assert all(resolve_precision(None, device, backend) == torch.float16 for backend in ("auto", "torch", "compile"))
    assert resolve_precision("fp32", device) == torch.float32 and resolve_precision("bf16", device) == torch.bfloat16


def test_bf16_on_a_cpu_that_emulates_it_is_a_warning(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    from vfi_cli.backends import eager

    cpu = torch.device("cpu")
    monkeypatch.setattr(eager, "native_bf16", lambda: False)
    assert eager.resolve_precision("bf16", cpu) == torch.bfloat16 and eager.resolve_precision(None, cpu) == torch.float32
    assert [r.getMessage() for r in caplog.records if r.levelname == "WARNING"] == [
        "this CPU has no native bf16 (AVX-512 BF16 or AMX): bf16 is emulated here and runs several times slower than fp32"]
    caplog.clear()
    monkeypatch.setattr(eager, "native_bf16", lambda: True)
    assert eager.resolve_precision("bf16", cpu) == torch.bfloat16 and not caplog.records
