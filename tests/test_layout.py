"""The house rules: which room may import which (README, Development), and no file above 400 lines."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "vfi_cli"
# Standard-library-level modules every room may use; they import only each other.
NEUTRAL = {"errors", "environment", "config", "architecture", "units", "files", "memory", "progress", "results", "metrics", "pretrained", "__init__"}
# The rooms each room may import besides itself and the neutral modules: only downwards.
ALLOWED = {
    "video": set(),
    "model": set(),
    "backends": {"model"},
    "engine": {"backends", "model", "video"},
    "datasets": {"engine", "video"},
    "training": {"datasets", "backends", "model"},
    "evaluation": {"datasets", "engine", "backends", "model", "video"},
    "jobs": {"engine", "backends", "model", "video"},
    "api": {"jobs", "training", "evaluation", "datasets", "engine", "backends", "model", "video"},
    "cli": {"api"},
    "__main__": {"cli"},
}


def _imports(path: Path) -> set[str]:
    """The first component below vfi_cli of every vfi_cli module ``path`` imports (anywhere in it)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "vfi_cli":
            parts = node.module.split(".")
            found |= {parts[1]} if len(parts) > 1 else {alias.name for alias in node.names}
        elif isinstance(node, ast.Import):
            found |= {alias.name.split(".")[1] for alias in node.names if alias.name.startswith("vfi_cli.")}
    return {name.removesuffix(".py") for name in found}


def test_no_room_imports_sideways_or_upwards() -> None:
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        room = path.relative_to(PACKAGE).parts[0].removesuffix(".py")
        allowed = NEUTRAL | {room} | (ALLOWED.get(room, set()) if room not in NEUTRAL else set())
        if room == "__init__":
            allowed |= {"api"}  # the package re-exports the API
        if room == "cli" or room == "api":
            allowed |= {"__version__"}
        wrong += [f"{path.relative_to(PACKAGE)} imports {name}" for name in sorted(_imports(path) - allowed)]
    assert wrong == []


def test_the_video_room_knows_nothing_of_torch() -> None:
    for path in (PACKAGE / "video").rglob("*.py"):
        modules = {alias.name for node in ast.walk(ast.parse(path.read_text())) if isinstance(node, ast.Import) for alias in node.names}
        modules |= {node.module for node in ast.walk(ast.parse(path.read_text())) if isinstance(node, ast.ImportFrom) and node.module}
        assert not any(m == "torch" or m.startswith("torch.") for m in modules), path


def test_no_file_of_the_package_is_above_400_lines() -> None:
    long = {str(p.relative_to(PACKAGE)): n for p in PACKAGE.rglob("*.py") if (n := len(p.read_text().splitlines())) > 400}
    assert long == {}
