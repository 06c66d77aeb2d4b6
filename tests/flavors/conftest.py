"""The flavor tests build images with the image tests' Docker engine and base image."""

from tests.images.conftest import base_image, docker_client  # noqa: F401  (fixtures shared with tests/images)
