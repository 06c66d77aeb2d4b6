"""Fixtures for the Compose tests: the repository copy and the CLI of the Kubernetes tests (iris, diabetes)."""

from tests.kubernetes.conftest import edit_manifest, modelops, repo  # noqa: F401  (the same fixtures)
