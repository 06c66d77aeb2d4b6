"""Services for the image tests: a Docker engine, the local base image and two registries (one with auth).

Where a service cannot run here these tests skip, saying why; with MODELOPS_REQUIRE_SERVICES=1 they fail.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.images import harness

USER, PASSWORD = "ci-bot", "s3cret-for-tests"


def _unavailable(reason: str) -> None:
    if os.environ.get("MODELOPS_REQUIRE_SERVICES") == "1":
        pytest.fail(f"required service unavailable: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def docker_client() -> Iterator[object]:
    """A client of a running Docker engine (started here, and stopped after the session, if need be)."""
    try:
        started = harness.engine()
    except harness.Unavailable as exc:
        _unavailable(str(exc))
    import docker

    client = docker.from_env(timeout=600)
    yield client
    client.close()
    if started is not None:
        harness.stop(started)


@pytest.fixture(scope="session")
def base_image(docker_client: object) -> str:
    try:
        return harness.base_image()
    except harness.Unavailable as exc:
        _unavailable(str(exc))


@pytest.fixture(scope="session")
def registries(tmp_path_factory: pytest.TempPathFactory, docker_client: object) -> Iterator[dict]:
    """{"plain": Registry, "auth": Registry} on free 127.0.0.1 ports."""
    opened = {}
    try:
        opened["plain"] = harness.Registry(tmp_path_factory.mktemp("registry-plain"))
        opened["auth"] = harness.Registry(tmp_path_factory.mktemp("registry-auth"), USER, PASSWORD)
    except harness.Unavailable as exc:
        for registry in opened.values():
            registry.close()
        _unavailable(str(exc))
    yield opened
    for registry in opened.values():
        registry.close()


@pytest.fixture
def image_repo(repo: Path, base_image: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A repository copy whose images build on the local base image."""
    monkeypatch.setenv("MODELOPS_BASE_IMAGE", base_image)
    return repo
