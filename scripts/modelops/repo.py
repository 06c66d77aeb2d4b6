"""Find the repository root and its model folders, in a stable order."""

from __future__ import annotations

import os
from pathlib import Path

from modelops.errors import ModelopsError
from modelops.manifest import MANIFEST

MODELS_DIR = "models"


def root(start: Path | None = None) -> Path:
    """The repository root: `$MODELOPS_ROOT`, else the nearest folder upwards holding `models/`."""
    if env := os.environ.get("MODELOPS_ROOT"):
        return Path(env).resolve()
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / MODELS_DIR).is_dir():
            return candidate
    raise ModelopsError("no models/ folder here or above", hint="run modelops from a models repository")


def model_folders(paths: tuple[str, ...] | list[str], base: Path) -> list[Path]:
    """The model folders named by `paths` (folders or manifests); all of `models/*` when empty."""
    if not paths:
        models = base / MODELS_DIR
        return sorted(p for p in models.iterdir() if p.is_dir() and not p.name.startswith("."))
    folders = []
    for raw in paths:
        path = Path(raw)
        path = path if path.is_absolute() else Path.cwd() / path
        if path.name == MANIFEST:
            path = path.parent
        if not path.is_dir():
            raise ModelopsError(f"{raw}: no such model folder", hint="pass folders such as models/iris")
        if (path / MANIFEST).is_file() or path.parent.name == MODELS_DIR:
            folders.append(path)
        else:
            folders.extend(p for p in sorted(path.iterdir()) if (p / MANIFEST).is_file())
    return sorted(set(folders))
