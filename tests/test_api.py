"""The public API: the README's example runs as written, frames in memory, a light import, help()."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import vfi_cli
from tests.conftest import translating_frames, write_video

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_example() -> str:
    section = README.read_text().split("## Python API", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_readme_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_video(tmp_path / "clip.mp4", translating_frames(6, 36, 64, step=(2, 0)), 25, audio_seconds=0.24)
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {}
    exec(compile(readme_example(), "README.md", "exec"), namespace)
    summary = namespace["summary"]
    assert isinstance(summary, vfi_cli.Summary) and summary.output == Path("clip_60fps.mp4")
    assert (summary.frames_in, summary.frames_out) == (6, 14)  # 0.24 s at 60 fps, rounded half up
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4", "clip_60fps.mp4"]
    batch = namespace["batch"]
    assert isinstance(batch, vfi_cli.BatchSummary)
    assert [(r.source, r.destination, r.status) for r in batch.files] == [(Path("clip.mp4"), Path("clip_60fps.mp4"), "skipped")]


def test_interpolate_frames_in_memory(tiny_weights: Path) -> None:
    model = vfi_cli.load_model(tiny_weights, vfi_cli.EngineOptions(device="cpu"))
    assert model.weights == tiny_weights and str(model.device) == "cpu" and model.parameters > 0
    frames = translating_frames(3, 20, 30, step=(1, 0))
    pair = vfi_cli.interpolate(model, frames[:2], 0.25)
    assert len(pair) == 1 and pair[0].shape == (20, 30, 3) and pair[0].dtype == np.uint8
    sequence = vfi_cli.interpolate(model, frames, t=[0.25, 0.5, 0.75])
    assert len(sequence) == 6 and np.array_equal(sequence[0], pair[0])  # each pair's times, in order
    deep = vfi_cli.interpolate(model, [f.astype(np.uint16) * 257 for f in frames[:2]])
    assert deep[0].dtype == np.uint16
    for frames_, t in (([frames[0]], 0.5), (frames[:2], 1.0), ([frames[0], frames[1][:, :-1]], 0.5)):
        with pytest.raises(ValueError):
            vfi_cli.interpolate(model, frames_, t)


def test_import_is_light_and_help_shows_the_api() -> None:
    code = ("import sys, pydoc, vfi_cli\n"
            "heavy = sorted({'torch', 'av', 'cv2', 'numpy', 'click', 'rich'} & set(sys.modules))\n"
            "print(heavy)\n"
            "print(pydoc.render_doc(vfi_cli, renderer=pydoc.plaintext))\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(README.parent), os.environ.get("PYTHONPATH", "")])}
    shown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env).stdout
    assert shown.splitlines()[0] == "[]"
    for name in ("load_model", "interpolate", "convert", "train", "export", "evaluate", "benchmark", "describe",
                 "ConvertOptions", "EngineOptions", "Summary", "VfiError"):
        assert re.search(rf"^\s+{name}\(", shown, re.M) or f"class {name}" in shown, name


def test_the_api_functions_are_not_shadowed_by_modules() -> None:
    import vfi_cli.training.trainer  # noqa: F401 - importing the training room must leave vfi_cli.train the function

    assert vfi_cli.train is vfi_cli.api.train and callable(vfi_cli.evaluate) and callable(vfi_cli.export)
