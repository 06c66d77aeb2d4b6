"""The production shape: `mlflow server` on PostgreSQL (the backend store) with its artifacts on S3; apply
registers into it and `serve models:/…` serves from it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.registry.helpers import Server, score
from tests.registry.test_postgres import postgres  # noqa: F401  (the fixture)
from tests.runner.conftest import Servers
from tests.storage.conftest import BUCKET, EXAMPLE, NO_JOBS, S3Server, iris_repo


def test_mlflow_on_postgresql_with_s3_artifacts(postgres: str, s3: S3Server, on_s3: dict,  # noqa: F811
                                                tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    server = Server(postgres, tmp_path, artifacts=f"s3://{BUCKET}/production", env={**s3.env, **NO_JOBS})
    servers = Servers(tmp_path)
    try:
        root = iris_repo(tmp_path / "repo", on_s3)
        env = {**s3.env, "MLFLOW_TRACKING_URI": server.uri, "MODELOPS_CACHE": str(tmp_path / "cache")}
        applied = run_cli("apply", "models/iris", cwd=root, env=env)
        assert applied.code == 0, applied.err
        again = run_cli("apply", "models/iris", cwd=root, env=env)
        assert again.code == 0 and again.out == f"nothing to do: the registry at {server.uri} matches git\n"
        assert any(k.endswith("/MLmodel") for k in s3.keys("production/"))  # the versions' files, in the bucket
        assert score(server.uri, "iris", root / "models" / "iris", monkeypatch) == [0, 1, 2]  # plain MLflow

        served = servers.start("models:/iris@production", env={"MLFLOW_TRACKING_URI": server.uri})  # no S3 keys
        answer = served.post("/predict", json={"inputs": EXAMPLE})
        assert answer.status_code == 200, answer.text
        assert [row["species"] for row in answer.json()["outputs"]] == [0, 1, 2]
    finally:
        servers.stop_all()
        server.stop()
