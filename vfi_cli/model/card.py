"""The weights card: ``NAME.card.json`` beside ``NAME.safetensors``, holding the architecture config,
the training recipe (every stage's command, steps, wall time and hardware, parent stages nested in
``recipe.init_from``), the metrics and the file's sha256. JSON only: reading a card needs no torch."""

from __future__ import annotations

import shlex
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from vfi_cli.config import DATA_KINDS, TEACHER_KINDS
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
    for key, kind in (("sha256", str), ("description", str), ("config", dict), ("recipe", dict), ("metrics", dict)):
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


def card_figures(card: dict[str, Any]) -> dict[str, Any]:
    """What tells shipped models apart, for ``vfi info``: ``parameters``, the one-line ``description``,
    the model's mean hold-out ``psnr`` / ``ssim`` (``metrics.holdout.mean_of_clips.vfi``) and its
    ``seconds_per_frame`` with their ``speed_source``: ``metrics.speed`` (a ``vfi bench --json``
    result) where recorded, else the mean over the hold-out clips. None for what the card lacks or
    holds malformed."""
    figures: dict[str, Any] = dict.fromkeys(("psnr", "ssim", "seconds_per_frame", "speed_source"))
    figures |= {"parameters": card.get("parameters"), "description": card.get("description")}
    try:
        metrics = card.get("metrics") or {}
        mean = ((metrics.get("holdout") or {}).get("mean_of_clips") or {}).get("vfi") or {}
        figures |= {"psnr": float(mean["psnr"]), "ssim": float(mean["ssim"])} if mean else {}
        speed = metrics.get("speed")
        if speed:
            height, width = speed["size"]
            source = f"vfi bench {height}x{width} on {speed['device_name']}"
            return figures | {"seconds_per_frame": float(speed["ms_per_frame"]["median"]) / 1000, "speed_source": source}
        times = [float(clip["vfi"]["seconds_per_frame"]) for clip in metrics["holdout"]["clips"].values()]
        return figures | {"seconds_per_frame": sum(times) / len(times), "speed_source": "mean of the hold-out clips"} if times else figures
    except (TypeError, ValueError, KeyError, AttributeError):
        return figures


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
        lines.append(f"  command: {portable_command(recipe['command'])}")
    mean = ((card.get("metrics") or {}).get("holdout") or {}).get("mean_of_clips") or {}
    if mean:
        lines.append("held-out PSNR / SSIM (mean of clips): " + ", ".join(f"{name} {m['psnr']:.2f} / {m['ssim']:.4f}" for name, m in mean.items()))
    return lines


def _stage_cost(recipe: dict[str, Any]) -> str:
    hours = f", {recipe['wall_seconds'] / 3600:.1f} h" if recipe.get("wall_seconds") else ""
    return f"{recipe['steps']} steps{hours}"


def portable_command(command: str) -> str:
    """A recorded command as it reads on any machine: each absolute path (also in ``--data
    videos:/path@0.2``, ``--teacher rife:/path`` and ``--opt=/path``) cut to its last part, or to as
    many last parts as keep two different paths apart (``/work/shared/clips`` and ``/work/extra/clips``
    become ``shared/clips`` and ``extra/clips``). The card keeps the command as it ran."""
    try:
        words = shlex.split(command)
    except ValueError:
        return command
    pieces = [_path_piece(word) for word in words]
    paths = sorted({piece[1] for piece in pieces if piece is not None})
    short = _shortest_unique(paths)
    out = [word if piece is None else piece[0] + short[piece[1]] + piece[2] for word, piece in zip(words, pieces)]
    return shlex.join(out)


def _path_piece(word: str) -> tuple[str, str, str] | None:
    """(prefix, absolute path, suffix) of a command word holding a machine's path, else None."""
    prefix, rest = "", word
    if rest.startswith("--") and "=" in rest:
        name, _, rest = rest.partition("=")
        prefix = name + "="
    kind, sep, after = rest.partition(":")
    if sep and kind in DATA_KINDS + TEACHER_KINDS:  # --data videos:/path, --teacher rife:/path
        prefix, rest = prefix + kind + ":", after
    suffix = ""
    body, at, weight = rest.rpartition("@")
    if at and body and weight.replace(".", "", 1).isdigit():
        rest, suffix = body, "@" + weight
    if not (PurePosixPath(rest).is_absolute() or PureWindowsPath(rest).is_absolute()):
        return None
    return prefix, rest, suffix


def _shortest_unique(paths: list[str]) -> dict[str, str]:
    """Each path's fewest last parts that no other path in ``paths`` shares."""
    parts = {path: (PureWindowsPath(path) if PureWindowsPath(path).drive else PurePosixPath(path)).parts[1:] or ("/",) for path in paths}
    short = {}
    for path, mine in parts.items():
        keep = 1
        while keep < len(mine) and any(other[-keep:] == mine[-keep:] for q, other in parts.items() if q != path):
            keep += 1
        short[path] = "/".join(mine[-keep:])
    return short
