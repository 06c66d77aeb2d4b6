"""The package's layers (docs/architecture.md): no module imports from a layer above its own, and the
subsystems of one layer import each other only where the architecture says so."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "scripts" / "modelops"
# top-level module or subpackage -> layer; entry points (`__main__` modules: `python -m modelops`,
# `python -m modelops.runner`) sit with the CLI, which they run.
LAYERS = {
    **dict.fromkeys(("errors", "files", "locks", "reporter", "templates", "git", "settings", "signature"), 0),
    **dict.fromkeys(("flavors", "artifacts", "signing"), 1),
    "manifest": 2,
    "workspace": 3,
    **dict.fromkeys(("registry", "images", "kubernetes", "compose", "scan", "runner", "canary"), 4),
    "api": 5,
    **dict.fromkeys(("commands", "cli", "__main__"), 6),
}


SUBSYSTEMS = LAYERS["registry"]  # the layer of the subsystems: they import each other only as listed here
# the imports allowed between two subsystems: (importer, imported module)
WITHIN_A_LAYER = {
    ("images", "modelops.scan.sbom"),  # the SBOM an image carries, and the label naming it
    ("kubernetes", "modelops.images.targets"),  # which image serves an environment
    ("kubernetes", "modelops.images.context"),  # the port and user of the runner in those images
    ("kubernetes", "modelops.images.deploy"),  # that image's reference (--images), the runner's command and variables
    ("compose", "modelops.images.deploy"),  # the image of an environment, the runner's command and variables
    ("compose", "modelops.images.context"),  # the port, user and healthcheck of the runner in those images
    ("registry", "modelops.images.targets"),  # which images a model has, recorded as tags
    ("registry", "modelops.images.build"),  # the Image a build returns (a type)
    ("runner", "modelops.registry.projection"),  # the tag naming a registered version's semantic version
    ("kubernetes", "modelops.canary.queries"),  # the PromQL of a rollout's analysis, as `modelops canary` reads it
}


def _part(module: str) -> str:
    """The top-level part of a dotted module name inside the package (`modelops.manifest.model` -> manifest)."""
    return module.split(".")[1] if module.count(".") else "__init__"


def _is_module(dotted: str) -> bool:
    path = PACKAGE.joinpath(*dotted.split(".")[1:])
    return path.with_suffix(".py").is_file() or path.is_dir()


def _imports(path: Path) -> set[str]:
    """Every modelops module `path` imports, at the top or inside functions (relative imports resolved)."""
    package = ["modelops", *path.relative_to(PACKAGE).parent.parts]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = ".".join(package[:len(package) - node.level + 1]) if node.level else ""
            module = ".".join(p for p in (base, node.module or "") if p)
            if module.startswith("modelops"):  # `from package import module` names the module
                found |= {f"{module}.{alias.name}" if _is_module(f"{module}.{alias.name}") else module
                          for alias in node.names}
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("modelops.")}
    return found


def test_every_module_belongs_to_a_layer() -> None:
    parts = {p.name.removesuffix(".py") for p in PACKAGE.iterdir() if p.suffix == ".py" or any(p.glob("*.py"))}
    assert parts - {"__init__"} <= set(LAYERS), f"unplaced: {sorted(parts - set(LAYERS) - {'__init__'})}"


def test_nothing_imports_upwards_or_sideways_unless_allowed() -> None:
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE)
        own = "__main__" if path.name == "__main__.py" else relative.parts[0].removesuffix(".py")
        if own == "__init__":
            continue
        for imported in _imports(path):
            part = _part(imported)
            if part not in LAYERS or part == own:
                continue
            if LAYERS[part] > LAYERS[own]:
                wrong.append(f"{relative} imports {imported} (a layer above)")
            elif LAYERS[part] == LAYERS[own] == SUBSYSTEMS and (own, imported) not in WITHIN_A_LAYER:
                wrong.append(f"{relative} imports {imported} (beside it, not in WITHIN_A_LAYER)")
    assert wrong == []


def test_no_two_public_classes_share_a_name() -> None:
    places: dict[str, list[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
                places.setdefault(node.name, []).append(path.relative_to(PACKAGE).as_posix())
    assert {name: where for name, where in places.items() if len(where) > 1} == {}
