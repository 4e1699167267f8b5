"""Output hygiene: ``--json -`` is stdout (not a file named '-'), '-' as IN or OUT is refused, ``vfi info``
prints commands without the training machine's paths, and the encoder libraries print nothing of their own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.test_cli import assert_one_line_error
from tests.test_datasets import lossless_clip
from tests.test_hdr import hdr_clip
from tests.conftest import translating_frames
from vfi_cli import cli
from vfi_cli.model.card import card_summary, portable_command, read_card
from vfi_cli.model.weights import default_weights_path

ROOT = Path(__file__).resolve().parents[1]


def invoke(*args: str):
    return CliRunner().invoke(cli.main, list(args))


def untimed(report):
    """A report without its timings (which differ from run to run)."""
    if isinstance(report, dict):
        return {k: untimed(v) for k, v in report.items() if "seconds" not in k}
    return [untimed(v) for v in report] if isinstance(report, list) else report


def test_eval_json_dash_is_stdout_and_the_table_goes_to_stderr(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    clip = lossless_clip(tmp_path / "move.mkv", translating_frames(7, 24, 32, step=(2, 0)))
    to_file = invoke("eval", str(clip), "--no-model", "--compare", "blend", "--max-triplets", "3", "--json", "r.json", "-q")
    result = invoke("eval", str(clip), "--no-model", "--compare", "blend", "--max-triplets", "3", "--json", "-", "-q")
    assert result.exit_code == 0 and to_file.exit_code == 0, result.output
    assert untimed(json.loads(result.stdout)) == untimed(json.loads((tmp_path / "r.json").read_text()))  # the JSON alone
    assert "blend" in result.stderr and "PSNR" in result.stderr  # the table, out of the pipe's way
    assert not (tmp_path / "-").exists()


def test_bench_json_dash_is_stdout(tiny_weights: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = invoke("bench", "--size", "32x48", "--weights", str(tiny_weights), "--device", "cpu", "--warmup", "0",
                    "--iterations", "1", "--json", "-", "-q")
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout)
    assert figures["size"] == [32, 48] and figures["iterations"] == 1 and "ms per frame" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == []


@pytest.mark.parametrize(("source", "destination", "fragment"), [
    ("IN", "-", "OUT '-' (standard output) is not supported"),
    ("-", "out.mp4", "IN '-' (standard input) is not supported"),
])
def test_dash_as_in_or_out_is_refused(make_clip, tiny_weights: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                      source: str, destination: str, fragment: str) -> None:
    monkeypatch.chdir(tmp_path)
    clip = make_clip(count=4)
    result = invoke("interpolate", str(clip) if source == "IN" else source, destination, "--weights", str(tiny_weights))
    assert_one_line_error(result, fragment)
    assert sorted(p.name for p in tmp_path.iterdir()) == [clip.name]


@pytest.mark.parametrize(("args", "fragment"), [(("RUN", "-"), "OUT '-'"), (("--onnx", "-"), "--onnx '-'")])
def test_export_to_dash_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: tuple[str, ...], fragment: str) -> None:
    monkeypatch.chdir(tmp_path)
    result = invoke("export", *(str(tmp_path) if arg == "RUN" else arg for arg in args))
    assert_one_line_error(result, f"{fragment} (standard output) is not supported")
    assert list(tmp_path.iterdir()) == []


def test_info_prints_the_recipe_without_the_training_machines_paths() -> None:
    card = read_card(default_weights_path())
    assert "/work/" in card["recipe"]["command"]  # the card keeps the command as it ran
    shown = "\n".join(card_summary(card))
    assert "/work" not in shown and "--data videos:shared/clips --data videos:extra/clips" in shown
    result = invoke("info")
    assert result.exit_code == 0 and "/work/" not in result.output.split("\n", 3)[3]  # the weights' own path is line 3
    assert "--teacher rife:flownet.pkl" in result.output and "--init-flow flownet.pkl" in result.output


def test_portable_commands_keep_different_paths_apart() -> None:
    assert portable_command("vfi train --run-dir=/a/runs/x --data videos:/w/s/clips --data videos:/w/e/clips@0.2 "
                            "--init-weights 'C:\\Users\\me\\m 1.safetensors' --data synthetic@0.3 --crop 128") == (
        "vfi train --run-dir=x --data videos:s/clips --data videos:e/clips@0.2 --init-weights 'm 1.safetensors' "
        "--data synthetic@0.3 --crop 128")
    assert portable_command("vfi train --lr 2e-5 --data videos:CLIPS") == "vfi train --lr 2e-5 --data videos:CLIPS"
    assert portable_command("vfi train --teacher rife:/w/t/flownet.pkl --init-flow /w/t/flownet.pkl") == (
        "vfi train --teacher rife:flownet.pkl --init-flow flownet.pkl")


@pytest.mark.parametrize("codec", ["libx265", "libsvtav1"])
def test_the_encoder_libraries_print_nothing_of_their_own(tiny_weights: Path, tmp_path: Path, codec: str) -> None:
    """x265 and SVT-AV1 write notices straight to stderr ("x265 [info]: ...", "Svt[warn]: ..."); a fresh
    ``vfi`` process, whose only warning here is its own, prints it as ``Warning: ...`` and nothing else."""
    source = hdr_clip(tmp_path / "hdr10.mp4")
    env = {**{k: v for k, v in os.environ.items() if k != "SVT_LOG"}, "PYTHONPATH": str(ROOT)}
    run = subprocess.run([sys.executable, "-m", "vfi_cli", "interpolate", str(source), str(tmp_path / "out.mkv"), "--weights",
                          str(tiny_weights), "--codec", codec, "--preset", "10" if codec == "libsvtav1" else "ultrafast", "-q",
                          "--encoder-opt", "crf=40"], env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert run.stderr == "" and run.stdout == ""
