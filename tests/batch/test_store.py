"""Inputs read from and outputs written to a store, through MLflow's artifact clients: a real `mlflow server`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from modelops import api
from modelops.errors import ModelopsError
from tests.batch.conftest import DIABETES, DIABETES_COLUMNS, IRIS_ROWS, diabetes_rows, read_csv, write_csv
from tests.registry.helpers import Server


@pytest.fixture(scope="module")
def artifact_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`mlflow server --serve-artifacts` (artifacts under work/artifacts) for the module."""
    work = tmp_path_factory.mktemp("mlflow-artifacts")
    server = Server(f"sqlite:///{work / 'mlflow.db'}", work)
    yield server
    server.stop()


def test_a_file_in_a_store_is_scored_into_the_store_whole(tmp_path: Path, artifact_server: Server,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", artifact_server.uri)
    stored = artifact_server.work / "artifacts" / "batch"
    stored.mkdir(parents=True)
    rows = diabetes_rows(250)
    rows[7][1] = "x"
    write_csv(stored / "rows.csv", DIABETES_COLUMNS, rows)
    scored = api.score(str(DIABETES), "mlflow-artifacts:/batch/rows.csv", "mlflow-artifacts:/batch/out/scored.csv",
                       rejects="mlflow-artifacts:/batch/out/rejects.jsonl", chunk_rows=100)
    assert (scored.rows, scored.rejected) == (249, 1)
    local = api.score(str(DIABETES), str(stored / "rows.csv"), str(tmp_path / "scored.csv"),
                      rejects=str(tmp_path / "rejects.jsonl"))
    assert read_csv(stored / "out" / "scored.csv") == read_csv(tmp_path / "scored.csv")  # uploaded, whole
    assert (stored / "out" / "rejects.jsonl").read_text() == (tmp_path / "rejects.jsonl").read_text()
    assert local.rows == 249

    with pytest.raises(ModelopsError) as caught:  # without rejects: fails, and nothing is uploaded
        api.score(str(DIABETES), "mlflow-artifacts:/batch/rows.csv", "mlflow-artifacts:/batch/failed/scored.csv")
    assert "row 8.sex" in caught.value.render()
    assert not (stored / "failed").exists()


def test_a_registered_models_uri_scores_as_serve_would_serve_it(tmp_path: Path, artifact_server: Server,
                                                                 monkeypatch: pytest.MonkeyPatch,
                                                                 iris_model: dict) -> None:
    import mlflow
    import numpy as np
    import pandas as pd
    from mlflow.models import infer_signature

    monkeypatch.setenv("MLFLOW_TRACKING_URI", artifact_server.uri)
    frame = pd.DataFrame(IRIS_ROWS)
    model = iris_model["1.1.0"]
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(model, name="model", registered_model_name="iris-batch",
                                        serialization_format="cloudpickle",
                                        signature=infer_signature(frame, model.predict(frame.values)))
    mlflow.MlflowClient().set_registered_model_alias("iris-batch", "production", info.registered_model_version)
    source = write_csv(tmp_path / "rows.csv", list(IRIS_ROWS[0]), [list(r.values()) for r in IRIS_ROWS])
    scored = api.score("models:/iris-batch@production", str(source), str(tmp_path / "scored.csv"))
    assert (scored.version, scored.environment) == (str(info.registered_model_version), "production")
    out = read_csv(tmp_path / "scored.csv")
    # the MLmodel's output is one tensor of shape [-1]: served (and scored) as the column `predictions`
    assert [int(r["predictions"]) for r in out] == model.predict(np.array(frame.values)).tolist()
    assert {r["model_version"] for r in out} == {str(info.registered_model_version)}
