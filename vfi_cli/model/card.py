"""The weights card: ``NAME.card.json`` beside ``NAME.safetensors``, holding the architecture config,
the training recipe (every stage's command, steps, wall time and hardware, parent stages nested in
``recipe.init_from``), the metrics and the file's sha256. JSON only: reading a card needs no torch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vfi_cli.errors import VfiError
from vfi_cli.files import read_json_object

CARD_FORMAT = "vfi-weights-card/1"


def card_path(weights: Path) -> Path:
    """Where the card of a weights file lives."""
    return weights.with_name(weights.name.removesuffix(".safetensors") + ".card.json")


def read_card(path: Path) -> dict[str, Any] | None:
    """The card of the weights file ``path``, or None when it has none; a card that is not a JSON
    object, or whose fields vfi reads have the wrong type, is a one-line error."""
    card_file = card_path(Path(path))
    if not card_file.is_file():
        return None
    card = read_json_object(card_file, f"weights card {card_file}")
    for key, kind in (("sha256", str), ("config", dict), ("recipe", dict), ("metrics", dict)):
        if key in card and not isinstance(card[key], kind):
            raise VfiError(f"weights card {card_file}: {key!r} must be a JSON {'string' if kind is str else 'object'}")
    return card


def card_summary(card: dict[str, Any]) -> list[str]:
    """The lines of a weights card a person reads first; the card file holds the rest. A hand-edited
    card whose recipe or metrics are malformed gives one line saying so."""
    try:
        return _summary(card)
    except (TypeError, ValueError, KeyError, AttributeError):
        return ["card: its recipe or metrics are malformed (not summarised)"]


def _summary(card: dict[str, Any]) -> list[str]:
    recipe, lines = card.get("recipe") or {}, []
    if recipe.get("steps"):
        lines.append(f"trained: {_stage_cost(recipe)} on {'; '.join(recipe.get('hardware') or ['unrecorded hardware'])}")
    # A fine-tuned model names its parent, which may name its own: list every stage, then the sum,
    # so that the last stage's steps and hours are not mistaken for the whole cost.
    stages, parent = [recipe], recipe.get("init_from")
    while parent:
        stage = parent.get("recipe") or {}
        cost = f", itself {_stage_cost(stage)}" if stage.get("steps") else ""
        lines.append(f"  fine-tuned from {parent.get('file')} (sha256 {parent.get('sha256')}){cost}")
        stages.append(stage)
        parent = stage.get("init_from")
    if len(stages) > 1 and all(stage.get("steps") for stage in stages):
        total = {"steps": sum(s["steps"] for s in stages)}
        if all(stage.get("wall_seconds") for stage in stages):
            total["wall_seconds"] = sum(s["wall_seconds"] for s in stages)
        lines.append(f"  in all: {len(stages)} stages, {_stage_cost(total)}")
    if recipe.get("command"):
        lines.append(f"  command: {recipe['command']}")
    mean = ((card.get("metrics") or {}).get("holdout") or {}).get("mean_of_clips") or {}
    if mean:
        lines.append("held-out PSNR / SSIM (mean of clips): " + ", ".join(f"{name} {m['psnr']:.2f} / {m['ssim']:.4f}" for name, m in mean.items()))
    return lines


def _stage_cost(recipe: dict[str, Any]) -> str:
    hours = f", {recipe['wall_seconds'] / 3600:.1f} h" if recipe.get("wall_seconds") else ""
    return f"{recipe['steps']} steps{hours}"
