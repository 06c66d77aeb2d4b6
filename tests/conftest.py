"""Fixtures shared by every test: a throwaway copy of the repository and a way to run the real CLI."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# the example models of the repository (models/<name>/model.yaml)
EXAMPLES = sorted(p.parent.name for p in (ROOT / "models").glob("*/model.yaml"))


@dataclass
class Result:
    code: int
    out: str
    err: str


def run_cli(*args: str, cwd: Path, env: dict | None = None, timeout: int = 300) -> Result:
    """Run `modelops ARGS` in a child process, as a user would."""
    full_env = {**os.environ, "MODELOPS_ROOT": str(cwd), **(env or {})}
    done = subprocess.run([sys.executable, "-m", "modelops", *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout, check=False)
    return Result(done.returncode, done.stdout, done.stderr)


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the repository's models/ and templates/ in a temporary folder, with the cwd set there."""
    target = tmp_path / "repo"
    shutil.copytree(ROOT / "models", target / "models")
    shutil.copytree(ROOT / "templates", target / "templates")
    shutil.copyfile(ROOT / "pyproject.toml", target / "pyproject.toml")
    monkeypatch.chdir(target)
    monkeypatch.setenv("MODELOPS_ROOT", str(target))
    monkeypatch.setenv("MODELOPS_CACHE", str(tmp_path / "cache"))
    return target


@pytest.fixture(autouse=True)
def _forget_mlflow_uris() -> Iterator[None]:
    """In-process calls of the registry adapter set MLflow's process-wide URIs (as the CLI must), which
    MLflow also copies into the environment: forget them after each test, so that the next test's
    MLFLOW_TRACKING_URI is the one in force."""
    names = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")
    before = {name: os.environ.get(name) for name in names}
    yield
    for name, value in before.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    if "mlflow" in sys.modules:
        from mlflow.tracking._model_registry import utils as registry_utils
        from mlflow.tracking._tracking_service import utils as tracking_utils

        tracking_utils._tracking_uri = None
        registry_utils._registry_uri = None
