"""The runner verifies each version before it loads: one that fails is never served (the process runs, /ready
is 503 saying why, scoring is refused); a signed model is served. Real `modelops serve` processes."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from tests.runner.conftest import Servers
from tests.signing.conftest import FAILURES, signed_model

ROWS = {"dataframe_records": [{"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}]}


def _problem(client: httpx.Client, timeout: float = 60) -> httpx.Response:
    """/ready once the server is done loading (ready, or not for good)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = client.get("/ready")
        if answer.json()["problem"] != "the model is loading":
            return answer
        time.sleep(0.1)
    raise AssertionError("the server is still loading")


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Servers:
    started = Servers(tmp_path_factory.mktemp("signed-servers"))
    yield started
    started.stop_all()


def test_a_signed_model_is_verified_then_served(tmp_path: Path, keys: dict[str, Path], servers: Servers) -> None:
    root = tmp_path / "repo"
    folder = signed_model(root, "signed", keys)
    client = servers.start(str(folder), "--env", "production", env={"MODELOPS_ROOT": str(root)})
    assert client.get("/ready").status_code == 200
    answer = client.post("/invocations", json=ROWS)
    assert answer.status_code == 200 and len(answer.json()["predictions"]) == 1


@pytest.mark.parametrize("failure", sorted(FAILURES))
def test_a_version_that_fails_verification_is_never_served(tmp_path: Path, keys: dict[str, Path], servers: Servers,
                                                           failure: str) -> None:
    root = tmp_path / "repo"
    folder = signed_model(root, "signed", keys)
    spoil, words = FAILURES[failure]
    spoil(folder, keys)
    words = words.replace("version 1.0.0 is not signed (artifacts/1.0.0.sig is missing)",
                          "the version is not signed (no such file)")
    client = servers.start(str(folder), "--env", "production", ready=False, env={"MODELOPS_ROOT": str(root)})
    ready = _problem(client)
    assert ready.status_code == 503 and ready.json()["ready"] is False
    problem = ready.json()["problem"]
    assert problem.startswith("version 1.0.0 does not load: artifacts/1.0.0.sig: "), problem
    assert words in problem and "(hint: " in problem
    refused = client.post("/invocations", json=ROWS)
    assert refused.status_code == 503 and refused.json()["message"].startswith("not ready: version 1.0.0 ")
    assert client.get("/health").json()["status"] == "ok"  # the process runs and says why
