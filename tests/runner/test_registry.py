"""`modelops serve models:/name@alias` against a real `mlflow server`: downloaded, loaded with pyfunc."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from tests.processes import free_port, stop_group
from tests.runner.conftest import IRIS

IRIS_ROWS = json.loads((IRIS / "example.json").read_text())["inputs"]


@pytest.fixture
def tracking_uri(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A real `mlflow server -w 1` with a SQLite store, for this test only."""
    port = free_port()
    mlflow = Path(sys.executable).parent / "mlflow"
    log = tmp_path / "mlflow.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [str(mlflow), "server", "-w", "1", "--host", "127.0.0.1", "--port", str(port),
             "--backend-store-uri", f"sqlite:///{tmp_path / 'mlflow.db'}",
             "--artifacts-destination", str(tmp_path / "artifacts")],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true",
                 "PATH": f"{mlflow.parent}{os.pathsep}{os.environ.get('PATH', '')}"})
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{uri}/health", timeout=2).status_code == 200:
                    break
            if process.poll() is not None or time.monotonic() > deadline:
                message = f"mlflow server did not start:\n{log.read_text()[-3000:]}"
                if os.environ.get("MODELOPS_REQUIRE_SERVICES") == "1":
                    pytest.fail(message)
                pytest.skip(message)
            time.sleep(0.3)
        monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
        monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
        yield uri
    finally:
        stop_group(process, timeout=30)


def test_a_registered_alias_is_served_with_its_signature(tracking_uri: str, serve: Callable,
                                                         iris_model: dict) -> None:
    import mlflow
    from mlflow.models import infer_signature

    rows = IRIS_ROWS
    frame = pd.DataFrame(rows)
    model = iris_model["1.1.0"]
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(model, name="model", registered_model_name="iris",
                                        serialization_format="cloudpickle", input_example=frame,
                                        signature=infer_signature(frame, model.predict(frame.values)))
    mlflow.MlflowClient().set_registered_model_alias("iris", "production", info.registered_model_version)

    client = serve("models:/iris@production")
    response = client.post("/invocations", json={"dataframe_records": rows})
    assert response.status_code == 200, response.text
    assert response.json() == {"predictions": model.predict(np.array(frame.values)).tolist()}
    assert response.headers["x-model-version"] == str(info.registered_model_version)
    spec = client.get("/openapi.json").json()
    assert list(spec["components"]["schemas"]["IrisInput"]["properties"]) == list(rows[0])
    refused = client.post("/invocations", json={"dataframe_records": [{**rows[0], "sepal_width": "wide"}]})
    assert refused.status_code == 400
    assert refused.json()["field"] == "dataframe_records[0].sepal_width"
    # the output schema is one tensor of shape [-1] (infer_signature on 1-D predictions): v2 names and types it
    vector = {"name": "predictions", "datatype": "INT64", "shape": [-1]}
    assert client.get("/v2/models/iris").json()["outputs"] == [vector]
    inputs = [{"name": name, "datatype": "FP64", "shape": [len(rows)], "data": [row[name] for row in rows]}
              for name in rows[0]]
    answer = client.post("/v2/models/iris/infer", json={"inputs": inputs}).json()
    assert answer["outputs"] == [{**vector, "shape": [len(rows)],
                                  "data": model.predict(np.array(frame.values)).tolist()}]


TYPED_ROWS = [{"sepal_length": 5.1, "sepal_width": 3, "petal_length": 1, "petal_width": 0.2},
              {"sepal_length": 6.7, "sepal_width": 3, "petal_length": 5, "petal_width": 2.3}]


def test_float_long_and_integer_columns_are_sent_to_mlflow_with_their_dtypes(tracking_uri: str, serve: Callable,
                                                                            iris_model: dict) -> None:
    import mlflow
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    model = iris_model["1.1.0"]
    signature = ModelSignature(inputs=Schema([
        ColSpec("float", "sepal_length"), ColSpec("long", "sepal_width"), ColSpec("integer", "petal_length"),
        ColSpec("double", "petal_width", required=False)]), outputs=Schema([ColSpec("long", "species")]))
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(model, name="model", registered_model_name="churn",
                                        serialization_format="cloudpickle", signature=signature)
    registry = mlflow.MlflowClient()
    registry.set_registered_model_alias("churn", "staging", info.registered_model_version)
    registry.set_model_version_tag("churn", info.registered_model_version, "modelops.version", "0.1.0")

    client = serve("models:/churn@staging")
    expected = model.predict(np.array([list(r.values()) for r in TYPED_ROWS], dtype=float)).tolist()
    invocations = client.post("/invocations", json={"dataframe_records": TYPED_ROWS})
    assert invocations.status_code == 200, invocations.text
    assert invocations.json() == {"predictions": expected}
    predict = client.post("/predict", json={"inputs": TYPED_ROWS})
    assert predict.status_code == 200, predict.text
    assert [row["species"] for row in predict.json()["outputs"]] == expected


def test_a_registered_version_is_named_by_its_semantic_version_and_alias(tracking_uri: str, serve: Callable,
                                                                          iris_model: dict) -> None:
    import mlflow

    with mlflow.start_run():
        info = mlflow.sklearn.log_model(iris_model["1.1.0"], name="model", registered_model_name="iris",
                                        serialization_format="cloudpickle", input_example=pd.DataFrame(IRIS_ROWS))
    registry = mlflow.MlflowClient()
    registry.set_registered_model_alias("iris", "staging", info.registered_model_version)
    registry.set_model_version_tag("iris", info.registered_model_version, "modelops.version", "1.1.0")

    client = serve("models:/iris@staging")
    assert client.get("/version").json() | {"runner": ""} == {
        "model": "iris", "environment": "staging", "version": "1.1.0", "canary": None, "canary_weight": 0,
        "shadow": [], "runner": ""}
    response = client.post("/predict", json={"inputs": IRIS_ROWS})
    assert response.headers["x-model-version"] == response.json()["version"] == "1.1.0"
    assert client.get("/openapi.json").json()["info"]["version"] == "1.1.0"
    assert client.get("/v2/models/iris").json()["versions"] == ["1.1.0"]


def test_a_registered_classifier_of_probabilities_is_served_one_column_per_class(tracking_uri: str,
                                                                                serve: Callable) -> None:
    """Logged by plain MLflow with pyfunc_predict_fn='predict_proba' and a tensor output schema: served as
    predict_proba, one double column per class named by its label (the model's classes_)."""
    import mlflow
    from mlflow.models import infer_signature
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    data = load_iris()
    frame = pd.DataFrame(IRIS_ROWS)
    model = LogisticRegression(max_iter=500).fit(data.data, data.target_names[data.target])
    want = model.predict_proba(frame.values)
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(model, name="model", registered_model_name="iris-proba",
                                        serialization_format="cloudpickle", pyfunc_predict_fn="predict_proba",
                                        signature=infer_signature(frame, want))
    mlflow.MlflowClient().set_registered_model_alias("iris-proba", "production", info.registered_model_version)
    client = serve("models:/iris-proba@production")
    names = ["p_setosa", "p_versicolor", "p_virginica"]
    outputs = client.post("/predict", json={"inputs": IRIS_ROWS}).json()["outputs"]
    assert [list(record) for record in outputs] == [names] * len(IRIS_ROWS)
    np.testing.assert_allclose([[r[n] for n in names] for r in outputs], want, rtol=1e-12, atol=0)
    np.testing.assert_allclose(client.post("/invocations", json={"dataframe_records": IRIS_ROWS}).json()["predictions"],
                               want, rtol=1e-12, atol=0)
    assert client.get("/v2/models/iris-proba").json()["outputs"] == [
        {"name": "probabilities", "datatype": "FP64", "shape": [-1, 3],
         "parameters": {"labels": ["setosa", "versicolor", "virginica"]}}]


@pytest.mark.parametrize("function", ["x", {"loader_module": "_modelops_0123456789ab.flavors.mlflow_entry",
                                            "config": "cfg.yaml"}, {"predict_fn": ["predict_proba"]}])
def test_an_mlmodel_of_another_shape_is_served_through_pyfunc(tmp_path: Path, function: object) -> None:
    from modelops.runner.registered import _loader

    assert _loader({"flavors": {"python_function": function}}, tmp_path, "models:/m@p") == \
        ("pyfunc", tmp_path, "predict")


def test_an_entry_whose_data_leaves_the_model_is_refused(tmp_path: Path) -> None:
    from modelops.errors import ModelopsError
    from modelops.runner.registered import _loader

    spec = {"flavors": {"python_function": {"loader_module": "_modelops_0123456789ab.flavors.mlflow_entry",
                                            "data": "../../etc/passwd",
                                            "config": {"flavor": "xgboost", "method": "predict_proba"}}}}
    with pytest.raises(ModelopsError, match="models:/m@p: its MLmodel's python_function data"):
        _loader(spec, tmp_path / "model", "models:/m@p")
