"""Fixtures for the registry: temporary model repositories and one real `mlflow server` per session."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.registry.helpers import Server, copy_model


@pytest.fixture
def make_repo(tmp_path: Path) -> Callable[..., Path]:
    """make_repo(iris="iris-a", ...): a repository in tmp_path holding copies of the example models."""

    def make(**models: str) -> Path:
        root = tmp_path / "repo"
        (root / "models").mkdir(parents=True, exist_ok=True)
        for name, source in (models or {"iris": "iris", "diabetes": "diabetes"}).items():
            copy_model(root, source, name)
        return root

    return make


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`mlflow server` (SQLite backend, artifacts served) for the session; tests use their own model names."""
    work = tmp_path_factory.mktemp("mlflow-server")
    server = Server(f"sqlite:///{work / 'mlflow.db'}", work)
    yield server
    server.stop()
