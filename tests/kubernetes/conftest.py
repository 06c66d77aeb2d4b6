"""Fixtures for the Kubernetes rendering tests: a private copy of the repository and the CLI."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = ("MODELOPS_IMAGE_REGISTRY", "MODELOPS_GITOPS_REPOSITORY", "MODELOPS_GITOPS_BRANCH",
            "MODELOPS_COMPOSE_NETWORK")
MODELS = ("iris", "diabetes")  # the examples these tests are written about (A/B and shadow; one version)


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the example models iris and diabetes, templates and settings, as the working directory."""
    root = tmp_path / "repo"
    for name in MODELS:
        shutil.copytree(ROOT / "models" / name, root / "models" / name)
    shutil.copytree(ROOT / "templates", root / "templates")
    shutil.copy(ROOT / "pyproject.toml", root / "pyproject.toml")
    monkeypatch.chdir(root)
    monkeypatch.setenv("MODELOPS_ROOT", str(root))
    for name in SETTINGS:
        monkeypatch.delenv(name, raising=False)
    return root


@pytest.fixture
def modelops() -> Callable[..., subprocess.CompletedProcess]:
    """Run the real `modelops` command line in the current directory."""

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "modelops", *args], capture_output=True, text=True,
                              env=os.environ.copy(), timeout=120)

    return run


@pytest.fixture
def edit_manifest(repo: Path) -> Callable[..., Path]:
    """Change one model's manifest in the copy: `edit(model, change)` where change(data) edits the dict."""

    def edit(model: str, change: Callable[[dict], None]) -> Path:
        path = repo / "models" / model / "model.yaml"
        data = yaml.safe_load(path.read_text())
        change(data)
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        return path

    return edit
