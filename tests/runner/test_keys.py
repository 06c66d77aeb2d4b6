"""Optional API keys against a real `modelops serve`: 401 JSON without or with a wrong key, the probes open."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.processes import free_port
from tests.runner.conftest import IRIS, PYTHONPATH, ROOT, Servers, asgi, request_counts

EXAMPLE = json.loads((IRIS / "example.json").read_text())["inputs"]
BODY = {"dataframe_records": EXAMPLE}
V2 = {"inputs": [{"name": c, "shape": [1], "datatype": "FP64", "data": [EXAMPLE[0][c]]} for c in EXAMPLE[0]]}


KEYS = "file-key-1\n\n  file-key-2  \n"


@pytest.fixture(scope="module")
def keys_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A mounted file of two keys (a blank line between)."""
    path = tmp_path_factory.mktemp("keys") / "keys"
    path.write_text(KEYS)
    return path


@pytest.fixture(scope="module")
def server(keys_file: Path) -> Iterator[httpx.Client]:
    """iris 1.0.0 with one key from MODELOPS_API_KEYS and the two of the keys file."""
    servers = Servers(keys_file.parent)
    yield servers.start(str(IRIS), "--version", "1.0.0",
                        env={"MODELOPS_API_KEYS": "env-key", "MODELOPS_API_KEYS_FILE": str(keys_file)})
    servers.stop_all()


@pytest.mark.parametrize("authorization", [None, "Bearer wrong", "Bearer", "Basic env-key", "env-key",
                                           "Bearer env-key-and-more", "Bearer file-key-"])
def test_a_missing_or_wrong_key_is_a_401_json_answer(server: httpx.Client, authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    key = ("1.0.0", "invocations", "401")
    before = request_counts(server, "modelops_requests_total").get(key, 0)
    answer = server.post("/invocations", json=BODY, headers=headers)
    assert answer.status_code == 401
    assert request_counts(server, "modelops_requests_total")[key] == before + 1  # counted (/metrics needs no key)
    assert answer.json() == {"error_code": "UNAUTHORIZED", "field": "Authorization",
                             "message": "a valid API key is required: send Authorization: Bearer <key>"}
    assert answer.headers["www-authenticate"] == "Bearer"
    assert answer.headers["x-model-version"] == "1.0.0"
    assert answer.headers["content-type"] == "application/json"


def test_every_configured_key_scores(server: httpx.Client) -> None:
    for key in ("env-key", "file-key-1", "file-key-2"):
        answer = server.post("/invocations", json=BODY, headers={"Authorization": f"Bearer {key}"})
        assert answer.status_code == 200, (key, answer.text)
        assert len(answer.json()["predictions"]) == len(EXAMPLE)
    v2 = server.post("/v2/models/iris/infer", json=V2, headers={"authorization": "bearer env-key"})
    assert v2.status_code == 200, v2.text


def test_metadata_routes_need_a_key_and_v2_answers_in_its_shape(server: httpx.Client) -> None:
    for path in ("/version", "/v2", "/v2/models/iris", "/v2/models/iris/ready"):
        assert server.get(path).status_code == 401, path
        assert server.get(path, headers={"Authorization": "Bearer file-key-2"}).status_code == 200, path
    refused = server.post("/v2/models/iris/infer", json=V2)
    assert refused.status_code == 401
    assert refused.json() == {"error": "a valid API key is required: send Authorization: Bearer <key>",
                              "field": "Authorization"}


def test_probes_metrics_and_docs_stay_open(server: httpx.Client) -> None:
    for path in ("/health", "/ready", "/ping", "/v2/health/live", "/v2/health/ready", "/metrics", "/docs",
                 "/docs/assets/swagger-ui.css", "/openapi.json"):
        assert server.get(path).status_code == 200, path


def test_the_openapi_document_declares_the_bearer_scheme(server: httpx.Client) -> None:
    document = server.get("/openapi.json").json()
    assert document["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http", "scheme": "bearer", "description": "An API key (MODELOPS_API_KEYS, MODELOPS_API_KEYS_FILE)"}
    paths = document["paths"]
    for path, method in (("/invocations", "post"), ("/predict", "post"), ("/version", "get"),
                         ("/v2/models/{name}/infer", "post")):
        assert paths[path][method]["security"] == [{"bearerAuth": []}], path
        assert "401" in paths[path][method]["responses"]
    for path in ("/health", "/ready", "/metrics", "/v2/health/live"):
        assert "security" not in paths[path]["get"], path


def test_without_keys_nothing_is_asked_nor_declared() -> None:
    with asgi(IRIS, version="1.0.0") as client:
        assert client.post("/invocations", json=BODY).status_code == 200
        assert "securitySchemes" not in client.get("/openapi.json").json()["components"]


@pytest.mark.parametrize(("content", "words", "workers"), [
    (None, "cannot read the API keys (FileNotFoundError)", "1"), ("\n  \n", "the file holds no key", "1"),
    (None, "cannot read the API keys (FileNotFoundError)", "2")])
def test_an_unreadable_or_empty_keys_file_stops_serve_before_it_binds(tmp_path: Path, content: str | None,
                                                                      words: str, workers: str) -> None:
    keys = tmp_path / "keys"
    if content is not None:
        keys.write_text(content)
    done = subprocess.run([sys.executable, "-m", "modelops", "serve", str(IRIS), "--version", "1.0.0",
                           "--workers", workers, "--port", str(free_port())], capture_output=True, text=True,
                          timeout=60, cwd=ROOT, check=False,
                          env={**os.environ, "PYTHONPATH": PYTHONPATH, "MODELOPS_API_KEYS_FILE": str(keys)})
    assert done.returncode != 0
    assert f"MODELOPS_API_KEYS_FILE={keys}: {words}" in done.stderr
    assert "Traceback" not in done.stderr


def _replace(path: Path, text: str) -> None:
    """Replace the file at once, as Kubernetes updates a mounted Secret (a new file swapped in)."""
    staged = path.with_name("staged")
    staged.write_text(text)
    staged.replace(path)


def _scores(server: httpx.Client, key: str) -> bool:
    return server.post("/invocations", json=BODY, headers={"Authorization": f"Bearer {key}"}).status_code == 200


def test_a_rotated_keys_file_is_taken_without_a_restart(server: httpx.Client, keys_file: Path) -> None:
    try:
        _replace(keys_file, "file-key-3\n")
        deadline = time.monotonic() + 10
        while _scores(server, "file-key-1") and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _scores(server, "file-key-1")  # the old file's key is gone
        assert _scores(server, "file-key-3") and _scores(server, "env-key")
        _replace(keys_file, "\n")  # a file with no key keeps the keys in force
        time.sleep(1.5)
        assert _scores(server, "file-key-3")
    finally:
        _replace(keys_file, KEYS)
        deadline = time.monotonic() + 10
        while not _scores(server, "file-key-1") and time.monotonic() < deadline:
            time.sleep(0.2)
    assert _scores(server, "file-key-1")
