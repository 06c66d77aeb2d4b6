"""The workspace of one command: the repository, its settings, git commit, manifests and artifact digests.

A command builds one `Workspace` and hands it to every step, so that each fact is computed once: the
`[tool.modelops]` table is read once, each manifest is read and parsed once, each artifact is digested
at most once, and git is asked for the commit once.
"""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path
from typing import Any

from modelops import artifacts, git, settings
from modelops.errors import ModelopsError
from modelops.manifest.loading import LoadedManifest
from modelops.manifest.loading import load as load_manifest
from modelops.manifest.model import MANIFEST, MODELS_DIR
from modelops.reporter import Reporter
from modelops.signing import policy


def find_root(start: Path | None = None) -> Path:
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


class Workspace:
    """One repository as one command sees it; everything is read on first use and kept."""

    def __init__(self, root: Path, reporter: Reporter | None = None) -> None:
        self.root = root
        self.reporter = reporter or Reporter()
        self._manifests: dict[Path, LoadedManifest | ModelopsError] = {}
        self._digests: dict[Path, str] = {}
        self._fetched: dict[tuple[str, Path, str], Path] = {}

    @classmethod
    def find(cls, reporter: Reporter | None = None) -> Workspace:
        """The workspace of the repository around the working folder (or `$MODELOPS_ROOT`)."""
        return cls(find_root(), reporter)

    @cached_property
    def tool_table(self) -> dict[str, Any]:
        """`[tool.modelops]` of the repository's pyproject.toml ({} without one)."""
        return settings.pyproject_table(self.root)

    @cached_property
    def settings(self) -> settings.Settings:
        return settings.load(self.root, self.tool_table)

    @cached_property
    def trust(self) -> policy.Trust:
        """The trusted signers and which versions must be signed (`[tool.modelops.signing]`)."""
        return policy.load(self.root, self.tool_table)

    @cached_property
    def commit(self) -> str:
        """The git commit checked out (`unknown` outside git)."""
        return git.commit(self.root)

    def folders(self, paths: tuple[str, ...] | list[str] = ()) -> list[Path]:
        """The model folders named by `paths` (folders or manifests); all of `models/*` when empty, or for the
        repository's own folder or `models/`. A path that names no model folder is an error."""
        if not paths:
            models = self.root / MODELS_DIR
            if not models.is_dir():
                raise ModelopsError(f"no {MODELS_DIR}/ folder in {self.root}",
                                    hint="run modelops from a models repository")
            folders = sorted(p for p in models.iterdir() if p.is_dir() and not p.name.startswith("."))
            if not folders:
                self.reporter.progress(f"no models under {MODELS_DIR}/")
            return folders
        folders = []
        for raw in paths:
            path = Path(raw)
            path = path if path.is_absolute() else Path.cwd() / path
            if path.name == MANIFEST:
                path = path.parent
            if not path.is_dir():
                raise ModelopsError(f"{raw}: no such model folder", hint="pass folders such as models/iris")
            if path.resolve() in (self.root.resolve(), (self.root / MODELS_DIR).resolve()):  # every model
                folders.extend(self.folders())
                continue
            if (path / MANIFEST).is_file() or path.parent.name == MODELS_DIR:
                folders.append(path)
                continue
            inside = [p for p in sorted(path.iterdir()) if (p / MANIFEST).is_file()]
            if not inside:
                raise ModelopsError(f"{raw}: not a model folder (no {MANIFEST} in it or in its subfolders)",
                                    hint=f"pass model folders such as {MODELS_DIR}/iris, or no path for every "
                                         f"model under {MODELS_DIR}/")
            folders.extend(inside)
        return sorted(set(folders))

    def manifest(self, folder: Path) -> LoadedManifest:
        """The manifest of `folder`, read and parsed once; raises (the same) ModelopsError when invalid."""
        key = folder.resolve()
        if key not in self._manifests:
            try:
                self._manifests[key] = load_manifest(folder, self.root)
            except ModelopsError as exc:
                self._manifests[key] = exc
        found = self._manifests[key]
        if isinstance(found, ModelopsError):
            raise found
        return found

    def digest(self, path: Path) -> str:
        """The sha256 of an artifact file or folder (`artifacts.digest`), computed once per path."""
        key = path.resolve()
        if key not in self._digests:
            self._digests[key] = artifacts.digest(path)
        return self._digests[key]

    def fetch(self, uri: str, folder: Path, sha256: str) -> Path:
        """A local, verified copy of an artifact (`artifacts.fetch`), fetched and verified once per command."""
        key = (uri, folder.resolve(), sha256)
        if key not in self._fetched:
            self._fetched[key] = artifacts.fetch(uri, folder, sha256, self.digest)
        return self._fetched[key]
