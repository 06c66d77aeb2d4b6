"""Fixtures of the flavor tests: the Docker engine and base image of tests/images, and a repository of one
model per native flavor for each test module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.flavors.native import make_repo
from tests.images.conftest import base_image, docker_client  # noqa: F401  (fixtures shared with tests/images)


@pytest.fixture(scope="module")
def native_repo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A repository with one model per native flavor (cwd and MODELOPS_ROOT set there for the module)."""
    root = make_repo(tmp_path_factory.mktemp("native") / "repo")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        patch.setenv("MODELOPS_ROOT", str(root))
        patch.setenv("MODELOPS_CACHE", str(root.parent / "cache"))
        yield root
