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


def _module(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_no_import_circle_even_through_imports_inside_functions() -> None:
    """Module A imports B (at the top or inside a function, which only defers the circle) and B
    imports A: a circle means the two belong together or a helper belongs below both. The package
    itself (its ``__version__``) and a package's own re-exports are not edges."""
    modules = {_module(path): path for path in PACKAGE.rglob("*.py")}
    edges: dict[str, set[str]] = {}
    for name, path in modules.items():
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("vfi_cli."):
                found |= {f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module for a in node.names}
            elif isinstance(node, ast.Import):
                found |= {a.name for a in node.names if a.name.startswith("vfi_cli.")}
        edges[name] = {target for target in found if target in modules and not name.startswith(f"{target}.")} - {name}
    circles = []

    def visit(name: str, trail: list[str]) -> None:
        for target in sorted(edges[name]):
            if target in trail:
                circles.append(trail[trail.index(target):] + [target])
            elif target not in seen:
                seen.add(target)
                visit(target, [*trail, target])

    seen: set[str] = set()
    for start in sorted(modules):
        if start not in seen:
            seen.add(start)
            visit(start, [start])
    assert circles == []
