"""The Open Inference Protocol v2 (KServe, Triton, MLServer): one input tensor per signature column.

`POST /v2/models/{name}/infer` is routed like /invocations (A/B, shadow); `.../versions/{v}/infer`
pins one of the loaded versions. Errors answer `{"error": "..."}` as the protocol says, plus the field.
"""

# No `from __future__ import annotations`: the path parameter types below are local to router().
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Path, Request, Response
from pydantic import BaseModel, ConfigDict

from modelops import __version__
from modelops.runner.http import (
    JSON,
    SCORING_ERRORS,
    VERSION_HEADER,
    RequestError,
    component_schemas,
    dumps,
    parse_model,
)
from modelops.runner.runtime import Parsed, Runtime
from modelops.signature import probabilities
from modelops.signature.compiled import CompiledSignature

DATATYPES = {"boolean": "BOOL", "integer": "INT32", "long": "INT64", "float": "FP32", "double": "FP64",
             "string": "BYTES", "binary": "BYTES", "datetime": "BYTES"}
_NUMBERS = {"INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64", "FP16", "FP32", "FP64"}
_ACCEPTED = {"boolean": {"BOOL"}, "integer": _NUMBERS - {"FP16", "FP32", "FP64"},
             "long": _NUMBERS - {"FP16", "FP32", "FP64"}, "float": _NUMBERS, "double": _NUMBERS,
             "string": {"BYTES"}, "binary": {"BYTES"}, "datetime": {"BYTES"}}


class TensorMetadata(BaseModel):
    name: str
    datatype: str
    shape: list[int]
    parameters: dict[str, Any] | None = None


class ModelMetadata(BaseModel):
    name: str
    versions: list[str]
    platform: str
    inputs: list[TensorMetadata]
    outputs: list[TensorMetadata]


class RequestInput(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    name: str
    shape: list[int]
    datatype: str
    data: list[Any]
    parameters: dict[str, Any] | None = None


class InferenceRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    id: str | None = None
    parameters: dict[str, Any] | None = None
    inputs: list[RequestInput]
    outputs: list[dict[str, Any]] | None = None


class ResponseOutput(BaseModel):
    name: str
    shape: list[int]
    datatype: str
    data: list[Any]


class InferenceResponse(BaseModel):
    model_name: str
    model_version: str
    id: str | None = None
    outputs: list[ResponseOutput]


class V2Error(BaseModel):
    error: str
    field: str = ""


class Status(BaseModel):
    live: bool | None = None
    ready: bool | None = None


class ServerMetadata(BaseModel):
    name: str
    version: str
    extensions: list[str]


def _errors(*codes: int) -> dict[int | str, dict]:
    return {code: {"model": V2Error, "description": "Refused (see error)"} for code in codes}


def parse_infer(signature: CompiledSignature, body: bytes, content_type: str | None) -> Parsed:
    """An inference request's input tensors -> the array in signature order, and the request id."""
    request = parse_model(InferenceRequest, body, content_type)
    columns: list[list | None] = [None] * signature.width
    sent_as = [0] * signature.width  # the index in `inputs` of each column's tensor
    rows: tuple[int, int] | None = None  # (index, rows) of the first tensor
    for k, tensor in enumerate(request.inputs):
        where = f"inputs[{k}]"
        j = signature.index.get(tensor.name)
        if j is None:
            raise RequestError(f"unknown input {tensor.name!r}; the inputs are: {', '.join(signature.names)}",
                               f"{where}.name")
        column = signature.inputs[j]
        if tensor.datatype not in _ACCEPTED[column.type]:
            raise RequestError(f"datatype {tensor.datatype!r} does not fit column type {column.type}; send "
                               f"{DATATYPES[column.type]}", f"{where}.datatype")
        data = tensor.data
        if data and all(isinstance(v, list) and len(v) == 1 for v in data):
            data = [v[0] for v in data]  # shape [n, 1]
        if not tensor.shape or tensor.shape[0] != len(data):
            raise RequestError(f"shape {tensor.shape} does not match the {len(data)} value(s) in data",
                               f"{where}.shape")
        if columns[j] is not None:
            raise RequestError(f"input {tensor.name!r} is sent twice", f"{where}.name")
        if rows is not None and rows[1] != len(data):
            raise RequestError(f"shape {tensor.shape} has {len(data)} row(s), but inputs[{rows[0]}] has {rows[1]}: "
                               "every input needs the same number of rows", f"{where}.shape")
        rows = rows or (k, len(data))
        columns[j], sent_as[j] = data, k
    return Parsed(signature.tensors(columns, "inputs", lambda i, j: f"inputs[{sent_as[j]}].data[{i}]"), request.id)


def output_tensors(runtime: Runtime, outputs: np.ndarray) -> list[dict]:
    """One tensor per output column when the signature declares them, else one `predictions` tensor;
    class probabilities are one [N, classes] tensor."""
    if runtime.signature.probabilities:
        return [probabilities.tensor(outputs)]
    declared = runtime.signature.outputs
    table = outputs.reshape(len(outputs), -1) if outputs.ndim <= 2 else None
    if declared and table is not None and table.shape[1] == len(declared):
        return [{"name": c.name, "datatype": DATATYPES[c.type], "shape": [len(table)], "data": table[:, j]}
                for j, c in enumerate(declared)]
    kind = {"b": "BOOL", "i": "INT64", "u": "UINT64", "f": "FP64"}.get(outputs.dtype.kind, "BYTES")
    return [{"name": "predictions", "datatype": kind, "shape": list(outputs.shape), "data": outputs.reshape(-1)}]


def router(runtime: Runtime) -> tuple[APIRouter, dict[str, dict]]:
    """The /v2 routes of the Open Inference Protocol, and the schemas its OpenAPI document references."""
    served = runtime.served
    api = APIRouter(prefix="/v2", tags=["Open Inference Protocol v2"])
    # The names this server answers for, as enums in the document; any other is a 404 naming them.
    Name = Annotated[str, Path(description="The model's name", examples=[served.model],
                               json_schema_extra={"enum": [served.model]})]
    Version = Annotated[str, Path(description="A loaded version", examples=list(served.loaders),
                                  json_schema_extra={"enum": list(served.loaders)})]

    def check(name: str, version: str | None = None) -> None:
        if name != served.model:
            raise RequestError(f"no model {name!r}; this server serves {served.model!r}", "name", 404)
        if version is not None and version not in served.loaders:
            raise RequestError(f"version {version!r} is not loaded; loaded: {', '.join(served.loaders)}",
                               "version", 404)

    def metadata(versions: list[str]) -> dict:
        inputs = [{"name": c.name, "datatype": DATATYPES[c.type], "shape": [-1]} for c in runtime.signature.inputs]
        outputs = [{"name": c.name, "datatype": DATATYPES[c.type], "shape": [-1]}
                   for c in runtime.signature.outputs or []]
        if runtime.signature.probabilities:
            outputs = [probabilities.tensor_metadata(runtime.signature.labels or [])]
        return {"name": served.model, "versions": versions, "platform": "modelops", "inputs": inputs,
                "outputs": outputs}

    def ready_response(body_key: str, ok: bool) -> Response:
        return Response(dumps({body_key: ok}), status_code=200 if ok else 503, media_type=JSON)

    @api.get("", response_model=ServerMetadata, summary="Server metadata")
    async def server_metadata() -> Response:
        return Response(dumps({"name": "modelops-runner", "version": __version__, "extensions": []}),
                        media_type=JSON)

    @api.get("/health/live", response_model=Status, summary="Liveness")
    async def live() -> Response:
        return ready_response("live", True)

    @api.get("/health/ready", response_model=Status, responses=_errors(503), summary="Readiness")
    async def ready() -> Response:
        return ready_response("ready", runtime.ready)

    @api.get("/models/{name}", response_model=ModelMetadata, responses=_errors(404), summary="Model metadata")
    async def model_metadata(name: Name) -> Response:
        check(name)
        return Response(dumps(metadata(runtime.versions)), media_type=JSON)

    @api.get("/models/{name}/ready", response_model=Status, responses=_errors(404, 503), summary="Model ready")
    async def model_ready(name: Name) -> Response:
        check(name)
        return ready_response("ready", runtime.ready)

    @api.get("/models/{name}/versions/{version}", response_model=ModelMetadata, responses=_errors(404),
             summary="Model version metadata")
    async def version_metadata(name: Name, version: Version) -> Response:
        check(name, version)
        return Response(dumps(metadata([version])), media_type=JSON)

    @api.get("/models/{name}/versions/{version}/ready", response_model=Status, responses=_errors(404, 503),
             summary="Model version ready")
    async def version_ready(name: Name, version: Version) -> Response:
        check(name, version)
        return ready_response("ready", runtime.ready)

    responses = {200: {"headers": VERSION_HEADER}, **_errors(*sorted((404, *SCORING_ERRORS)))}
    body = {"requestBody": {"required": True, "content": {JSON: {"schema": {
        "$ref": "#/components/schemas/InferenceRequest"}, "example": _example_request(runtime)}}}}

    def parse(body: bytes, content_type: str | None) -> Parsed:
        return parse_infer(runtime.signature, body, content_type)

    async def infer_version(request: Request, name: str, version: str | None) -> Response:
        check(name, version)
        served_by, outputs, parsed = await runtime.score(request, "v2", parse, version)
        result = {"model_name": served.model, "model_version": served_by, "outputs": output_tensors(runtime, outputs)}
        if parsed.request_id is not None:
            result["id"] = parsed.request_id
        return Response(dumps(result), media_type=JSON, headers={"X-Model-Version": served_by})

    @api.post("/models/{name}/infer", response_model=InferenceResponse, responses=responses, openapi_extra=body,
              summary="Infer (routed: A/B and shadow)")
    async def infer(request: Request, name: Name) -> Response:
        return await infer_version(request, name, None)

    @api.post("/models/{name}/versions/{version}/infer", response_model=InferenceResponse, responses=responses,
              openapi_extra=body, summary="Infer with one loaded version")
    async def infer_pinned(request: Request, name: Name, version: Version) -> Response:
        return await infer_version(request, name, version)

    return api, component_schemas(InferenceRequest)


def _example_request(runtime: Runtime) -> dict:
    rows = runtime.served.example or []
    return {"inputs": [{"name": c.name, "datatype": DATATYPES[c.type], "shape": [len(rows)],
                        "data": [r.get(c.name) for r in rows]} for c in runtime.signature.inputs]}
