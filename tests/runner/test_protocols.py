"""Scoring protocols at the ASGI level: every input form scores like the model in-process; bad input is a 4xx."""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated

import numpy as np
import pytest
from fastapi import APIRouter, BackgroundTasks, FastAPI, Request, Response
from fastapi import Path as FastPath
from fastapi.testclient import TestClient

from modelops.runner import fastlane
from modelops.runner.app import create_app
from modelops.runner.http import RequestError
from modelops.runner.loading import resolve
from modelops.runner.runtime import RunnerSettings
from tests.runner.conftest import IRIS, asgi, make_model, request_counts, wait_ready
from tests.runner.fakes import EchoesInput, ReturnsObjects

EXAMPLE = json.loads((IRIS / "example.json").read_text())["inputs"]
NAMES = list(EXAMPLE[0])
ROWS = [[r[n] for n in NAMES] for r in EXAMPLE]


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    with asgi(IRIS, version="1.1.0", max_body_bytes=20_000) as client:
        yield client


def _v2(rows: list[list]) -> dict:
    return {"id": "r1", "inputs": [{"name": n, "shape": [len(rows)], "datatype": "FP64",
                                    "data": [r[j] for r in rows]} for j, n in enumerate(NAMES)]}


FORMS = {
    "dataframe_split": {"dataframe_split": {"columns": NAMES, "data": ROWS}},
    "dataframe_split, index, columns reordered": {"dataframe_split": {
        "index": [0, 1, 2], "columns": NAMES[::-1], "data": [r[::-1] for r in ROWS]}},
    "dataframe_split without columns": {"dataframe_split": {"data": ROWS}},
    "dataframe_records": {"dataframe_records": EXAMPLE},
    "instances as records": {"instances": EXAMPLE},
    "inputs as columns": {"inputs": {n: [r[n] for r in EXAMPLE] for n in NAMES}},
    "inputs as positional rows": {"inputs": ROWS},
}


@pytest.mark.parametrize("form", FORMS)
def test_every_mlflow_form_scores_like_the_model(client: TestClient, iris_model: dict, form: str) -> None:
    expected = iris_model["1.1.0"].predict(np.array(ROWS)).tolist()
    response = client.post("/invocations", json=FORMS[form])
    assert response.status_code == 200, response.text
    assert response.json() == {"predictions": expected}
    assert response.headers["x-model-version"] == "1.1.0"


def test_csv_predict_and_v2_score_like_the_model(client: TestClient, iris_model: dict) -> None:
    expected = iris_model["1.1.0"].predict(np.array(ROWS)).tolist()
    csv_body = ",".join(NAMES) + "\n" + "\n".join(",".join(map(str, r)) for r in ROWS) + "\n"
    csv = client.post("/invocations", content=csv_body, headers={"Content-Type": "text/csv"})
    assert csv.json() == {"predictions": expected}
    with_bom = client.post("/invocations", content="\ufeff" + csv_body, headers={"Content-Type": "text/csv"})
    assert with_bom.json() == {"predictions": expected}  # as spreadsheets export it
    typed = client.post("/predict", json={"inputs": EXAMPLE})
    assert typed.json() == {"outputs": [{"species": v} for v in expected], "version": "1.1.0"}
    v2 = client.post("/v2/models/iris/infer", json=_v2(ROWS))
    assert v2.json() == {"model_name": "iris", "model_version": "1.1.0", "id": "r1", "outputs": [
        {"name": "species", "datatype": "INT64", "shape": [3], "data": expected}]}
    assert client.get("/v2/models/iris").json()["inputs"][0] == {"name": "sepal_length", "datatype": "FP64",
                                                                  "shape": [-1]}


def _split(data: object, columns: object = NAMES) -> dict:
    return {"dataframe_split": {"columns": columns, "data": data}}


JSON = {"Content-Type": "application/json"}
BAD = [  # (what, path, body, headers, status, field, words in the message)
    ("no Content-Type", "/invocations", json.dumps(_split(ROWS)), {}, 415, "Content-Type", "no Content-Type"),
    ("wrong Content-Type", "/invocations", json.dumps(_split(ROWS)), {"Content-Type": "text/plain"}, 415,
     "Content-Type", "'text/plain' is not supported"),
    ("compressed body", "/invocations", json.dumps(_split(ROWS)), {**JSON, "Content-Encoding": "gzip"}, 415,
     "Content-Encoding", "'gzip' is not supported"),
    ("malformed JSON", "/invocations", '{"dataframe_split": ', JSON, 400, "body", "malformed JSON"),
    ("not an object", "/invocations", "[1, 2]", JSON, 400, "body", "expected a JSON object"),
    ("empty batch", "/invocations", json.dumps(_split([])), JSON, 400, "dataframe_split.data", "empty"),
    ("unknown column", "/invocations", json.dumps(_split(ROWS, [*NAMES[:3], "petal_wdth"])), JSON, 400,
     "dataframe_split.columns[3]", "did you mean 'petal_width'"),
    ("missing column", "/invocations", json.dumps(_split([r[:3] for r in ROWS], NAMES[:3])), JSON, 400,
     "dataframe_split.columns", "missing: petal_width"),
    ("string for a double", "/invocations", json.dumps(_split([[5.1, "3.5", 1.4, 0.2]])), JSON, 400,
     "dataframe_split.data[0][1]", "'3.5' is not a number (double)"),
    ("boolean for a double", "/invocations", json.dumps(_split([[5.1, True, 1.4, 0.2]])), JSON, 400,
     "dataframe_split.data[0][1]", "True is not a number"),
    ("null in a required column", "/invocations",
     json.dumps({"dataframe_records": [{**EXAMPLE[0], "petal_width": None}]}), JSON, 400,
     "dataframe_records[0].petal_width", "required"),
    ("extra column in a record", "/invocations",
     json.dumps({"dataframe_records": [{**EXAMPLE[0], "colour": "blue"}]}), JSON, 400,
     "dataframe_records[0].colour", "unknown column 'colour'"),
    ("short row", "/invocations", json.dumps(_split([[1.0, 2.0]])), JSON, 400, "dataframe_split.data[0]",
     "expected 4 values"),
    ("params", "/invocations", json.dumps({**_split(ROWS), "params": {"a": 1}}), JSON, 400, "params",
     "no parameters"),
    ("two forms", "/invocations", json.dumps({**_split(ROWS), "instances": ROWS}), JSON, 400, "body",
     "exactly one of"),
    ("CSV with a bad value", "/invocations", ",".join(NAMES) + "\n1,2,x,4\n", {"Content-Type": "text/csv"},
     400, "csv.line[2].petal_length", "'x' is not double"),
    ("CSV with a bad value after a blank line", "/invocations", ",".join(NAMES) + "\n1,2,3,4\n\n1,2,x,4\n",
     {"Content-Type": "text/csv"}, 400, "csv.line[4].petal_length", "'x' is not double"),
    ("body over the limit", "/invocations", json.dumps(_split(ROWS * 400)), JSON, 413, "body", "limit"),
    ("predict: missing column", "/predict", json.dumps({"inputs": [{"sepal_length": 1.0}]}), JSON, 400,
     "inputs[0].sepal_width", "Field required"),
    ("predict: wrong type", "/predict", json.dumps({"inputs": [{**EXAMPLE[0], "sepal_width": "wide"}]}), JSON,
     400, "inputs[0].sepal_width", "valid number"),
    ("predict: empty batch", "/predict", json.dumps({"inputs": []}), JSON, 400, "inputs", "at least 1"),
    ("v2: wrong datatype", "/v2/models/iris/infer",
     json.dumps({"inputs": [{**_v2(ROWS)["inputs"][0], "datatype": "BYTES"}]}), JSON, 400, "inputs[0].datatype",
     "send FP64"),
    ("v2: shape mismatch", "/v2/models/iris/infer",
     json.dumps({"inputs": [{**_v2(ROWS)["inputs"][0], "shape": [7]}]}), JSON, 400, "inputs[0].shape",
     "does not match"),
    ("v2: integer beyond float64", "/v2/models/iris/infer",
     json.dumps({"inputs": [{**_v2(ROWS[:1])["inputs"][0], "data": [10**400]}, *_v2(ROWS[:1])["inputs"][1:]]}), JSON,
     400, "inputs[0].data[0]", "out of the float64 range"),
    ("v2: inputs of unequal length", "/v2/models/iris/infer",
     json.dumps({"inputs": [_v2(ROWS)["inputs"][0], *_v2(ROWS[:1])["inputs"][1:]]}), JSON, 400, "inputs[1].shape",
     "every input needs the same number of rows"),
    ("v2: unknown model", "/v2/models/rose/infer", json.dumps(_v2(ROWS)), JSON, 404, "name", "no model 'rose'"),
    ("v2: version not loaded", "/v2/models/iris/versions/1.0.0/infer", json.dumps(_v2(ROWS)), JSON, 404,
     "version", "not loaded"),
]


@pytest.mark.parametrize(("path", "body", "headers", "status", "field", "words"), [b[1:] for b in BAD],
                         ids=[b[0] for b in BAD])
def test_bad_input_gets_a_4xx_naming_the_field(client: TestClient, path: str, body: str, headers: dict,
                                               status: int, field: str, words: str) -> None:
    response = client.post(path, content=body.encode(), headers=headers)
    assert response.status_code == status, response.text
    data = response.json()
    assert data["field"] == field
    assert words in (data.get("message") or data.get("error"))
    assert "Traceback" not in response.text
    assert response.headers["x-model-version"] == "1.1.0"


def test_model_refusing_an_input_is_a_422_not_a_500(client: TestClient) -> None:
    # Finite as a double, infinite as the float32 the random forest casts to.
    response = client.post("/invocations", json=_split([[1e300, 1.0, 1.0, 1.0]]))
    assert response.status_code == 422
    assert "cannot score this input" in response.json()["message"]


def test_every_response_names_a_version(client: TestClient) -> None:
    for path in ("/health", "/ready", "/ping", "/version", "/metrics", "/docs", "/nowhere", "/openapi.json"):
        assert client.get(path).headers["x-model-version"] == "1.1.0", path
    missing = client.get("/nowhere")
    assert missing.status_code == 404
    assert missing.json()["error_code"] == "NOT_FOUND"
    assert client.get("/version").json()["version"] == "1.1.0"


def test_openapi_shows_the_signature_and_the_example(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    row = spec["components"]["schemas"]["IrisInput"]
    assert row["required"] == NAMES
    assert row["properties"]["sepal_length"]["type"] == "number"
    assert row["additionalProperties"] is False
    request = spec["components"]["schemas"]["IrisPredictRequest"]
    assert request["examples"] == [{"inputs": EXAMPLE}]
    body = spec["paths"]["/invocations"]["post"]["requestBody"]["content"]
    assert set(body) == {"application/json", "text/csv"}
    assert body["application/json"]["example"]["dataframe_split"]["columns"] == NAMES


def test_a_version_that_cannot_load_makes_a_server_that_says_why(tmp_path) -> None:
    folder = tmp_path / "iris"
    shutil.copytree(IRIS, folder)
    (folder / "artifacts" / "1.1.0" / "model.pkl").write_bytes(b"not a model")
    with asgi(folder, ready=False) as client:
        for _ in range(100):
            state = client.get("/ready")
            if state.json()["problem"] != "the model is loading":
                break
            time.sleep(0.05)
        assert state.status_code == 503
        assert "version 1.1.0 does not load: sha256 mismatch" in state.json()["problem"]
        assert client.get("/health").status_code == 200
        refused = client.post("/invocations", json=_split(ROWS))
        assert refused.status_code == 503
        assert "sha256 mismatch" in refused.json()["message"]
        assert "modelops_ready{model=\"iris\"} 0.0" in client.get("/metrics").text


def test_a_model_crash_answers_500_without_echoing_the_request(tmp_path, caplog: pytest.LogCaptureFixture) -> None:
    folder = make_model(tmp_path / "toy", {"1.0.0": EchoesInput()}, {"production": {"version": "1.0.0"}})
    with asgi(folder) as client:
        response = client.post("/invocations", json={"dataframe_split": {"data": [[123.456, 789.25]]}})
    assert response.status_code == 500
    message = response.json()["message"]
    assert message.startswith("the model failed") and "RuntimeError" in message
    assert "123.456" not in response.text and "\n" not in message and len(message) <= 200
    assert "123.456" in caplog.text and "details details" in caplog.text


def test_v2_version_ready_and_a_document_without_unsent_answers(client: TestClient) -> None:
    assert client.get("/v2/models/iris/versions/1.1.0/ready").json() == {"ready": True}
    missing = client.get("/v2/models/iris/versions/9.9.9/ready")
    assert missing.status_code == 404 and missing.json()["field"] == "version"
    spec = client.get("/openapi.json").json()
    for path in ("/v2/models/{name}", "/v2/models/{name}/ready", "/v2/models/{name}/versions/{version}",
                 "/v2/models/{name}/versions/{version}/ready"):
        assert "422" not in spec["paths"][path]["get"]["responses"], path
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    assert list(spec["paths"]["/metrics"]["get"]["responses"]["200"]["content"]) == ["text/plain"]



async def _takes_a_response(request: Request, response: Response) -> Response: ...
async def _takes_background_tasks(request: Request, tasks: BackgroundTasks) -> Response: ...
async def _takes_an_aliased_name(request: Request, name: Annotated[str, FastPath(alias="model")]) -> Response: ...
def _not_a_coroutine(request: Request) -> Response: ...


@pytest.mark.parametrize(("path", "endpoint"), [("/score", _takes_a_response), ("/score", _takes_background_tasks),
                                                ("/score/{model}", _takes_an_aliased_name),
                                                ("/score", _not_a_coroutine)])
def test_the_fast_lane_refuses_a_route_it_cannot_call_as_fastapi_would(path: str, endpoint: Callable) -> None:
    """FastAPI would call these with more than the request and the path, or in a thread: refused at build time."""
    api = APIRouter()
    api.post(path)(endpoint)
    with pytest.raises(RuntimeError, match=re.escape(path)):
        fastlane.install(FastAPI(exception_handlers={RequestError: _not_a_coroutine}), [api])


SAME_ANSWERS = [  # method, path, body, headers: every outcome of a scoring path, and the paths next to them
    ("POST", "/invocations", json.dumps(_split(ROWS)), JSON),
    ("POST", "/invocations?format=pandas-split", "sepal_length\n1\n", {"Content-Type": "text/csv"}),
    ("POST", "/predict", json.dumps({"inputs": EXAMPLE}), JSON),
    ("POST", "/predict", json.dumps({"inputs": [{"sepal_length": "wide"}]}), JSON),
    ("POST", "/v2/models/ir%69s/infer", json.dumps(_v2(ROWS)), JSON),
    ("POST", "/v2/models/iris/versions/1.1.0/infer", json.dumps(_v2(ROWS)), JSON),
    ("POST", "/v2/models/iris/versions/1.0.0/infer", json.dumps(_v2(ROWS)), JSON),
    ("POST", "/v2/models/ir is/infer", json.dumps(_v2(ROWS)), JSON),
    ("POST", "/v2/models/iris/infer", "", JSON),
    ("POST", "/invocations", json.dumps(_split(ROWS)), {}),
    ("POST", "/invocations", "x" * 30_000, JSON),
    ("POST", "/invocations", json.dumps(_split([[1e300, 1.0, 1.0, 1.0]])), JSON),
    ("POST", "/invocations/", json.dumps(_split(ROWS)), JSON),
    ("POST", "/v2/models/iris/infer/", json.dumps(_v2(ROWS)), JSON),
    ("GET", "/invocations", "", {}),
    ("PUT", "/predict", "{}", JSON),
    ("OPTIONS", "/v2/models/iris/infer", "", {}),
    ("POST", "/v2/models/iris", "{}", JSON),
]


@contextlib.contextmanager
def _routed(target: Path, version: str | None = None, **settings: object) -> Iterator[TestClient]:
    """The app with its scoring routes served through FastAPI's routing: the fast lane taken out."""
    app = create_app(resolve(str(target), None, version), RunnerSettings(**settings))
    app.user_middleware[:] = [m for m in app.user_middleware if m.cls is not fastlane.FastLane]
    with TestClient(app, raise_server_exceptions=False) as client:
        wait_ready(client)
        yield client


def _answer_alike(lane: TestClient, routed: TestClient, requests: list[tuple[str, str, str, dict]]) -> None:
    """Status, headers and body alike for each request, and the same answers counted."""
    before = request_counts(lane, "modelops_requests_total")
    for method, path, body, headers in requests:
        sent = {"content": body.encode(), "headers": {**headers, "X-Request-ID": "same"}, "follow_redirects": False}
        got, expected = lane.request(method, path, **sent), routed.request(method, path, **sent)
        assert (got.status_code, got.headers, got.content) == (expected.status_code, expected.headers,
                                                               expected.content), (method, path)
    counted = request_counts(lane, "modelops_requests_total")
    assert {k: v - before.get(k, 0) for k, v in counted.items() if v != before.get(k)} == request_counts(
        routed, "modelops_requests_total")


def test_the_fast_lane_answers_as_fastapis_routing(client: TestClient, tmp_path: Path) -> None:
    with _routed(IRIS, "1.1.0", max_body_bytes=20_000) as routed:
        _answer_alike(client, routed, SAME_ANSWERS)
    folder = make_model(tmp_path / "toy", {"1.0.0": ReturnsObjects()}, {"production": {"version": "1.0.0"}})
    crashes = [("POST", "/invocations", json.dumps({"inputs": [[1.0, 2.0]]}), JSON),
               ("POST", "/v2/models/toy/infer", json.dumps({"inputs": [
                   {"name": n, "shape": [1], "datatype": "FP64", "data": [1.0]} for n in "xy"]}), JSON)]
    with asgi(folder) as lane, _routed(folder) as routed:  # an answer that fails after the route: a 500 alike
        _answer_alike(lane, routed, crashes)
