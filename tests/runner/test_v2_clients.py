"""The v2 protocol as real clients speak it, numbers no protocol can hold, and the counting of every answer.

Two `modelops serve` processes for the module: models/iris in production (a 10 % canary and a shadow),
which Triton's clients (`tritonclient.http`, sync and aio) and KServe's `InferenceRESTClient` (from
.venv-clients, where scripts/setup.sh installs it) score with JSON and with binary tensors, agreeing
with /invocations; and a toy model (x: double, word: string) split 50/50 between two versions that
fail on x == 13, for the counting of 500s and refusals.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import Iterator
from itertools import count
from pathlib import Path

import httpx
import numpy as np
import pytest
import tritonclient.http as triton
import tritonclient.http.aio as triton_aio
from sklearn.datasets import load_iris
from tritonclient.utils import InferenceServerException

from modelops.runner.routing import bucket
from tests.runner.conftest import IRIS, ROOT, Servers, asgi, make_model, request_counts
from tests.runner.fakes import ReturnsObjects, Spells

NAMES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
ROWS = load_iris().data[::5].tolist()  # 30 rows, every species
CLIENTS_PYTHON = ROOT / ".venv-clients" / "bin" / "python"
KSERVE_CLIENT = Path(__file__).with_name("kserve_client.py")
VERSION_OF_KEY = {"1.0.0": lambda key: bucket(key) >= 1000, "1.1.0": lambda key: bucket(key) < 1000}  # iris: 10 %


def key_for(version: str, split: dict = VERSION_OF_KEY) -> str:
    """A request key that the canary split sends to `version`."""
    return next(key for i in count() if split[version](key := f"user-{i}"))


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, httpx.Client]]:
    folder = tmp_path_factory.mktemp("v2-clients")
    toy = make_model(folder / "toy", {"1.0.0": Spells(0), "1.1.0": Spells(100)},
                     {"production": {"version": "1.0.0", "canary": {"version": "1.1.0", "weight": 50}}},
                     inputs=[{"name": "x", "type": "double"}, {"name": "word", "type": "string"}])
    started = Servers(folder)
    try:
        yield {"iris": started.start(str(IRIS), "--env", "production"), "toy": started.start(str(toy))}
    finally:
        started.stop_all()


@pytest.fixture(scope="module")
def iris(servers: dict[str, httpx.Client]) -> httpx.Client:
    return servers["iris"]


@pytest.fixture(scope="module")
def toy(servers: dict[str, httpx.Client]) -> httpx.Client:
    return servers["toy"]


def invocations(client: httpx.Client, key: str, rows: list = ROWS, columns: list = NAMES) -> tuple[str, list]:
    """(the version, the predictions) of /invocations for `rows` sent with request key `key`."""
    answer = client.post("/invocations", json={"dataframe_split": {"columns": columns, "data": rows}},
                         headers={"X-Request-Key": key})
    assert answer.status_code == 200, answer.text
    return answer.headers["x-model-version"], answer.json()["predictions"]


def triton_inputs(module: object, binary: bool, rows: list = ROWS) -> list:
    columns = np.array(rows, dtype=np.float64).T
    inputs = []
    for name, values in zip(NAMES, columns, strict=True):
        tensor = module.InferInput(name, [len(values)], "FP64")  # type: ignore[attr-defined]
        tensor.set_data_from_numpy(values, binary_data=binary)
        inputs.append(tensor)
    return inputs


# JSON in and out; binary in and out (asked per output); the client's default: binary in, binary_data_output
MODES = {"json": (False, False), "binary": (True, True), "default": (True, None)}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("version", ["1.0.0", "1.1.0"])
def test_tritonclient_scores_like_invocations(iris: httpx.Client, version: str, mode: str) -> None:
    key = key_for(version)
    assert invocations(iris, key)[0] == version
    expected = invocations(iris, key)[1]
    binary_in, binary_out = MODES[mode]
    outputs = None if binary_out is None else [triton.InferRequestedOutput("species", binary_data=binary_out)]
    client = triton.InferenceServerClient(f"127.0.0.1:{iris.base_url.port}")
    try:
        assert client.is_model_ready("iris")
        assert "binary_tensor_data" in client.get_server_metadata()["extensions"]
        result = client.infer("iris", triton_inputs(triton, binary_in), outputs=outputs, request_id=f"r-{mode}",
                              headers={"X-Request-Key": key})
    finally:
        client.close()
    assert result.as_numpy("species").tolist() == expected
    response = result.get_response()
    assert response["id"] == f"r-{mode}"
    assert response["model_name"] == "iris" and response["model_version"] == version
    output = response["outputs"][0]
    assert ("data" not in output) == (mode != "json")
    assert output.get("parameters", {}).get("binary_data_size") == (None if mode == "json" else 8 * len(ROWS))


@pytest.mark.parametrize("mode", MODES)
def test_tritonclient_aio_scores_like_invocations(iris: httpx.Client, mode: str) -> None:
    key = key_for("1.1.0")
    version, expected = invocations(iris, key)
    binary_in, binary_out = MODES[mode]
    outputs = None if binary_out is None else [triton_aio.InferRequestedOutput("species", binary_data=binary_out)]

    async def infer() -> triton_aio.InferResult:
        client = triton_aio.InferenceServerClient(f"127.0.0.1:{iris.base_url.port}")
        try:
            assert await client.is_server_ready()
            return await client.infer("iris", triton_inputs(triton_aio, binary_in), outputs=outputs,
                                      request_id="aio", headers={"X-Request-Key": key})
        finally:
            await client.close()

    result = asyncio.run(infer())
    assert result.as_numpy("species").tolist() == expected
    assert result.get_response()["model_version"] == version and result.get_response()["id"] == "aio"
    assert ("data" not in result.get_output("species")) == (mode != "json")


def test_tritonclient_with_a_pinned_version_and_its_refusals(iris: httpx.Client, iris_model: dict) -> None:
    client = triton.InferenceServerClient(f"127.0.0.1:{iris.base_url.port}")
    try:
        result = client.infer("iris", triton_inputs(triton, True), model_version="1.2.0")
        assert result.as_numpy("species").tolist() == iris_model["1.2.0"].predict(np.array(ROWS)).tolist()
        assert result.get_response()["model_version"] == "1.2.0"
        with pytest.raises(InferenceServerException) as unknown:
            client.infer("iris", triton_inputs(triton, True), outputs=[triton.InferRequestedOutput("colour")])
        assert unknown.value.status() == "400"
        assert "unknown output 'colour'; the outputs are: species" in unknown.value.message()
    finally:
        client.close()


def kserve(client: httpx.Client, model: str, mode: str, request: dict) -> dict:
    assert CLIENTS_PYTHON.is_file(), "KServe's client is missing: run ./scripts/setup.sh (it makes .venv-clients)"
    done = subprocess.run([str(CLIENTS_PYTHON), str(KSERVE_CLIENT), str(client.base_url), model, mode],
                          input=json.dumps(request), capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.parametrize("mode", ["json", "binary"])
@pytest.mark.parametrize("version", ["1.0.0", "1.1.0"])
def test_kserve_rest_client_scores_like_invocations(iris: httpx.Client, version: str, mode: str) -> None:
    key = key_for(version)
    expected = invocations(iris, key)[1]
    answer = kserve(iris, "iris", mode, {"columns": NAMES, "rows": ROWS, "id": "k-1",
                                          "headers": {"X-Request-Key": key}})
    assert answer["outputs"] == {"species": expected}
    assert answer["id"] == "k-1"
    headers = answer["headers"]
    assert headers["x-model-version"] == version
    if mode == "binary":  # the outputs came back as binary data after the JSON
        assert headers["content-type"] == "application/octet-stream"
        assert int(headers["inference-header-content-length"]) + 8 * len(ROWS) == int(headers["content-length"])
    else:
        assert headers["content-type"] == "application/json"


def test_kserve_rest_client_hears_why_it_is_refused(iris: httpx.Client) -> None:
    answer = kserve(iris, "iris", "binary", {"columns": NAMES, "rows": ROWS[:2], "id": "k-2", "outputs": ["colour"]})
    assert answer["status"] == 400 and "unknown output 'colour'; the outputs are: species" in answer["message"]
    answer = kserve(iris, "rose", "json", {"columns": NAMES, "rows": ROWS[:2], "id": "k-3"})
    assert answer["status"] == 404 and "no model 'rose'" in answer["message"]


TOY_SPLIT = {"1.0.0": lambda key: bucket(key) >= 5000, "1.1.0": lambda key: bucket(key) < 5000}
WORDS = ["héllo", "ab", ""]


@pytest.mark.parametrize("binary", [False, True])
def test_bytes_tensors_reach_a_string_column_as_text(toy: httpx.Client, binary: bool) -> None:
    key = key_for("1.1.0", TOY_SPLIT)
    rows = [[1.0, word] for word in WORDS]
    assert invocations(toy, key, rows, ["x", "word"]) == ("1.1.0", [105, 102, 100])
    x, word = triton.InferInput("x", [3], "FP64"), triton.InferInput("word", [3, 1], "BYTES")
    x.set_data_from_numpy(np.ones(3), binary_data=binary)
    word.set_data_from_numpy(np.array(WORDS, dtype=object).reshape(3, 1), binary_data=binary)
    client = triton.InferenceServerClient(f"127.0.0.1:{toy.base_url.port}")
    try:
        result = client.infer("toy", [x, word], headers={"X-Request-Key": key})
    finally:
        client.close()
    assert result.as_numpy("label").tolist() == [105, 102, 100]


def _v2(rows: list = ROWS[:3], datatype: str = "FP64", **first: object) -> dict:
    """A v2 JSON body for iris; `first` overrides fields of the first input tensor."""
    tensors = [{"name": n, "shape": [len(rows)], "datatype": datatype, "data": [r[j] for r in rows]}
               for j, n in enumerate(NAMES)]
    tensors[0].update(first)
    return {"inputs": tensors}


def _binary(body: dict, raw: bytes) -> tuple[bytes, dict]:
    text = json.dumps(body).encode()
    return text + raw, {"Inference-Header-Content-Length": str(len(text)), "Content-Type": "application/octet-stream"}


FP64_ROWS = np.array(ROWS[:3], dtype="<f8").T
BINARY_INPUTS = [{"name": n, "shape": [3], "datatype": "FP64", "parameters": {"binary_data_size": 24}} for n in NAMES]
INFER = "/v2/models/iris/infer"
BAD = [  # (what, path, body (a dict is JSON), headers, status, field, words)
    ("FP64 data with a string", INFER, _v2(data=[5.1, "a", 1.0]), {}, 400, "inputs[0].data[1]",
     "'a' is not a number (double)"),
    ("a 400-digit integer", INFER, _v2(data=[10**400, 1.0, 1.0]), {}, 400, "inputs[0].data[0]",
     "an integer of 401 digits is out of the float64 range"),
    ("beyond INT32", INFER, _v2(datatype="INT32", data=[2**40, 1, 1]), {}, 400, "inputs[0].data[0]",
     "1099511627776 is out of the INT32 range"),
    ("a 400-digit integer as INT64", INFER, _v2(datatype="INT64", data=[1, 10**400, 1]), {}, 400,
     "inputs[0].data[1]", "an integer of 401 digits is out of the INT64 range"),
    ("a fraction in INT64", INFER, _v2(datatype="INT64", data=[1, 2, 1.5]), {}, 400, "inputs[0].data[2]",
     "1.5 is not an integer (INT64)"),
    ("beyond FP32", INFER, _v2(datatype="FP32", data=[1e39, 1.0, 1.0]), {}, 400, "inputs[0].data[0]",
     "out of the FP32 range"),
    ("nested [n, 1] data with a string", INFER, _v2(shape=[3, 1], data=[[1.0], [2.0], ["x"]]), {}, 400,
     "inputs[0].data[2][0]", "'x' is not a number"),
    ("shape [3, 2]", INFER, _v2(shape=[3, 2], data=[1.0] * 6), {}, 400, "inputs[0].shape", "[n] or [n, 1]"),
    ("shape [4] for 3 values", INFER, _v2(shape=[4]), {}, 400, "inputs[0].shape", "does not match the 3 value(s)"),
    ("a datatype for another column type", INFER, _v2(datatype="BOOL"), {}, 400, "inputs[0].datatype",
     "does not fit column type double; send FP64"),
    ("an unknown datatype", INFER, _v2(datatype="FP8"), {}, 400, "inputs[0].datatype", "not a datatype"),
    ("model_name contradicting the URL", INFER, {**_v2(), "model_name": "rose"}, {}, 400, "model_name",
     "contradicts the URL"),
    ("model_version on the routed URL", INFER, {**_v2(), "model_version": "1.2.0"}, {}, 400, "model_version",
     "/v2/models/iris/versions/1.2.0/infer"),
    ("model_version contradicting the URL", "/v2/models/iris/versions/1.1.0/infer",
     {**_v2(), "model_version": "1.2.0"}, {}, 400, "model_version", "contradicts the URL, which names '1.1.0'"),
    ("an unknown requested output", INFER, {**_v2(), "outputs": [{"name": "colour"}]}, {}, 400, "outputs[0].name",
     "unknown output 'colour'"),
    ("classification", INFER, {**_v2(), "outputs": [{"name": "species", "parameters": {"classification": 2}}]},
     {}, 400, "outputs[0].parameters.classification", "not supported"),
    ("binary_data_output not a boolean", INFER, {**_v2(), "parameters": {"binary_data_output": "yes"}}, {}, 400,
     "parameters.binary_data_output", "true or false"),
    ("binary data without the header", INFER, {"inputs": BINARY_INPUTS}, {}, 400,
     "inputs[0].parameters.binary_data_size", "Inference-Header-Content-Length"),
    ("a header longer than the body", INFER, b'{"inputs": []}',
     {"Inference-Header-Content-Length": "99", "Content-Type": "application/octet-stream"}, 400,
     "Inference-Header-Content-Length", "expected the length in bytes of the JSON"),
    ("binary data of the wrong size", INFER, *_binary({"inputs": BINARY_INPUTS}, FP64_ROWS.tobytes()[:-8]), 400,
     "inputs[3].parameters.binary_data_size", "runs past the end of the body"),
    ("binary data left over", INFER, *_binary({"inputs": BINARY_INPUTS}, FP64_ROWS.tobytes() + b"\0"), 400,
     "Inference-Header-Content-Length", "the inputs' binary_data_size add up to 96"),
    ("text/plain", INFER, json.dumps(_v2()).encode(), {"Content-Type": "text/plain"}, 415, "Content-Type",
     "'text/plain' is not supported"),
    # numbers no protocol can hold, on the other two protocols
    ("/invocations: a 400-digit integer", "/invocations", {"dataframe_split": {"columns": NAMES, "data": [
        [1.0, 10**400, 1.0, 1.0]]}}, {}, 400, "dataframe_split.data[0][1]", "an integer of 401 digits"),
    ("/invocations: 1e400", "/invocations", b'{"inputs": [[1.0, 1.0, 1e400, 1.0]]}', {}, 400, "inputs[0][2]",
     "inf is not a number (double)"),
    ("/predict: a 400-digit integer", "/predict", {"inputs": [dict(zip(NAMES, [10**400, 1.0, 1.0, 1.0],
                                                                          strict=True))]},
     {}, 400, "inputs[0].sepal_length", "finite number"),
]


@pytest.mark.parametrize(("path", "body", "headers", "status", "field", "words"), [b[1:] for b in BAD],
                         ids=[b[0] for b in BAD])
def test_bad_v2_input_and_unholdable_numbers_get_a_4xx_naming_the_field(
        iris: httpx.Client, path: str, body: dict | bytes, headers: dict, status: int, field: str, words: str) -> None:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    answer = iris.post(path, content=content, headers={"Content-Type": "application/json", **headers})
    assert answer.status_code == status, answer.text
    data = answer.json()
    assert data["field"] == field
    assert words in (data.get("error") or data.get("message")), data
    assert answer.headers["x-model-version"] == "1.0.0"  # refused before routing: the primary's


ROUNDED = [[round(v) for v in row] for row in ROWS[:3]]
NESTED = {"inputs": [{**t, "shape": [3, 1], "data": [[v] for v in t["data"]] if j % 2 else t["data"]}
                     for j, t in enumerate(_v2()["inputs"])]}  # [n, 1]: odd columns nested, even ones flat
JSON_V2 = json.dumps(_v2()).encode()


@pytest.mark.parametrize(("body", "headers", "rows"), [
    (JSON_V2, {}, ROWS[:3]),
    (JSON_V2, {"Content-Type": "application/octet-stream"}, ROWS[:3]),
    (json.dumps(NESTED).encode(), {"Content-Type": "application/json"}, ROWS[:3]),
    (json.dumps(_v2(ROUNDED, "INT64")).encode(), {}, ROUNDED),
    (json.dumps(_v2(datatype="FP32")).encode(), {}, ROWS[:3]),
    (*_binary({"inputs": BINARY_INPUTS}, FP64_ROWS.tobytes()), ROWS[:3]),
], ids=["no Content-Type: JSON, as Triton reads it", "octet-stream without binary data", "[n, 1] nested and flat",
        "INT64 tensors for double columns", "FP32 tensors for double columns", "binary inputs, JSON output"])
def test_what_v2_clients_send_is_scored(iris: httpx.Client, body: bytes, headers: dict, rows: list) -> None:
    key = key_for("1.0.0")
    answer = iris.post(INFER, content=body, headers={**headers, "X-Request-Key": key})
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/json"
    assert answer.json()["outputs"][0]["data"] == invocations(iris, key, rows)[1]


def _delta(before: dict, after: dict) -> dict:
    return {k: v - before.get(k, 0) for k, v in after.items() if v != before.get(k, 0)}


def test_500s_are_counted_under_the_version_that_failed_and_name_it(toy: httpx.Client) -> None:
    before = (request_counts(toy, "modelops_requests_total"),
              request_counts(toy, "modelops_request_duration_seconds_count"))
    for version in ("1.0.0", "1.1.0"):
        key = {"X-Request-Key": key_for(version, TOY_SPLIT)}
        answers = [toy.post("/invocations", json={"inputs": [[13.0, "a"]]}, headers=key),
                   toy.post("/predict", json={"inputs": [{"x": 13.0, "word": "a"}]}, headers=key),
                   toy.post("/v2/models/toy/infer", headers=key, json={"inputs": [
                       {"name": "x", "shape": [1], "datatype": "FP64", "data": [13.0]},
                       {"name": "word", "shape": [1], "datatype": "BYTES", "data": ["a"]}]}),
                   toy.post("/invocations", json={"inputs": [[1.0, "abc"]]}, headers=key)]
        assert [a.status_code for a in answers] == [500, 500, 500, 200]
        assert all(a.headers["x-model-version"] == version for a in answers)
        assert "the model failed (RuntimeError)" in answers[0].json()["message"]
    after = (request_counts(toy, "modelops_requests_total"),
             request_counts(toy, "modelops_request_duration_seconds_count"))
    expected = {(v, e, "500"): 1.0 for v in ("1.0.0", "1.1.0") for e in ("invocations", "predict", "v2")}
    expected.update({(v, "invocations", "200"): 1.0 for v in ("1.0.0", "1.1.0")})
    assert _delta(before[0], after[0]) == expected
    assert _delta(before[1], after[1]) == {("1.0.0", "invocations", ""): 2.0, ("1.0.0", "predict", ""): 1.0,
                                           ("1.0.0", "v2", ""): 1.0, ("1.1.0", "invocations", ""): 2.0,
                                           ("1.1.0", "predict", ""): 1.0, ("1.1.0", "v2", ""): 1.0}


REFUSED = [  # (method, path, body, headers, status): answered before any version scored them
    ("POST", "/invocations", b'{"dataframe_split": ', {"Content-Type": "application/json"}, 400),
    ("POST", "/predict", b'{"inputs": [{"x": 1.0}]}', {"Content-Type": "application/json"}, 400),
    ("POST", "/predict", b'{"inputs": [{"x": 1.0, "word": "a"}]}', {"Content-Type": "text/plain"}, 415),
    ("POST", "/v2/models/toy/infer", b'{"inputs": [{"name": "x", "shape": [1], "datatype": "FP64", "data": '
     b'[10' + b"0" * 400 + b']}]}', {}, 400),
    ("POST", "/v2/models/rose/infer", b"{}", {}, 404),
    ("GET", "/invocations", b"", {}, 405),
]


def test_refusals_are_counted_under_the_primary_never_the_canary(toy: httpx.Client) -> None:
    before = request_counts(toy, "modelops_requests_total")
    for _ in range(10):  # without a request key, half of the requests are routed to the canary
        for method, path, body, headers, status in REFUSED:
            answer = toy.request(method, path, content=body, headers=headers)
            assert answer.status_code == status, answer.text
            assert answer.headers["x-model-version"] == "1.0.0"
    counted = _delta(before, request_counts(toy, "modelops_requests_total"))
    assert counted == {("1.0.0", "invocations", "400"): 10.0, ("1.0.0", "predict", "400"): 10.0,
                       ("1.0.0", "predict", "415"): 10.0, ("1.0.0", "v2", "400"): 10.0,
                       ("1.0.0", "v2", "404"): 10.0, ("1.0.0", "invocations", "405"): 10.0}


def test_every_response_names_a_version_and_metadata_is_counted(toy: httpx.Client) -> None:
    before = request_counts(toy, "modelops_requests_total")
    for path in ("/health", "/ready", "/metrics", "/docs", "/openapi.json", "/nowhere", "/v2", "/v2/models/toy",
                 "/v2/models/toy/versions/9.9.9", "/version"):
        assert toy.get(path).headers["x-model-version"] == "1.0.0", path
    assert _delta(before, request_counts(toy, "modelops_requests_total")) == {
        ("1.0.0", "metadata", "200"): 3.0, ("1.0.0", "metadata", "404"): 1.0}


def test_an_answer_from_the_error_handler_is_counted_too(tmp_path: Path) -> None:
    folder = make_model(tmp_path / "toy", {"1.0.0": ReturnsObjects()}, {"production": {"version": "1.0.0"}})
    with asgi(folder) as client:  # in-process, the app as uvicorn runs it
        answer = client.post("/invocations", json={"inputs": [[1.0, 2.0]]}, headers={"X-Request-ID": "crash-2"})
        assert answer.status_code == 500 and answer.headers["x-model-version"] == "1.0.0"
        assert answer.headers["x-request-id"] == "crash-2"  # Starlette's own 500 carries the request id too
        assert answer.json()["message"] == "internal error; the server log has the details"
        assert request_counts(client, "modelops_requests_total") == {("1.0.0", "invocations", "500"): 1.0}
