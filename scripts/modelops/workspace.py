"""Find the repository root and its model folders, in a stable order."""

from __future__ import annotations

import os
from pathlib import Path

import click

from modelops.errors import ModelopsError
from modelops.manifest.model import MANIFEST

MODELS_DIR = "models"


def root(start: Path | None = None) -> Path:
    """The repository root: `$MODELOPS_ROOT`, else the nearest folder upwards holding `models/`."""
    if env := os.environ.get("MODELOPS_ROOT"):
        if not Path(env).is_dir():
            raise ModelopsError(f"MODELOPS_ROOT={env}: no such folder",
                                hint="set MODELOPS_ROOT to the repository (the folder holding models/), or unset it")
        return Path(env).resolve()
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / MODELS_DIR).is_dir():
            return candidate
    raise ModelopsError("no models/ folder here or above", hint="run modelops from a models repository")


def model_folders(paths: tuple[str, ...] | list[str], base: Path) -> list[Path]:
    """The model folders named by `paths` (folders or manifests); all of `models/*` when empty, or for the
    repository's own folder or `models/`.

    A path that names no model folder is an error; no models under models/ is said on stderr.
    """
    if not paths:
        models = base / MODELS_DIR
        if not models.is_dir():
            raise ModelopsError(f"no {MODELS_DIR}/ folder in {base}", hint="run modelops from a models repository")
        folders = sorted(p for p in models.iterdir() if p.is_dir() and not p.name.startswith("."))
        if not folders:
            click.echo(f"no models under {MODELS_DIR}/", err=True)
        return folders
    folders = []
    for raw in paths:
        path = Path(raw)
        path = path if path.is_absolute() else Path.cwd() / path
        if path.name == MANIFEST:
            path = path.parent
        if not path.is_dir():
            raise ModelopsError(f"{raw}: no such model folder", hint="pass folders such as models/iris")
        if path.resolve() in (base.resolve(), (base / MODELS_DIR).resolve()):  # the repository: every model
            folders.extend(model_folders((), base))
            continue
        if (path / MANIFEST).is_file() or path.parent.name == MODELS_DIR:
            folders.append(path)
            continue
        inside = [p for p in sorted(path.iterdir()) if (p / MANIFEST).is_file()]
        if not inside:
            raise ModelopsError(f"{raw}: not a model folder (no {MANIFEST} in it or in its subfolders)",
                                hint=f"pass model folders such as {MODELS_DIR}/iris, or no path for every model "
                                     f"under {MODELS_DIR}/")
        folders.extend(inside)
    return sorted(set(folders))
