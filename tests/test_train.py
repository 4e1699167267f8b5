"""The training loop: each adversarial mode learns, RoIs reach the discriminator, resume is exact, DDP runs."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from tests.conftest import TINY_CONFIG
from vfi_cli import api
from vfi_cli.cli import main
from vfi_cli.config import LossWeights, TrainConfig
from vfi_cli.errors import VfiError
from vfi_cli.model.weights import load_weights
from vfi_cli.training.checkpoint import command_line, vfi_command
from vfi_cli.training.export import parent_as_vfi, run_history
from vfi_cli.training.items import collate_triplets
from vfi_cli.training.trainer import Trainer

SMALL = dict(
    data=[{"kind": "synthetic", "root": None, "weight": 1.0}],
    model=TINY_CONFIG.to_dict(),
    crop=64,
    batch_size=2,
    workers=0,
    num_rois=4,
    log_every=1,
    val_every=10_000,
    sample_every=10_000,
    checkpoint_every=10_000,
    val_triplets=2,
    d_channels=8,
)


def _config(run_dir: Path, **changes: object) -> TrainConfig:
    return TrainConfig(run_dir=str(run_dir), **{**SMALL, **changes})  # type: ignore[arg-type]


@pytest.mark.parametrize("mode", ["none", "image", "instance"])
def test_each_adversarial_mode_lowers_the_loss_on_a_fixed_batch(tmp_path: Path, mode: str) -> None:
    torch.manual_seed(0)
    trainer = Trainer(_config(tmp_path / mode, adversarial=mode, steps=1, lr=5e-3))
    batch = collate_triplets([trainer.train_data[i] for i in range(2)])

    def interpolation_loss() -> float:
        with torch.no_grad():
            losses = trainer.objective.generator_losses(trainer.model(batch["image1"], batch["image2"], batch["t"]), batch, trainer.step)
        return float(losses["photometric"] + losses["perceptual"])

    before = interpolation_loss()
    for _ in range(40):
        logged = trainer.train_step(batch)
    after = interpolation_loss()
    assert after < 0.85 * before, (before, after)
    assert ("adversarial" in logged) == (mode != "none") and ("discriminator" in logged) == (mode != "none")


def test_instance_discriminator_sees_exactly_k_rois_per_image(tmp_path: Path) -> None:
    trainer = Trainer(_config(tmp_path, adversarial="instance", steps=1, num_rois=5, roi_size=32))
    seen: list[tuple[int, ...]] = []
    trainer.discriminator.register_forward_hook(lambda module, args, out: seen.append(tuple(args[0].shape)))
    batch = collate_triplets([trainer.train_data[i] for i in range(2)])
    trainer.train_step(batch)
    assert seen and all(shape == (2 * 5, 3, 32, 32) for shape in seen)


def test_resume_gives_the_same_weights_as_an_uninterrupted_run(tmp_path: Path) -> None:
    straight = Trainer(_config(tmp_path / "straight", steps=6, adversarial="instance"))
    straight.fit()
    first = Trainer(_config(tmp_path / "split", steps=3, adversarial="instance"))
    first.fit()
    resumed_config = json.loads((tmp_path / "split" / "config.json").read_text())
    resumed_config["steps"] = 6
    resumed = Trainer(TrainConfig.from_dict(resumed_config), resume=True)
    assert resumed.step == 3
    resumed.fit()
    for name, value in straight.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[name]), name
    for name, value in straight.discriminator.state_dict().items():
        assert torch.equal(value, resumed.discriminator.state_dict()[name]), name


def test_cli_trains_resumes_and_exports_usable_weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))  # no VGG-16 in the cache: the offline loss
    (tmp_path / "model.json").write_text(json.dumps(TINY_CONFIG.to_dict()))
    common = ["train", "--run-dir", str(tmp_path / "run"), "--workers", "0", "-q"]
    options = ["--data", "synthetic", "--model-config", str(tmp_path / "model.json"), "--crop", "64", "--batch-size", "2",
               "--num-rois", "4", "--d-channels", "8", "--flow-teacher", "dis", "--lambda", "perceptual=0.5", "--val-every", "2", "--log-every", "1"]
    result = CliRunner().invoke(main, [*common, *options, "--steps", "2"])
    assert result.exit_code == 0, result.output
    again = CliRunner().invoke(main, [*common, *options, "--steps", "2"])
    assert again.exit_code == 1 and "--resume" in again.output
    changed = CliRunner().invoke(main, [*common, "--resume", "--steps", "3", "--crop", "32"])
    assert changed.exit_code == 1 and "cannot change crop" in changed.output
    resumed = CliRunner().invoke(main, [*common, "--resume", "--steps", "3", "--export", str(tmp_path / "w.safetensors")])
    assert resumed.exit_code == 0, resumed.output
    log = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log if "total" in r] == [1, 2, 3]
    assert [r["step"] for r in log if r.get("event") == "start"] == [0, 2]
    assert any("val_psnr" in r for r in log)
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert "teacher" in next(r for r in log if "total" in r) and saved["losses"]["perceptual"] == 0.5
    assert saved["perceptual_source"].startswith("offline:") and saved["proposal_source"] == "motion"
    model, card = load_weights(tmp_path / "w.safetensors")
    assert card["recipe"]["steps"] == 3 and card["recipe"]["train_config"]["flow_teacher"] == "dis"
    checkpoint = torch.load(tmp_path / "run" / "checkpoints" / "last.pt", weights_only=True)
    for name, value in model.state_dict().items():
        assert torch.equal(value, checkpoint["model"][name]), name
    with pytest.raises(Exception, match="exists"):
        api.export(tmp_path / "run", tmp_path / "w.safetensors")
    assert card["recipe"]["wall_seconds"] > 0 and len(card["recipe"]["hardware"]) == 1
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "w.safetensors").stat().st_mode & 0o777 == 0o666 & ~umask  # not safetensors' 0600
    assert not list(tmp_path.glob("*.partial"))
    (tmp_path / "eval.json").write_text(json.dumps({"holdout": {"clip": {"psnr": 30.0}}}))
    exported = api.export(tmp_path / "run", tmp_path / "m.safetensors", metrics=tmp_path / "eval.json")
    assert exported["metrics"]["holdout"] == {"clip": {"psnr": 30.0}} and "total" in exported["metrics"]["training"]
    scaled = api.export(tmp_path / "run", tmp_path / "s.safetensors", flow_scales=2)  # an inference setting, no parameters
    assert scaled["config"]["flow_scales"] == 2 and scaled["recipe"]["export_settings"] == {"flow_scales": 2}
    assert any(line.startswith("flow scales") for line in scaled["recipe"]["deviations"])
    assert load_weights(tmp_path / "s.safetensors")[0].flow_scales == 2 and "export_settings" not in card["recipe"]
    with pytest.raises(VfiError, match="--flow-scales 9"):
        api.export(tmp_path / "run", tmp_path / "t.safetensors", flow_scales=9)
    (tmp_path / "list.json").write_text("[1, 2]")
    with pytest.raises(Exception, match="JSON object"):
        api.export(tmp_path / "run", tmp_path / "n.safetensors", metrics=tmp_path / "list.json")
    # Fine-tuning from the exported file takes its architecture from the file.
    fine = CliRunner().invoke(main, ["train", "--run-dir", str(tmp_path / "fine"), "--workers", "0", "-q", "--data", "synthetic",
                                     "--init-weights", str(tmp_path / "w.safetensors"), "--crop", "64", "--batch-size", "2",
                                     "--num-rois", "4", "--d-channels", "8", "--steps", "1"])
    assert fine.exit_code == 0, fine.output
    assert json.loads((tmp_path / "fine" / "config.json").read_text())["model"] == TINY_CONFIG.to_dict()
    # ... and its exported card names the stage it started from, so both commands can be replayed.
    (tmp_path / "w.safetensors").rename(tmp_path / "moved.safetensors")  # the parent may be gone by export time
    fine_card = api.export(tmp_path / "fine", tmp_path / "f.safetensors")
    assert fine_card["recipe"]["init_from"] == {"file": "w.safetensors", "sha256": card["sha256"], "recipe": card["recipe"]}
    assert "init_from" not in card["recipe"]
    # A card names an architecture for a fresh run (how the shipped model's command is replayed).
    fresh = CliRunner().invoke(main, ["train", "--run-dir", str(tmp_path / "fresh"), "--workers", "0", "-q", "--data", "synthetic",
                                      "--model-config", str(tmp_path / "w.card.json"), "--crop", "64", "--batch-size", "2",
                                      "--num-rois", "4", "--d-channels", "8", "--steps", "1"])
    assert fresh.exit_code == 0, fresh.output
    assert json.loads((tmp_path / "fresh" / "config.json").read_text())["model"] == TINY_CONFIG.to_dict()
    assert not (tmp_path / "fresh" / "init_from.json").exists()


def test_a_run_started_with_python_m_records_the_vfi_command(monkeypatch: pytest.MonkeyPatch) -> None:
    """`python -m vfi_cli train ...` is `vfi train ...`: the card's command can be replayed as written."""
    monkeypatch.setattr(sys, "argv", ["/site-packages/vfi_cli/__main__.py", "train", "--run-dir", "run"])
    assert command_line() == "vfi train --run-dir run"
    assert vfi_command("__main__.py train --steps 9 ; __main__.py train --resume") == "vfi train --steps 9 ; vfi train --resume"
    assert vfi_command("vfi train --run-dir __main__.py") == "vfi train --run-dir __main__.py"
    chain = {"file": "b.safetensors", "recipe": {"command": "__main__.py train --b", "init_from": {"recipe": {"command": "__main__.py train --a"}}}}
    named = parent_as_vfi(chain)
    assert named["recipe"]["command"] == "vfi train --b" and named["recipe"]["init_from"]["recipe"]["command"] == "vfi train --a"
    assert named["file"] == "b.safetensors" and chain["recipe"]["command"] == "__main__.py train --b"  # the parent's own file is untouched


def test_run_history_sums_the_wall_time_of_every_process(tmp_path: Path) -> None:
    records = [
        {"step": 1, "seconds": 5.0},  # a process from before start records: found by its clock restarting
        {"step": 2, "seconds": 9.0},
        {"step": 3, "seconds": 2.0},
        {"event": "start", "step": 3, "hardware": "CPU A", "processes": 1, "threads": 2},
        {"step": 4, "seconds": 4.0},
        {"step": 4, "val_psnr": 30.0},
        {"event": "start", "step": 4, "hardware": "GPU B", "processes": 1, "threads": 8},
        {"step": 5, "seconds": 1.5},
    ]
    log = tmp_path / "metrics.jsonl"
    log.write_text("".join(json.dumps(r) + "\n" for r in records))
    history = run_history(log)
    assert history["wall_seconds"] == 9.0 + 2.0 + 4.0 + 1.5
    assert history["hardware"] == ["CPU A, 1 process(es) × 2 threads", "GPU B, 1 process(es) × 8 threads"]


def test_init_weights_starts_from_a_weights_file(tmp_path: Path, tiny_weights: Path) -> None:
    trainer = Trainer(_config(tmp_path / "fine", steps=1, init_weights=str(tiny_weights)))
    source, _ = load_weights(tiny_weights)
    for name, value in source.state_dict().items():
        assert torch.equal(value, trainer.model.state_dict()[name]), name
    other = json.loads(json.dumps(TINY_CONFIG.to_dict()))
    other["synthesis_channels"] = 4
    with pytest.raises(Exception, match="another architecture"):
        Trainer(_config(tmp_path / "wrong", steps=1, init_weights=str(tiny_weights), model=other))


def test_bad_training_options_are_one_line_errors(tmp_path: Path) -> None:
    runner = CliRunner()
    cases = [
        (["--data", "imagenet", "--steps", "1"], "unknown --data kind"),
        (["--data", "videos", "--steps", "1"], "needs a folder"),
        (["--data", "synthetic"], "exactly one of --steps and --epochs"),
        (["--data", "synthetic", "--steps", "1", "--crop", "100"], "multiple of the network's stride"),
        (["--data", "synthetic", "--steps", "1", "--lambda", "style=1"], "unknown loss weight"),
    ]
    for args, message in cases:
        result = runner.invoke(main, ["train", "--run-dir", str(tmp_path / "r"), *args])
        assert result.exit_code == 1 and message in result.output, (args, result.output)
        assert "Traceback" not in result.output


def test_two_process_gloo_run(tmp_path: Path) -> None:
    (tmp_path / "model.json").write_text(json.dumps(TINY_CONFIG.to_dict()))
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "vfi_cli",
        "train", "--run-dir", str(tmp_path / "ddp"), "--data", "synthetic", "--model-config", str(tmp_path / "model.json"),
        "--crop", "32", "--batch-size", "2", "--num-rois", "2", "--d-channels", "8", "--workers", "0", "--steps", "3", "--log-every", "1", "--device", "cpu", "-q",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=240, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    checkpoint = torch.load(tmp_path / "ddp" / "checkpoints" / "last.pt", weights_only=True)
    assert checkpoint["step"] == 3
    log = (tmp_path / "ddp" / "metrics.jsonl").read_text().splitlines()
    assert len([line for line in log if '"total"' in line]) == 3  # rank 0 alone writes the log


def test_vfi_train_leaves_the_process_group_even_when_training_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A process that exits with its gloo group alive can abort in C++ teardown and fail the launch.
    from vfi_cli.errors import VfiError

    closed: list[int] = []

    def failing_fit(self: Trainer, on_step: object = None) -> None:
        raise VfiError("training stopped at step 1: a loss is not finite")

    monkeypatch.setattr(Trainer, "fit", failing_fit)
    monkeypatch.setattr(Trainer, "close", lambda self: closed.append(self.step))
    (tmp_path / "model.json").write_text(json.dumps(TINY_CONFIG.to_dict()))
    result = CliRunner().invoke(main, [
        "train", "--run-dir", str(tmp_path / "r"), "--data", "synthetic", "--model-config", str(tmp_path / "model.json"),
        "--crop", "32", "--batch-size", "2", "--workers", "0", "--steps", "1", "-q",
    ])
    assert result.exit_code == 1 and "not finite" in result.output
    assert closed == [0]


def test_squared_error_is_the_error_psnr_measures() -> None:
    from vfi_cli.metrics import psnr
    from vfi_cli.training.losses import squared_error

    generator = torch.Generator().manual_seed(0)
    truth = torch.randint(0, 256, (1, 3, 16, 24), generator=generator)
    pred = (truth + torch.randint(-20, 21, truth.shape, generator=generator)).clamp(0, 255)
    expected = psnr(pred[0].permute(1, 2, 0).numpy().astype(np.uint8), truth[0].permute(1, 2, 0).numpy().astype(np.uint8))
    error = squared_error(pred.float() / 255, truth.float() / 255)
    assert -10 * math.log10(float(error)) == pytest.approx(expected, abs=1e-4)


def test_the_squared_error_term_is_trained_only_when_weighted(tmp_path: Path) -> None:
    torch.manual_seed(0)
    plain = Trainer(_config(tmp_path / "plain", steps=1))
    weighted = Trainer(_config(tmp_path / "mse", steps=1, losses=LossWeights(mse=2.0)))
    batch = collate_triplets([plain.train_data[i] for i in range(2)])
    with torch.no_grad():
        out = weighted.model(batch["image1"], batch["image2"], batch["t"])
        losses = weighted.objective.generator_losses(out, batch, weighted.step)
        expected = 2.0 * (((out.coarse - batch["target"]) ** 2).mean() + ((out.refined - batch["target"]) ** 2).mean())
        assert "mse" not in plain.objective.generator_losses(out, batch, plain.step)
    assert float(losses["mse"]) == pytest.approx(float(expected), rel=1e-5)
    assert "mse" in weighted.train_step(batch)


def test_cpu_amp_trains_the_generator_in_bfloat16(tmp_path: Path) -> None:
    """--cpu-amp: the generator's convolutions run in bf16 on the CPU; losses stay finite and fall."""
    torch.manual_seed(0)
    trainer = Trainer(_config(tmp_path / "amp", adversarial="none", steps=1, lr=5e-3, cpu_amp=True))
    batch = collate_triplets([trainer.train_data[i] for i in range(2)])
    with trainer._autocast():
        assert trainer.model.features(batch["image1"]).dtype == torch.bfloat16
    first = trainer.train_step(batch)["total"]
    for _ in range(30):
        last = trainer.train_step(batch)["total"]
    assert math.isfinite(last) and last < first
    plain = Trainer(_config(tmp_path / "fp32", adversarial="none", steps=1))
    with plain._autocast():
        assert plain.model.features(batch["image1"]).dtype == torch.float32


@pytest.mark.parametrize("saved", [True, False], ids=["during-training", "before-the-first-checkpoint"])
def test_ctrl_c_names_the_checkpoint_and_exits_130(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, saved: bool) -> None:
    """Ctrl-C during training names the checkpoint to resume; stopped before there is one (during a
    teacher warm-up, say), the message must not name one."""
    def interrupted_fit(self: Trainer, on_step: object = None) -> None:
        if saved:
            self.save_checkpoint()  # as fit does on Ctrl-C
        raise KeyboardInterrupt

    monkeypatch.setattr(Trainer, "fit", interrupted_fit)
    (tmp_path / "model.json").write_text(json.dumps(TINY_CONFIG.to_dict()))
    result = CliRunner().invoke(main, [
        "train", "--run-dir", str(tmp_path / "r"), "--data", "synthetic", "--model-config", str(tmp_path / "model.json"),
        "--crop", "32", "--batch-size", "2", "--workers", "0", "--steps", "1", "-q",
    ])
    assert result.exit_code == 130
    checkpoint = tmp_path / "r" / "checkpoints" / "last.pt"
    assert checkpoint.is_file() == saved
    expected = (f"Interrupted: the run is saved in {checkpoint}; continue it with --resume." if saved else
                "Interrupted before training began: no checkpoint yet (the clips decoded and teacher outputs cached so far are kept).")
    assert result.stderr.splitlines()[-1] == expected
