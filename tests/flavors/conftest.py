"""Fixtures of the flavor tests: the Docker engine and base image of tests/images."""

from tests.images.conftest import base_image, docker_client  # noqa: F401  (fixtures shared with tests/images)
