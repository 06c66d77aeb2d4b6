"""The runner verifies each version before it loads: one that fails is never served (the process runs, /ready
is 503 saying why, scoring is refused); a signed model is served. Real `modelops serve` processes."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import httpx
import pytest

from modelops.artifacts import digest
from tests.conftest import run_cli
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


def test_a_model_folder_in_a_repository_cannot_bring_its_own_keys(tmp_path: Path, keys: dict[str, Path],
                                                                  servers: Servers) -> None:
    root = tmp_path / "repo"
    folder = signed_model(root, "signed", keys)
    FAILURES["untrusted"][0](folder, keys)
    (folder / "trusted-keys").mkdir()
    (folder / "trusted-keys" / "mine.pub").write_bytes(keys["untrusted"].with_suffix(".pub").read_bytes())
    client = servers.start(str(folder), "--env", "production", ready=False, env={"MODELOPS_ROOT": str(root)})
    assert _problem(client).status_code == 503 and "signed by an untrusted key" in _problem(client).json()["problem"]


def test_an_image_folder_verifies_with_the_keys_it_carries(tmp_path: Path, keys: dict[str, Path], servers: Servers,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """The model folder of a rendered image, outside any repository (as /model in the image): its
    trusted-keys/ make every version it serves verify; a changed byte (and digest) is refused."""
    root = tmp_path / "repo"
    signed_model(root, "signed", keys)
    shutil.copytree(Path(__file__).resolve().parents[2] / "templates", root / "templates")
    done = run_cli("render", "models/signed", "--env", "production", "--out", str(tmp_path / "context"), cwd=root)
    assert done.code == 0, done.err
    monkeypatch.delenv("MODELOPS_ROOT", raising=False)
    image = tmp_path / "image" / "model"
    shutil.copytree(tmp_path / "context" / "model", image)
    client = servers.start(str(image), ready=True)
    assert client.post("/invocations", json=ROWS).status_code == 200

    artifact = image / "artifacts" / "1.1.0" / "MLmodel"
    old = digest(image / "artifacts" / "1.1.0")
    artifact.write_text(artifact.read_text() + "\n")
    (image / "model.yaml").write_text((image / "model.yaml").read_text().replace(old, digest(artifact.parent)))
    client = servers.start(str(image), ready=False)
    problem = _problem(client).json()["problem"]
    assert problem.startswith("version 1.1.0 does not load: artifacts/1.1.0.sig: the artifact does not match its "
                              "signature (changed: MLmodel)"), problem
