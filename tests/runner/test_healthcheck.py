"""The image's HEALTHCHECK (also the Compose service's) asks the address the runner binds: MODELOPS_HOST,
as with `compose_network = host` and MODELOPS_HOST_IP set, or loopback when the runner binds every interface."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest

from modelops.images.context import HEALTHCHECK
from tests.processes import local_address
from tests.runner.conftest import IRIS, Servers


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    started = Servers(tmp_path_factory.mktemp("healthcheck"))
    yield started
    started.stop_all()


def healthcheck(host: str | None, port: int) -> int:
    """The HEALTHCHECK command's exit status, with the container's MODELOPS_HOST (or none) and PORT."""
    env = {k: v for k, v in os.environ.items() if k != "MODELOPS_HOST"} | {"PORT": str(port)}
    if host is not None:
        env["MODELOPS_HOST"] = host
    return subprocess.run([sys.executable, *HEALTHCHECK[1:]], env=env, capture_output=True, timeout=10).returncode


def test_a_runner_bound_to_one_address_is_healthy(servers: Servers) -> None:
    address = local_address()
    client = servers.start(str(IRIS), "--env", "staging", host=address)
    port = client.base_url.port
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), timeout=2):
        pass  # nothing on loopback: a check of 127.0.0.1 would fail
    assert healthcheck(address, port) == 0
    assert healthcheck(f" {address}\n", port) == 0


@pytest.fixture(scope="module")
def everywhere(servers: Servers) -> int:
    """The port of a runner bound to every interface, as the image's default MODELOPS_HOST=0.0.0.0 does."""
    return servers.start(str(IRIS), "--env", "staging", host="0.0.0.0").base_url.port


@pytest.mark.parametrize("host", [None, "", "0.0.0.0"])
def test_a_runner_bound_to_every_interface_is_asked_on_loopback(everywhere: int, host: str | None) -> None:
    assert healthcheck(host, everywhere) == 0
