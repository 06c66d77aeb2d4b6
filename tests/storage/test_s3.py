"""Artifacts on an S3 API server (moto's, over HTTP, configured as for MinIO): validate fetches and verifies
them, apply registers them into an `mlflow server` whose artifacts live in the bucket, serve and an image
build fetch them; a wrong digest, a missing object, bad credentials and an unreachable endpoint each fail
with one message naming the URI."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from modelops.artifacts import digest
from tests.conftest import run_cli
from tests.processes import free_port
from tests.registry.helpers import Server, score
from tests.runner.conftest import Servers
from tests.storage.conftest import BUCKET, EXAMPLE, S3Server, iris_repo


@pytest.fixture(scope="module")
def applied(on_s3: dict, s3: S3Server, mlflow_on_s3: Server, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The repository, applied to the mlflow server on S3."""
    root = iris_repo(tmp_path_factory.mktemp("applied") / "repo", on_s3)
    done = run_cli("apply", "models/iris", cwd=root, env={**s3.env, "MLFLOW_TRACKING_URI": mlflow_on_s3.uri,
                                                          "MODELOPS_CACHE": str(root.parent / "cache")})
    assert done.code == 0, done.err
    return root


def test_validate_fetches_and_verifies_a_folder_and_a_file_on_s3(on_s3: dict, s3: S3Server, tmp_path: Path) -> None:
    root = iris_repo(tmp_path / "repo", on_s3)
    cache = tmp_path / "cache"
    with s3.checking_keys():
        done = run_cli("validate", "models/iris", "--format", "json", cwd=root,
                       env={**s3.env, "MODELOPS_CACHE": str(cache)})
    assert done.code == 0, done.out + done.err
    assert json.loads(done.out) == {"ok": True, "problems": []}
    for version, (_, sha256) in on_s3.items():  # fetched, verified and kept by digest
        (kept,) = (cache / "artifacts" / sha256).iterdir()
        assert digest(kept) == sha256, version
    assert s3.requests_naming("flow/iris/1.1.0/model.pkl") > 0  # from the store, over HTTP


def test_apply_registers_into_mlflow_whose_artifacts_are_on_s3(applied: Path, s3: S3Server, mlflow_on_s3: Server,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    stored = s3.keys("mlflow/")
    assert any(k.endswith("/MLmodel") for k in stored), stored  # the registered versions' files are in the bucket
    assert any(k.endswith("/model.pkl") for k in stored), stored
    # plain MLflow loads them, holding no storage credentials (the server hands out presigned URLs)
    assert score(mlflow_on_s3.uri, "iris", applied / "models" / "iris", monkeypatch) == [0, 1, 2]

    import mlflow
    import pandas as pd

    (single,) = mlflow.MlflowClient().search_model_versions("name = 'iris' and tags.`modelops.version` = '1.1.0'")
    model = mlflow.pyfunc.load_model(f"models:/iris/{single.version}")  # the version made of one file on S3
    assert list(model.predict(pd.DataFrame(EXAMPLE))) == [0, 1, 2]
    again = run_cli("apply", "models/iris", cwd=applied, env={**s3.env, "MLFLOW_TRACKING_URI": mlflow_on_s3.uri,
                                                             "MODELOPS_CACHE": str(applied.parent / "cache")})
    assert again.code == 0 and again.out == f"nothing to do: the registry at {mlflow_on_s3.uri} matches git\n"


def test_serve_fetches_from_the_registry_and_from_s3(applied: Path, s3: S3Server, mlflow_on_s3: Server,
                                                      tmp_path: Path) -> None:
    servers = Servers(tmp_path)
    try:
        registered = servers.start("models:/iris@production", env={"MLFLOW_TRACKING_URI": mlflow_on_s3.uri})
        answer = registered.post("/predict", json={"inputs": EXAMPLE})
        assert answer.status_code == 200, answer.text
        assert [row["species"] for row in answer.json()["outputs"]] == [0, 1, 2]
        folder = servers.start(str(applied / "models" / "iris"), "--env", "production", env=s3.env)
        answer = folder.post("/predict", json={"inputs": EXAMPLE})  # 1.0.0 (a folder) and its canary 1.1.0 (a file)
        assert answer.status_code == 200, answer.text
        assert [row["species"] for row in answer.json()["outputs"]] == [0, 1, 2]
    finally:
        servers.stop_all()


def test_an_image_build_fetches_its_artifact_from_s3(applied: Path, s3: S3Server, base_image: str,
                                                     tmp_path: Path) -> None:
    env = {**s3.env, "MODELOPS_BASE_IMAGE": base_image, "MODELOPS_CACHE": str(tmp_path / "cache")}
    built = run_cli("build", "models/iris", "--version", "1.1.0", "--format", "json", cwd=applied, env=env,
                    timeout=900)
    assert built.code == 0, built.err
    (image,) = json.loads(built.out)["images"]
    assert image["ref"].endswith("/iris:1.1.0")
    smoked = run_cli("smoke", image["ref"], "--format", "json", cwd=applied, timeout=300)
    assert smoked.code == 0, smoked.err
    assert json.loads(smoked.out)["smoke"][0]["served_by"] == "1.1.0"


def _wrong_digest(s3: S3Server, uri: str) -> tuple[str, str, dict]:
    return uri, "a" * 64, {}


def _missing(s3: S3Server, uri: str) -> tuple[str, str, dict]:
    return f"s3://{BUCKET}/flow/iris/none/model.pkl", "a" * 64, {}


def _missing_folder(s3: S3Server, uri: str) -> tuple[str, str, dict]:
    return f"s3://{BUCKET}/flow/iris/none/", "a" * 64, {}


def _bad_credentials(s3: S3Server, uri: str) -> tuple[str, str, dict]:
    return uri, "a" * 64, {"AWS_SECRET_ACCESS_KEY": "not-the-secret"}


def _unreachable(s3: S3Server, uri: str) -> tuple[str, str, dict]:
    return uri, "a" * 64, {"MLFLOW_S3_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}"}


@pytest.mark.parametrize(("case", "says"), [
    (_wrong_digest, "sha256 mismatch"),
    (_missing, "no such object"),
    (_missing_folder, "no such object"),
    (_bad_credentials, "refused the credentials"),
    (_unreachable, "unreachable"),
])
def test_a_broken_s3_artifact_is_one_clear_error_naming_the_uri(case: Callable, says: str, on_s3: dict,
                                                                 s3: S3Server, tmp_path: Path) -> None:
    uri, sha256, env = case(s3, on_s3["1.1.0"][0])
    root = iris_repo(tmp_path / "repo", {"1.1.0": (uri, sha256)})
    env = {**s3.env, **env, "MODELOPS_CACHE": str(tmp_path / "c")}
    with s3.checking_keys():
        done = run_cli("validate", "models/iris", cwd=root, env=env)
    assert done.code == 1, done.out + done.err
    assert "Traceback" not in done.err
    shown = done.out + done.err
    assert f"{uri!r}" in shown and says in shown, shown
    assert not list((tmp_path / "c" / "artifacts").glob("*/*"))  # nothing half-fetched is kept
