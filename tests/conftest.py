"""Fixtures shared by every test: a throwaway copy of the repository and a way to run the real CLI."""

from __future__ import annotations

import contextlib
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


_MLFLOW_ENVIRONMENT = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME")


@contextlib.contextmanager
def _mlflow_forgotten() -> Iterator[None]:
    """In-process calls of the registry adapter set MLflow's process-wide URIs (as the CLI must), and plain
    MLflow calls its active experiment, which MLflow also copies into the environment: afterwards, put the
    environment back and forget them, so that what comes next (and its child processes) uses its own."""
    before = {name: os.environ.get(name) for name in _MLFLOW_ENVIRONMENT}
    yield
    for name, value in before.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    if "mlflow" in sys.modules:
        from mlflow.tracking import fluent
        from mlflow.tracking._model_registry import utils as registry_utils
        from mlflow.tracking._tracking_service import utils as tracking_utils

        tracking_utils._tracking_uri = None
        registry_utils._registry_uri = None
        fluent._active_experiment_id = None


@pytest.fixture(autouse=True)
def _forget_mlflow_uris() -> Iterator[None]:
    """After each test (its own fixtures included)."""
    with _mlflow_forgotten():
        yield


@pytest.fixture(autouse=True, scope="module")
def _forget_mlflow_uris_of_the_module() -> Iterator[None]:
    """After each module: what its module-scoped fixtures set (e.g. a registry filled with plain MLflow)."""
    with _mlflow_forgotten():
        yield
