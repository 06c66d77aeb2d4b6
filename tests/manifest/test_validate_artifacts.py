"""Artifacts are verified, fetched through MLflow's clients, and loaded in a sandboxed child process."""

from __future__ import annotations

import functools
import http.server
import pickle
import re
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelops.artifacts import digest
from tests.conftest import EXAMPLES, run_cli

IRIS = "models/iris/model.yaml"


def replace_artifact(repo: Path, payload: bytes, version: str = "1.0.0") -> None:
    """Put `payload` as the pickled model of an iris version and pin its new digest."""
    folder = repo / "models/iris/artifacts" / version
    old = digest(folder)
    (folder / "model.pkl").write_bytes(payload)
    manifest = repo / IRIS
    manifest.write_text(manifest.read_text().replace(old, digest(folder)))


class Hostile:
    """Unpickling it runs `code`: what an attacker's artifact does."""

    def __init__(self, code: str) -> None:
        self.code = code

    def __reduce__(self):
        return (exec, (self.code,))


def test_the_examples_load_and_score(repo: Path) -> None:
    result = run_cli("validate", cwd=repo)
    assert (result.code, result.out.strip()) == (0, f"{len(EXAMPLES)} model(s) valid"), result.err


def test_unloadable_artifact(repo: Path) -> None:
    replace_artifact(repo, b"this is not a pickle")
    result = run_cli("validate", "models/iris", cwd=repo)
    assert result.code == 1
    assert "models/iris/model.yaml:20: versions[0].artifact: version 1.0.0: does not load as sklearn" in result.err
    assert "Traceback" not in result.err


def test_without_an_example_each_version_still_loads(repo: Path) -> None:
    manifest = repo / IRIS
    manifest.write_text(manifest.read_text().replace("example: example.json\n", ""))
    assert run_cli("validate", "models/iris", cwd=repo).code == 0
    replace_artifact(repo, b"this is not a pickle")
    result = run_cli("validate", "models/iris", cwd=repo)
    assert result.code == 1
    assert "models/iris/model.yaml:19: versions[0].artifact: version 1.0.0: does not load as sklearn" in result.err
    assert "Traceback" not in result.err


def test_hostile_artifact_cannot_read_secrets(repo: Path) -> None:
    code = "raise RuntimeError(repr(dict(__import__('os').environ)))"
    replace_artifact(repo, pickle.dumps(Hostile(code)))
    result = run_cli("validate", "models/iris", cwd=repo,
                     env={"AWS_SECRET_ACCESS_KEY": "s3cr3t-value", "MLFLOW_TRACKING_PASSWORD": "s3cr3t-value"})
    assert result.code == 1
    assert "does not load as sklearn: RuntimeError" in result.err
    assert "s3cr3t-value" not in result.err + result.out


def test_hanging_artifact_is_stopped(repo: Path) -> None:
    replace_artifact(repo, pickle.dumps(Hostile("import time; time.sleep(600)")))
    result = run_cli("validate", "models/iris", cwd=repo, env={"MODELOPS_LOAD_TIMEOUT": "3"}, timeout=60)
    assert result.code == 1
    assert "loading and scoring took longer than 3s" in result.err


def test_crashing_artifact_is_reported(repo: Path) -> None:
    replace_artifact(repo, pickle.dumps(Hostile("import os; os._exit(7)")))
    result = run_cli("validate", "models/iris", cwd=repo)
    assert result.code == 1
    assert "the loader crashed: exit code 7" in result.err


def test_output_must_fit_the_signature(repo: Path) -> None:
    manifest = repo / IRIS
    manifest.write_text(manifest.read_text().replace(
        "    - {name: species, type: long}\n",
        "    - {name: species, type: long}\n    - {name: confidence, type: double}\n"))
    (repo / "models/iris/example.json").write_text('{"inputs": [{"sepal_length": 5.1, "sepal_width": 3.5, '
                                                   '"petal_length": 1.4, "petal_width": 0.2}]}')
    result = run_cli("validate", "models/iris", cwd=repo)
    assert result.code == 1
    assert "returned 1 output column(s); the signature declares 2" in result.err


def test_pyfunc_flavor_loads_an_mlflow_model_directory(repo: Path) -> None:
    manifest = repo / IRIS
    manifest.write_text(manifest.read_text().replace("flavor: sklearn", "flavor: pyfunc"))
    requirements = repo / "models/iris/requirements.txt"
    sklearn_pins = requirements.read_text()
    requirements.write_text(sklearn_pins + "mlflow==3.17.2\n")
    result = run_cli("validate", "models/iris", cwd=repo)
    assert result.code == 1
    assert result.err.startswith(
        "models/iris/requirements.txt:4: requirements: mlflow installs the whole of MLflow in the image (server,"
        " UI, SQL); flavor pyfunc needs only mlflow.pyfunc\n  hint: pin mlflow-skinny==3.17.2 instead (and pandas)\n"
        "models/iris/requirements.txt: requirements: flavor pyfunc needs pandas"), result.err
    requirements.write_text(sklearn_pins + "mlflow-skinny==3.17.2\npandas==3.1.1\n")
    result = run_cli("validate", "models/iris", cwd=repo)
    assert result.code == 0, result.err


@pytest.fixture
def http_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A real HTTP file server on 127.0.0.1 serving a folder."""
    folder = tmp_path / "served"
    folder.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", folder
    server.shutdown()
    server.server_close()


def test_remote_artifact_is_fetched_and_verified(repo: Path, http_server: tuple[str, Path]) -> None:
    url, served = http_server
    local = repo / "models/diabetes/artifacts/1.0.0/model.skops"
    served.joinpath("model.skops").write_bytes(local.read_bytes())
    manifest = repo / "models/diabetes/model.yaml"
    manifest.write_text(manifest.read_text().replace("uri: artifacts/1.0.0/model.skops",
                                                     f"uri: {url}/model.skops"))
    assert run_cli("validate", "models/diabetes", "--offline", cwd=repo).code == 0
    result = run_cli("validate", "models/diabetes", cwd=repo)
    assert result.code == 0, result.err

    served.joinpath("model.skops").write_bytes(b"tampered")
    manifest.write_text(manifest.read_text().replace(f"{url}/model.skops", f"{url}/model.skops?v=2")
                        .replace(digest(local), "a" * 64))
    result = run_cli("validate", "models/diabetes", cwd=repo)
    assert result.code == 1
    assert (f"versions[0].artifact.sha256: sha256 mismatch: the artifact downloaded from '{url}/model.skops?v=2' "
            "has the digest") in result.err


def test_unreachable_artifact(repo: Path) -> None:
    manifest = repo / "models/diabetes/model.yaml"
    manifest.write_text(manifest.read_text().replace("uri: artifacts/1.0.0/model.skops",
                                                     "uri: http://127.0.0.1:9/model.skops"))
    result = run_cli("validate", "models/diabetes", cwd=repo)
    assert result.code == 1
    assert re.search(r"versions\[0\]\.artifact\.uri: cannot fetch 'http://127.0.0.1:9/model.skops'", result.err)
    assert "Traceback" not in result.err


def test_tree_digest_is_what_sha256sum_gives(repo: Path) -> None:
    folder = repo / "models/iris/artifacts/1.0.0"
    listing = subprocess.run("find . -type f | LC_ALL=C sort | sed 's|^\\./||' | xargs sha256sum | sha256sum",
                             shell=True, cwd=folder, capture_output=True, text=True, check=True).stdout.split()[0]
    result = run_cli("digest", str(folder), cwd=repo)
    assert result.out.split()[0] == listing == digest(folder)


def test_predictions_must_equal_the_expected_outputs(repo: Path) -> None:
    example = repo / "models/iris/example.json"
    example.write_text(example.read_text().replace('"species": 2', '"species": 1'))
    result = run_cli("validate", "models/iris", cwd=repo)
    assert result.code == 1
    assert "version 1.0.0: row 2: output 'species' is 2, the example expects 1" in result.err
