"""The models that ship in vfi_cli/weights/: the default found by default; each intact, documented, and
better than blending on a scene whose true middle frame is known (photographs moving by whole pixels)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage import data as photos

from vfi_cli.evaluation.methods import blend
from vfi_cli.metrics import psnr
from vfi_cli.model.padding import Padder
from vfi_cli.model.weights import DEFAULT_WEIGHTS_NAME, default_weights_path, load_weights, sha256_file, shipped_models


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

    padder = Padder(*first.shape[:2], model.multiple())
    with torch.no_grad():
        out = padder.unpad(model(padder.pad(tensor(first)), padder.pad(tensor(second)), torch.tensor([0.5])).refined)
    return (out[0].permute(1, 2, 0).clamp(0, 1) * 255).round().byte().numpy()


SHIPPED = ("vfi-fast", "vfi-ifnet", "vfi-zoom")


def test_the_package_ships_three_models_and_vfi_ifnet_is_the_default() -> None:
    assert tuple(shipped_models()) == SHIPPED
    path = default_weights_path()
    assert path is not None and path.name == DEFAULT_WEIGHTS_NAME == "vfi-ifnet.safetensors", "the default weights are missing"


@pytest.fixture(scope="module", params=SHIPPED)
def shipped(request):
    path = shipped_models()[request.param]
    model, card = load_weights(path)  # checks the sha256 against the card
    return path, model.eval(), card


def test_card_documents_the_file(shipped) -> None:
    path, model, card = shipped
    assert card["sha256"] == sha256_file(path)
    assert card["parameters"] == sum(p.numel() for p in model.parameters())
    recipe = card["recipe"]
    assert recipe["command"].startswith("vfi train") and recipe["steps"] > 0 and recipe["wall_seconds"] > 0
    assert recipe["hardware"]
    holdout = card["metrics"]["holdout"]
    assert len(holdout["clips"]) == 9
    for row in holdout["clips"].values():
        assert {"vfi", "opencv-dis", "rife-torch"} <= row.keys()
    means = holdout["mean_of_clips"]
    assert means["vfi"]["psnr"] == pytest.approx(sum(row["vfi"]["psnr"] for row in holdout["clips"].values()) / 9, abs=1e-3)
    assert card["metrics"]["speed"]["size"] == [1080, 1920] and card["metrics"]["speed"]["ms_per_frame"]["median"] > 0


def test_the_default_meets_the_bar_it_was_shipped_on() -> None:
    """vfi-ifnet (issue 13): RIFE's IFNet as the flow module, started from RIFE's weights and trained
    with the paper's objective (instance-level discriminator) and the RIFE teacher; no classical
    flow. Its card holds the bar: above vfi-zoom's hold-out mean (PSNR and SSIM), ahead of OpenCV
    DIS on at least 7 of 9 clips, at most half of RIFE's time per 1080p frame in one timing window."""
    model, card = load_weights(default_weights_path())
    config, recipe = card["config"], card["recipe"]
    assert config["flow_module"] == "ifnet" and config["flow_prior"] == "none" and model.multiple() == 16
    assert recipe["train_config"]["adversarial"] == "instance" and recipe["train_config"]["stage"] == "full"
    assert str(recipe["train_config"]["flow_teacher"]).startswith("rife:") and recipe["init_from"]["file"] == "flownet.pkl"
    assert any("IFNet" in line for line in recipe["deviations"])
    means, holdout = card["metrics"]["holdout"]["mean_of_clips"], card["metrics"]["holdout"]
    assert means["vfi"]["psnr"] > means["vfi-zoom"]["psnr"] and means["vfi"]["ssim"] > means["vfi-zoom"]["ssim"]
    assert sum(row["vfi"]["psnr"] > row["opencv-dis"]["psnr"] for row in holdout["clips"].values()) >= 7
    speeds = card["metrics"]["speed_comparison"]["ms_per_1080p_frame"]
    assert speeds["vfi-ifnet"] == pytest.approx(card["metrics"]["speed"]["ms_per_frame"]["median"], abs=0.1)
    assert speeds["vfi-ifnet"] <= 0.5 * speeds["rife-torch"]


def test_vfi_zoom_is_the_paper_recipe_with_the_dis_prior() -> None:
    _, card = load_weights(shipped_models()["vfi-zoom"])
    assert card["config"]["flow_prior"] == "dis" and card["recipe"]["train_config"]["adversarial"] == "instance"
    assert {"instance", "none"} <= card["metrics"]["ablation"].keys()  # §4.1 at equal budget


def test_vfi_fast_learned_its_motion_and_says_how() -> None:
    """The named fast model: no classical prior (pure tensor work), taught by the RIFE teacher,
    its flow scales set at export; the card says so, and it is at least as good as OpenCV DIS on
    the hold-out mean, the bar for shipping it beside the default."""
    model, card = load_weights(shipped_models()["vfi-fast"])
    assert card["config"]["flow_prior"] == "none" and card["config"]["flow_scales"] == 3 and model.flow_scales == 3
    assert card["recipe"]["export_settings"] == {"flow_scales": 3}
    assert str(card["recipe"]["train_config"]["flow_teacher"]).startswith("rife:")
    assert any(line.startswith("flow teacher") for line in card["recipe"]["deviations"])
    assert any(line.startswith("flow scales") for line in card["recipe"]["deviations"])
    means = card["metrics"]["holdout"]["mean_of_clips"]
    assert means["vfi"]["psnr"] >= means["opencv-dis"]["psnr"]
    assert card["metrics"]["speed"]["ms_per_frame"]["median"] < card["metrics"]["speed_comparison"]["ms_per_1080p_frame"]["vfi-zoom"]


# dB over blending on the scene above (blending: 18.1 dB). vfi-ifnet follows the cat's 20-pixel jump best
# (28.9 dB), vfi-zoom's DIS prior next (24.8 dB); vfi-fast's learned flow follows the panning background but only part of the jump (21.5 dB:
# the cat's squared error 27 times vfi-zoom's), the large-motion weakness its README entry states.
MARGIN_OVER_BLENDING = {"vfi-zoom": 5.0, "vfi-fast": 3.0, "vfi-ifnet": 9.0}


def test_beats_blending_where_the_truth_is_known(shipped) -> None:
    path, model, _ = shipped
    frames = [_scene(k) for k in range(3)]
    ours = _interpolate(model, frames[0], frames[2])
    assert psnr(ours, frames[1]) > psnr(blend(frames[0], frames[2]), frames[1]) + MARGIN_OVER_BLENDING[path.stem]


def test_still_frames_come_back_unchanged(shipped) -> None:
    """No motion, no change: a model that tints or blurs still footage would fail here."""
    _, model, _ = shipped
    still = _scene(0)
    assert psnr(_interpolate(model, still, still), still) > 45.0
