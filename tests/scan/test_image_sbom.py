"""`scan --image REF`: the SBOM an image's io.modelops.sbom label names, read from a real Docker engine."""

from __future__ import annotations

import io
import json
import os
import tarfile
import uuid

import pytest

from modelops.scan.sbom import IMAGE_PATH, LABEL
from tests.images import harness
from tests.scan.conftest import SAFETY_DB


@pytest.fixture
def docker_client():
    docker = pytest.importorskip("docker")
    try:
        client = docker.from_env(timeout=10)
        client.ping()
    except docker.errors.DockerException as exc:
        if os.environ.get("MODELOPS_REQUIRE_SERVICES") == "1":
            pytest.fail(f"no Docker engine answers: {exc}")
        pytest.skip(f"no Docker engine answers: {exc}")
    yield client
    client.close()


def build(client, files: dict[str, bytes], dockerfile: str) -> str:
    """A scratch image (no base image needed) from `files`; removed by the caller."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as context:
        for name, data in {**files, "Dockerfile": dockerfile.encode()}.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            context.addfile(info, io.BytesIO(data))
    buffer.seek(0)
    tag = f"modelops-test-sbom:{uuid.uuid4().hex[:12]}"
    client.images.build(fileobj=buffer, custom_context=True, tag=tag, rm=True, network_mode="none")
    return tag


def test_an_image_is_scanned_through_its_labelled_sbom(tmp_path, modelops, environment, docker_client):
    saved = tmp_path / "sbom.cdx.json"
    modelops("scan", "--db", str(SAFETY_DB), "--environment", str(environment), "--save-sbom", str(saved))
    tag = build(docker_client, {"sbom.cdx.json": saved.read_bytes()},
                f"FROM scratch\nCOPY sbom.cdx.json {IMAGE_PATH}\nLABEL {LABEL}={IMAGE_PATH}\n")
    try:
        done = modelops("scan", "--db", str(SAFETY_DB), "--image", tag, "--format", "json")
        report = json.loads(done.stdout)
        assert report["targets"] == [f"image {tag}"]
        assert [(f["package"], f["advisory"]) for f in report["findings"]] == [("jinja2", "64227")]
        assert done.returncode == 1
        assert docker_client.containers.list(all=True, filters={"ancestor": tag}) == []
    finally:
        harness.remove_image(docker_client, tag)


def test_an_image_without_the_label_is_refused(modelops, docker_client):
    tag = build(docker_client, {"x": b"x"}, "FROM scratch\nCOPY x /x\n")
    try:
        done = modelops("scan", "--image", tag)
        assert done.returncode == 1
        assert f"error: image {tag} has no {LABEL} label naming its SBOM" in done.stderr
    finally:
        harness.remove_image(docker_client, tag)
