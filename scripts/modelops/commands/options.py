"""What the image verbs act on: model folders and, in each, the images asked for."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import click

from modelops import workspace as repo
from modelops.images.context import Target, targets
from modelops.manifest.loading import LoadedManifest
from modelops.manifest.loading import load as load_manifest


def options(command: Callable) -> Callable:
    """PATHS plus --version/--env, shared by render and build."""
    command = click.option("--env", "envs", multiple=True,
                           help="Only the image serving this environment (repeatable).")(command)
    command = click.option("--version", "versions", multiple=True,
                           help="Only the image of this version (repeatable).")(command)
    return click.argument("paths", nargs=-1, type=click.Path())(command)


def chosen(paths: tuple[str, ...], versions: tuple[str, ...], envs: tuple[str, ...],
           ) -> tuple[Path, list[tuple[LoadedManifest, list[Target]]]]:
    """The repository root and, per model folder, its manifest and the targets asked for."""
    root = repo.root()
    picked = []
    for folder in repo.model_folders(paths, root):
        loaded = load_manifest(folder, root)
        picked.append((loaded, targets(loaded.manifest, versions, envs)))
    return root, picked
