"""The Open Inference Protocol v2 (KServe, Triton, MLServer): routes, metadata and health.

`POST /v2/models/{name}/infer` is routed like /invocations (A/B, shadow); `.../versions/{v}/infer`
pins one of the loaded versions. The bodies, JSON or with binary tensors, are read and answered by
`infer.py`. Errors answer `{"error": "..."}` as the protocol says, plus the field.
"""

# No `from __future__ import annotations`: the path parameter types below are local to router().
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response
from pydantic import BaseModel, Field

from modelops import __version__
from modelops.runner import binary
from modelops.runner.http import (
    JSON,
    SCORING_ERRORS,
    VERSION_HEADER,
    RequestError,
    component_schemas,
    dumps,
)
from modelops.runner.infer import DATATYPES, InferenceRequest, InferParser, answer
from modelops.runner.runtime import Runtime
from modelops.signature import probabilities


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


class ResponseOutput(BaseModel):
    name: str
    shape: list[int]
    datatype: str
    data: list[Any] | None = None
    parameters: dict[str, Any] | None = Field(None, description="binary_data_size: the output is binary data")


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

    server_body = dumps({"name": "modelops-runner", "version": __version__, "extensions": ["binary_tensor_data"]})

    octets = {"schema": {"type": "string", "format": "binary"}}
    responses = {200: {"headers": VERSION_HEADER, "content": {binary.OCTET_STREAM: octets}},
                 **_errors(*sorted((404, *SCORING_ERRORS)))}
    body = {"requestBody": {"required": True, "content": {
        JSON: {"schema": {"$ref": "#/components/schemas/InferenceRequest"}, "example": _example_request(runtime)},
        binary.OCTET_STREAM: octets}}}
    parser = InferParser(runtime.signature, served.model)
    about = ("JSON, or (binary tensor data extension) JSON followed by the binary data of the inputs whose "
             "`parameters.binary_data_size` is set, with the header `Inference-Header-Content-Length` giving the "
             "length of the JSON. Outputs asked for as binary data (`binary_data`, `binary_data_output`) come back "
             "the same way, as `application/octet-stream`.")

    async def infer_version(request: Request, name: str, version: str | None) -> Response:
        check(name, version)
        header = request.headers.get(binary.HEADER)
        served_by, outputs, parsed = await runtime.score(
            request, lambda body, content_type: parser(body, content_type, header, version), version)
        return answer(runtime.signature, served.model, served_by, outputs, parsed.reply)

    @api.post("/models/{name}/infer", response_model=InferenceResponse, responses=responses, openapi_extra=body,
              summary="Infer (routed: A/B and shadow)", description=about)
    async def infer(request: Request, name: Name) -> Response:
        return await infer_version(request, name, None)

    @api.post("/models/{name}/versions/{version}/infer", response_model=InferenceResponse, responses=responses,
              openapi_extra=body, summary="Infer with one loaded version", description=about)
    async def infer_pinned(request: Request, name: Name, version: Version) -> Response:
        return await infer_version(request, name, version)

    @api.get("", response_model=ServerMetadata, summary="Server metadata")
    async def server_metadata() -> Response:
        return Response(server_body, media_type=JSON)

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

    return api, component_schemas(InferenceRequest)


def _example_request(runtime: Runtime) -> dict:
    rows = runtime.served.example or []
    return {"inputs": [{"name": c.name, "datatype": DATATYPES[c.type], "shape": [len(rows)],
                        "data": [r.get(c.name) for r in rows]} for c in runtime.signature.inputs]}
