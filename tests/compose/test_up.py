"""The rendered Compose file brought up for real: Debian's docker-compose (v1) runs iris's staging image, pushed
to a registry so that it goes by digest, until it is healthy on /ready and scores the example; always taken down.

The Docker engine here has no bridge, so the file is rendered for host networking (`compose_network = host`)
on a free port of an address that is not loopback (MODELOPS_HOST_IP), where the healthcheck must reach it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT, run_cli
from tests.images import harness
from tests.images.conftest import base_image, docker_client  # noqa: F401  (fixtures shared with tests/images)
from tests.processes import free_port, local_address
from tests.registry.conftest import image_registry  # noqa: F401  (the session's registry)
from tests.registry.helpers import missing_service

COMPOSE = shutil.which("docker-compose")
KEY = "compose-test-key"
CACHE_TAG = "modelops-tests/compose-iris:cache"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, docker_client, base_image: str,  # noqa: F811
          image_registry) -> Iterator[dict]:  # noqa: F811
    """A repository with iris, whose staging image `modelops build --push` pushed: {root, env, image, refs}."""
    if COMPOSE is None:
        missing_service("docker-compose is not installed (scripts/setup.sh --system installs it)")
    root = tmp_path_factory.mktemp("compose-up") / "repo"
    shutil.copytree(ROOT / "models" / "iris", root / "models" / "iris")
    shutil.copytree(ROOT / "templates", root / "templates")
    shutil.copy(ROOT / "pyproject.toml", root / "pyproject.toml")
    env = {"MODELOPS_BASE_IMAGE": base_image, "MODELOPS_IMAGE_REGISTRY": f"{image_registry.address}/models",
           "MODELOPS_CACHE": str(root.parent / "cache"), "MODELOPS_COMPOSE_NETWORK": "host"}
    result = run_cli("build", "models/iris", "--env", "staging", "--push", "--format", "json", cwd=root, env=env,
                     timeout=900)
    assert result.code == 0, result.err
    (root / "images.json").write_text(result.out)
    (image,) = json.loads(result.out)["images"]
    yield {"root": root, "env": env, "image": image}
    import docker

    with contextlib.suppress(docker.errors.ImageNotFound):  # one fixed tag keeps the layers for the next run
        docker_client.images.get(image["ref"]).tag(*CACHE_TAG.split(":"))
    for tag in image["tags"]:
        with contextlib.suppress(docker.errors.ImageNotFound):
            harness.remove_image(docker_client, tag)


def _compose(folder: Path, project: str, *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([COMPOSE, "--project-name", project, *args], cwd=folder, capture_output=True, text=True,
                          timeout=timeout)


def _wait_healthy(client, container_id: str, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = client.api.inspect_container(container_id)["State"]
        if state["Health"]["Status"] == "healthy":
            return
        assert state["Running"] and state["Health"]["Status"] != "unhealthy", \
            f"{state}\n{client.api.logs(container_id).decode()[-3000:]}"
        time.sleep(1)
    pytest.fail(f"not healthy within {timeout} s:\n{client.api.logs(container_id).decode()[-3000:]}")


def _score(address: str, port: int, body: dict, key: str | None) -> tuple[int, dict]:
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {key}"} if key else {})}
    request = urllib.request.Request(f"http://{address}:{port}/invocations", data=json.dumps(body).encode(),
                                     headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_the_compose_file_comes_up_healthy_scores_and_goes_down(built, docker_client) -> None:  # noqa: F811
    root, image = built["root"], built["image"]
    rendered = run_cli("render", "--target", "compose", "models/iris", "--env", "staging", "--images",
                       "images.json", cwd=root, env=built["env"])
    assert rendered.code == 0 and "note:" not in rendered.err, rendered.err
    folder = root / "deploy-compose" / "staging"
    service = yaml.safe_load((folder / "compose.yaml").read_text())["services"]["iris"]
    pinned = f"{image['ref'].rsplit(':', 1)[0]}@{image['digest']}"
    assert service["image"] == pinned

    # What the operator puts beside the file: the API keys for the runner's user, the port in .env.
    keys = folder / "api-keys"
    keys.write_text(f"{KEY}\n")
    os.chown(keys, 10001, 10001)
    keys.chmod(0o400)
    # The runner listens on one address that is not loopback (so the healthcheck must ask it there).
    port, address = free_port(), local_address()
    (folder / ".env").write_text(f"MODELOPS_IRIS_PORT={port}\nMODELOPS_HOST_IP={address}\n")

    project = f"modelops-compose-test-{os.getpid()}"
    try:
        up = _compose(folder, project, "up", "-d")
        assert up.returncode == 0, up.stderr
        container_id = _compose(folder, project, "ps", "-q", "iris").stdout.strip()
        _wait_healthy(docker_client, container_id)
        listed = _compose(folder, project, "ps")
        assert "(healthy)" in listed.stdout, listed.stdout

        inspected = docker_client.api.inspect_container(container_id)
        host = inspected["HostConfig"]
        assert inspected["Config"]["Image"] == pinned
        assert (host["NetworkMode"], host["RestartPolicy"]["Name"], host["ReadonlyRootfs"]) == \
            ("host", "unless-stopped", True)
        assert (host["NanoCpus"], host["Memory"], host["MemoryReservation"]) == (2 * 10**9, 2 * 2**30, 2**30)
        assert inspected["Config"]["User"] == "10001:10001"
        variables = dict(v.split("=", 1) for v in inspected["Config"]["Env"])
        assert variables["MODELOPS_SHUTDOWN_GRACE_S"] == "40" and variables["MODELOPS_WORKERS"] == "2"
        assert KEY not in json.dumps(inspected["Config"])  # the key is only in the mounted file

        example = json.loads((root / "models" / "iris" / "example.json").read_text())
        status, answer = _score(address, port, {"dataframe_records": example["inputs"]}, KEY)
        assert status == 200, answer
        assert [row["species"] if isinstance(row, dict) else row for row in answer["predictions"]] == \
            [row["species"] for row in example["outputs"]]
        assert _score(address, port, {"dataframe_records": example["inputs"]}, None)[0] == 401

        # Nothing changed: rendering again writes nothing, and `up -d` keeps the running container.
        before = (folder / "compose.yaml").stat().st_mtime_ns
        again = run_cli("render", "--target", "compose", "models/iris", "--env", "staging", "--images",
                        "images.json", cwd=root, env=built["env"])
        assert again.code == 0 and (folder / "compose.yaml").stat().st_mtime_ns == before
        assert _compose(folder, project, "up", "-d").returncode == 0
        assert _compose(folder, project, "ps", "-q", "iris").stdout.strip() == container_id
    finally:
        down = _compose(folder, project, "down", "--remove-orphans")
    assert down.returncode == 0, down.stderr
    assert docker_client.containers.list(all=True, filters={"label": f"com.docker.compose.project={project}"}) == []
