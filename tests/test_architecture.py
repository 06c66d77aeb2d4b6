"""The package's layers (docs/architecture.md): no module imports from a layer above its own."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "scripts" / "modelops"
# top-level module or subpackage -> layer; entry points (`__main__`) sit with the CLI.
LAYERS = {
    **dict.fromkeys(("errors", "files", "reporter", "templates", "git", "settings", "signature"), 0),
    **dict.fromkeys(("flavors", "artifacts"), 1),
    "manifest": 2,
    "workspace": 3,
    **dict.fromkeys(("registry", "images", "kubernetes", "scan", "runner"), 4),
    "api": 5,
    **dict.fromkeys(("commands", "cli", "__main__"), 6),
}


def _part(module: str) -> str:
    """The top-level part of a dotted module name inside the package (`modelops.manifest.model` -> manifest)."""
    return module.split(".")[1] if module.count(".") else "__init__"


def _imports(path: Path) -> set[str]:
    """Every modelops module `path` imports, at the top or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("modelops"):
            found |= {f"{node.module}.{alias.name}" for alias in node.names} if node.module == "modelops" \
                else {node.module}
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("modelops.")}
    return found


def test_every_module_belongs_to_a_layer() -> None:
    parts = {p.name.removesuffix(".py") for p in PACKAGE.iterdir() if p.suffix == ".py" or any(p.glob("*.py"))}
    assert parts - {"__init__"} <= set(LAYERS), f"unplaced: {sorted(parts - set(LAYERS) - {'__init__'})}"


def test_nothing_imports_upwards() -> None:
    upward = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE)
        own = "__main__" if path.name == "__main__.py" else relative.parts[0].removesuffix(".py")
        if own == "__init__":
            continue
        for imported in _imports(path):
            part = _part(imported)
            if part in LAYERS and LAYERS[part] > LAYERS[own]:
                upward.append(f"{relative} imports {imported}")
    assert upward == []


def test_no_two_public_classes_share_a_name() -> None:
    places: dict[str, list[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
                places.setdefault(node.name, []).append(path.relative_to(PACKAGE).as_posix())
    assert {name: where for name, where in places.items() if len(where) > 1} == {}
