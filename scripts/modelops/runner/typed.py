"""The typed protocol, `POST /predict`: `{"inputs": [records]}` validated by models generated from the signature.

The request model (one field per input column, with its type and range, aliased to the column's name)
is what the OpenAPI document shows and what parses the body; the answer is `{"outputs": [records]}`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Any

import numpy as np
from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field, create_model

from modelops.runner.http import (
    JSON,
    SCORING_ERRORS,
    VERSION_HEADER,
    component_schemas,
    dumps,
    error_responses,
    parse_model,
)
from modelops.runner.runtime import Parsed, Runtime
from modelops.signature.compiled import CompiledSignature

if TYPE_CHECKING:
    from modelops.manifest.model import Column

_FLOAT32_MAX = float(np.finfo(np.float32).max)
_ANNOTATIONS: dict[str, Any] = {
    "boolean": bool,
    "integer": Annotated[int, Field(ge=-(2**31), le=2**31 - 1)],
    "long": Annotated[int, Field(ge=-(2**63), le=2**63 - 1)],
    "float": Annotated[float, Field(ge=-_FLOAT32_MAX, le=_FLOAT32_MAX, allow_inf_nan=False)],
    "double": Annotated[float, Field(allow_inf_nan=False)],
    "string": str,
    "binary": Annotated[str, Field(json_schema_extra={"format": "byte"})],
    "datetime": Annotated[str, Field(json_schema_extra={"format": "date-time"})],
}
_STRICT = ConfigDict(extra="forbid", strict=True)


def _row_model(name: str, columns: Sequence[Column]) -> type[BaseModel]:
    """A record of `columns`; field j is `c<j>`, aliased to the column's name (any name is safe)."""
    fields: dict[str, Any] = {}
    for j, column in enumerate(columns):
        annotation = _ANNOTATIONS[column.type]
        label = getattr(column, "label", None)  # a probability column names its class
        described = {"description": f"probability of class {label!r}"} if label is not None else {}
        fields[f"c{j}"] = ((annotation, Field(alias=column.name, **described)) if column.required
                           else (annotation | None, Field(None, alias=column.name, **described)))
    return create_model(name, __config__=_STRICT, **fields)


def request_models(model: str, signature: CompiledSignature,
                   example: list[dict] | None) -> tuple[type[BaseModel], type[BaseModel]]:
    """The typed /predict request and response models, with the example, named after the model."""
    prefix = "".join(part.capitalize() for part in model.split("-"))
    row = _row_model(f"{prefix}Input", signature.inputs)
    if signature.outputs:
        out_row: Any = _row_model(f"{prefix}Output", signature.outputs)
    else:
        out_row = dict[str, Any]
    example_config = ConfigDict(extra="forbid", strict=True,
                                json_schema_extra={"examples": [{"inputs": example}]} if example else None)
    request = create_model(f"{prefix}PredictRequest", __config__=example_config,
                           inputs=(Annotated[list[row], Field(min_length=1)], ...))  # type: ignore[valid-type]
    response = create_model(f"{prefix}PredictResponse",
                            outputs=(list[out_row], ...), version=(str, ...))  # type: ignore[valid-type]
    return request, response


def router(runtime: Runtime) -> tuple[APIRouter, dict[str, dict]]:
    """The /predict route, and the schemas its OpenAPI document references (by name)."""
    signature = runtime.signature
    predict_request, predict_response = request_models(runtime.served.model, signature, runtime.served.example)
    fields = [f"c{j}" for j in range(signature.width)]  # the request model's names for the columns

    def parse(body: bytes, content_type: str | None) -> Parsed:
        inputs = parse_model(predict_request, body, content_type).inputs
        return Parsed(signature.rows([[getattr(row, f) for f in fields] for row in inputs], "inputs",
                                     lambda i, j: f"inputs[{i}].{signature.names[j]}"))

    body = {"requestBody": {"required": True, "content": {JSON: {"schema": {
        "$ref": f"#/components/schemas/{predict_request.__name__}"}}}}}
    api = APIRouter()

    @api.post("/predict", tags=["Typed scoring"], summary="Score records of the signature's columns",
              response_model=predict_response, openapi_extra=body,
              responses={200: {"headers": VERSION_HEADER}, **error_responses(*SCORING_ERRORS)})
    async def predict(request: Request) -> Response:
        """Score `{"inputs": [records]}` (the request model lists the columns, their types and an example)."""
        version, outputs, _ = await runtime.score(request, parse)
        answer = {"outputs": signature.output_records(outputs), "version": version}
        return Response(dumps(answer), media_type=JSON, headers={"X-Model-Version": version})

    return api, component_schemas(predict_request)
