"""Fixtures for the registry: temporary model repositories, one real `mlflow server` per session, and for
`apply --build`, the Docker engine and base image of tests/images plus a `docker-registry`."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.images import harness
from tests.images.conftest import base_image, docker_client  # noqa: F401  (fixtures shared with tests/images)
from tests.registry.helpers import Server, copy_model, missing_service


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


@pytest.fixture(scope="session")
def image_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[harness.Registry]:
    """Debian's docker-registry on a free 127.0.0.1 port, for the session."""
    try:
        registry = harness.Registry(tmp_path_factory.mktemp("image-registry"))
    except harness.Unavailable as exc:
        missing_service(str(exc))
    yield registry
    registry.close()
