"""Weights on disk: safetensors (no pickle) plus a JSON card with config, recipe, metrics and sha256.

A ``name.safetensors`` file keeps its card in ``name.card.json`` beside it. The architecture config
is also stored in the safetensors metadata, so a file travels without its card and still loads.
The shipped models are the files with a card in the package's ``weights`` folder, chosen by name
(the file's stem; ``--model NAME``); :data:`~vfi_cli.config.DEFAULT_MODEL` is used unless told.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save

from vfi_cli.config import DEFAULT_MODEL, ModelConfig, is_model_name
from vfi_cli.errors import MissingWeightsError, VfiError, first_line
from vfi_cli.files import commit_output, identity, parse_json_object
from vfi_cli.model.card import CARD_FORMAT, card_figures, card_path, card_summary, read_card
from vfi_cli.model.network import Interpolator

DEFAULT_WEIGHTS_NAME = f"{DEFAULT_MODEL}.safetensors"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def weights_search_path() -> list[Path]:
    """Where the shipped models are looked for: the package's own data folder ``vfi_cli/weights``,
    found through :mod:`importlib.resources`, so the same in a source checkout, an editable install,
    a wheel, a virtual environment or ``pip install --user``."""
    return [Path(str(importlib.resources.files("vfi_cli") / "weights"))]


def shipped_models() -> dict[str, Path]:
    """Every shipped model's file by name (its stem), sorted: each ``NAME.safetensors`` with a card
    beside it in the search path (the first folder wins a name), so dropping in the pair ships a model."""
    found: dict[str, Path] = {}
    for folder in weights_search_path():
        for path in folder.glob("*.safetensors"):
            if card_path(path).is_file():
                found.setdefault(path.name.removesuffix(".safetensors"), path)
    return dict(sorted(found.items()))


def default_weights_path() -> Path | None:
    """The default model's file, or None when it is not shipped (a missing card counts as not shipped)."""
    return shipped_models().get(DEFAULT_MODEL)


def model_path(name: str) -> Path:
    """The file of the shipped model ``name``; an unknown name is a one-line error listing the names."""
    models = shipped_models()
    if name not in models:
        raise VfiError(f"no shipped model named {name!r}; the shipped models are: {', '.join(models) or 'none'} "
                       "(vfi info describes them; give a weights file with --weights)")
    return models[name]


def resolve_weights(weights: Path | str | None) -> Path | None:
    """The file meant by ``weights``: a :class:`Path` is a file; a str is a shipped model's name when
    :func:`~vfi_cli.config.is_model_name` says so (``"vfi-zoom"``), else a file; None stays None
    (the default model, looked up when loaded, so that a missing one is :class:`MissingWeightsError`)."""
    if isinstance(weights, str) and is_model_name(weights):
        return model_path(weights)
    return None if weights is None else Path(weights)


def describe_weights(path: Path | None) -> dict[str, Any]:
    """What ``vfi info`` says of the weights ``path`` (None: the default model, else the default
    architecture with no weights) and, for choosing among them, of every shipped model (its card only)."""
    path = path or default_weights_path()
    models = [{"name": name, "path": file, "default": name == DEFAULT_MODEL} | card_figures(read_card(file) or {})
              for name, file in shipped_models().items()]
    described: dict[str, Any] = {"weights": path, "searched": weights_search_path(), "sha256": None, "card": [], "models": models}
    if path is None:
        network = Interpolator.from_config(ModelConfig())
    else:
        network, card = load_weights(path)
        described.update(sha256=card.get("sha256", "not on a card"), card=card_summary(card))
    parts = {name: sum(p.numel() for p in module.parameters()) for name, module in network.named_children()}
    return described | {"stride": network.stride, "multiple": network.multiple(), "parameters": parts | {"total": sum(parts.values())}}


def save_weights(
    model: Interpolator,
    config: ModelConfig,
    path: Path,
    *,
    recipe: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
    dtype: torch.dtype = torch.float32,
    overwrite: bool = True,
) -> dict[str, Any]:
    """Write ``path`` and its card; returns the card. ``dtype=torch.float16`` halves the file.
    Without ``overwrite`` a file that appeared at ``path`` meanwhile is never replaced."""
    path = Path(path)
    tensors = {name: value.detach().to("cpu", dtype).contiguous() for name, value in model.state_dict().items()}
    # safetensors' save_file creates the file 0600; writing the bytes ourselves honours the umask, and
    # the rename means an interrupted export never leaves a truncated file under the final name.
    partial = path.with_name(path.name + ".partial")
    try:
        partial.write_bytes(save(tensors, metadata={"vfi_config": json.dumps(config.to_dict())}))
        commit_output(partial, path, identity(path) if overwrite else None)
    finally:
        partial.unlink(missing_ok=True)
    card = {
        "format": CARD_FORMAT,
        "file": path.name,
        "sha256": sha256_file(path),
        "dtype": str(dtype).removeprefix("torch."),
        "parameters": sum(p.numel() for p in model.parameters()),
        "config": config.to_dict(),
        "recipe": recipe or {},
        "metrics": metrics or {},
    }
    card_path(path).write_text(json.dumps(card, indent=2) + "\n")
    return card


def model_config(data: Any, source: str) -> ModelConfig:
    """The architecture described by ``data`` (weights metadata, a card, a run's config), checked for
    types and sizes before anything is built; a one-line :class:`VfiError` naming ``source`` otherwise."""
    try:
        return ModelConfig.from_dict(data)
    except (ValueError, TypeError) as exc:
        raise VfiError(f"{source}: bad architecture config: {exc}") from None


def check_finite(tensors: dict[str, torch.Tensor], source: str) -> None:
    """Refuse weights holding NaN or infinite values: they would give black or garbage frames."""
    for name, tensor in tensors.items():
        if isinstance(tensor, torch.Tensor) and tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise VfiError(f"{source} holds NaN or infinite values (in {name}); the model would produce broken frames")


def load_weights(path: Path | None, device: torch.device | str = "cpu") -> tuple[Interpolator, dict[str, Any]]:
    """Build the model described by a weights file, load it on the CPU, then move it to ``device``.

    ``path=None`` means the default shipped weights. Everything is checked first (:func:`read_weights`).
    """
    if path is None:
        path = default_weights_path()
        if path is None:
            raise MissingWeightsError(
                f"no trained weights found ({DEFAULT_WEIGHTS_NAME} with its card is in none of "
                f"{', '.join(str(p) for p in weights_search_path())}); reinstall vfi or pass --weights PATH"
            )
    config, tensors, card = read_weights(Path(path))
    model = Interpolator.from_config(config)
    try:
        model.load_state_dict({k: v.float() for k, v in tensors.items()}, strict=True)
    except RuntimeError as exc:
        raise VfiError(f"weights file {path} does not fit its config: {first_line(exc)}") from exc
    model.eval()
    return model.to(device), card


def read_weights(path: Path) -> tuple[ModelConfig, dict[str, torch.Tensor], dict[str, Any]]:
    """A weights file's architecture, tensors and card (with ``config``), checked before anything is
    built: the sha256 on its card (a truncated or swapped file is refused rather than run), the
    config's types and sizes, and values that are all finite."""
    if not path.is_file():
        raise VfiError(f"weights file not found: {path}")
    card = read_card(path)
    if card is not None and card.get("sha256") != sha256_file(path):
        raise VfiError(f"weights file {path} does not match the sha256 on its card {card_path(path)}")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as fh:
            metadata = fh.metadata() or {}
        tensors = load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as exc:
        raise VfiError(f"not a safetensors weights file: {path} ({exc})") from exc
    if "vfi_config" in metadata:
        config = model_config(parse_json_object(metadata["vfi_config"], f"the metadata of {path}"), f"weights file {path}")
    elif card is not None and "config" in card:
        config = model_config(card["config"], f"weights card {card_path(path)}")
    else:
        raise VfiError(f"weights file {path} carries no architecture config (and has no card)")
    check_finite(tensors, f"weights file {path}")
    return config, tensors, {**(card or {}), "config": config.to_dict()}
