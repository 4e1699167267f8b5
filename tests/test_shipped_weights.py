"""The model that ships in vfi_cli/weights/: found by default, intact, documented, and better than blending
on a scene whose true middle frame is known (photographs moving by whole pixels)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage import data as photos

from vfi_cli.evaluation.methods import blend
from vfi_cli.metrics import psnr
from vfi_cli.model.weights import DEFAULT_WEIGHTS_NAME, default_weights_path, load_weights, sha256_file


def _scene(k: int) -> np.ndarray:
    """Frame k: the astronaut photograph panning 3 px/frame right, a 96×96 cat patch crossing it
    10 px/frame left and 4 px/frame down (so it covers and uncovers background)."""
    background = photos.astronaut()[64 : 64 + 192, 32 - 3 * k : 32 - 3 * k + 256]
    frame = background.copy()
    cat = photos.chelsea()[60:156, 120:216]
    y, x = 40 + 4 * k, 150 - 10 * k
    frame[y : y + 96, x : x + 96] = cat
    return np.ascontiguousarray(frame)


def _interpolate(model: torch.nn.Module, first: np.ndarray, second: np.ndarray) -> np.ndarray:
    def tensor(rgb: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255

    with torch.no_grad():
        out = model(tensor(first), tensor(second), torch.tensor([0.5])).refined
    return (out[0].permute(1, 2, 0).clamp(0, 1) * 255).round().byte().numpy()


@pytest.fixture(scope="module")
def shipped():
    path = default_weights_path()
    assert path is not None and path.name == DEFAULT_WEIGHTS_NAME, "vfi_cli/weights/vfi-zoom.safetensors is missing from the package"
    model, card = load_weights(path)  # checks the sha256 against the card
    return path, model.eval(), card


def test_card_documents_the_file(shipped) -> None:
    path, model, card = shipped
    assert card["sha256"] == sha256_file(path)
    assert card["parameters"] == sum(p.numel() for p in model.parameters())
    recipe = card["recipe"]
    assert recipe["command"].startswith("vfi train") and recipe["steps"] > 0 and recipe["wall_seconds"] > 0
    assert recipe["hardware"] and recipe["train_config"]["adversarial"] == "instance"
    assert card["config"]["flow_prior"] == "dis"
    holdout = card["metrics"]["holdout"]
    assert len(holdout["clips"]) == 9
    for row in holdout["clips"].values():
        assert {"vfi", "blend", "opencv-dis", "rife-torch"} <= row.keys()
    assert {"instance", "none"} <= card["metrics"]["ablation"].keys()  # §4.1 at equal budget


def test_beats_blending_where_the_truth_is_known(shipped) -> None:
    _, model, _ = shipped
    frames = [_scene(k) for k in range(3)]
    ours = _interpolate(model, frames[0], frames[2])
    assert psnr(ours, frames[1]) > psnr(blend(frames[0], frames[2]), frames[1]) + 5.0


def test_still_frames_come_back_unchanged(shipped) -> None:
    """No motion, no change: a model that tints or blurs still footage would fail here."""
    _, model, _ = shipped
    still = _scene(0)
    assert psnr(_interpolate(model, still, still), still) > 45.0
