"""MLflow's scoring protocol (`POST /invocations`) and the typed `POST /predict`.

/invocations takes what `mlflow models serve` takes, so MLflow's clients work unchanged: JSON with one
of `dataframe_split`, `dataframe_records`, `instances`, `inputs` (records, columns or positional rows),
or CSV with a header; it answers `{"predictions": [...]}`. /predict takes `{"inputs": [records]}`
validated by the pydantic model generated from the signature and answers `{"outputs": [records]}`.
"""

from __future__ import annotations

import csv
import io
from typing import Annotated, Any

import numpy as np
import orjson
from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from modelops.runner.runtime import Runtime
from modelops.runner.schema import CompiledSignature, RequestError, request_models

FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")
JSON = "application/json"
CSV = "text/csv"


def dumps(data: Any) -> bytes:
    """JSON bytes, with NumPy arrays and scalars serialised natively."""
    return orjson.dumps(data, default=_default, option=orjson.OPT_SERIALIZE_NUMPY)


def _default(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def media_type(content_type: str | None, allowed: tuple[str, ...]) -> str:
    """The request's media type if it is one of `allowed`; 415 otherwise."""
    if not content_type:
        raise RequestError(f"the request has no Content-Type; send {' or '.join(allowed)}", "Content-Type", 415)
    media = content_type.split(";", 1)[0].strip().lower()
    if media not in allowed:
        raise RequestError(f"Content-Type {media!r} is not supported; send {' or '.join(allowed)}",
                           "Content-Type", 415)
    return media


def load_json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise RequestError(f"malformed JSON: {exc}", "body") from None


def parse_invocation(signature: CompiledSignature, body: bytes, content_type: str | None) -> np.ndarray:
    """The array of an MLflow scoring request (JSON or CSV)."""
    if media_type(content_type, (JSON, CSV)) == CSV:
        return parse_csv(signature, body)
    payload = load_json(body)
    if not isinstance(payload, dict):
        raise RequestError(f"expected a JSON object with one of: {', '.join(FORMATS)}", "body")
    for key in payload:
        if key not in FORMATS:
            hint = "this model takes no parameters" if key == "params" else f"use one of: {', '.join(FORMATS)}"
            raise RequestError(f"unknown field: {hint}", key)
    present = [key for key in FORMATS if key in payload]
    if len(present) != 1:
        raise RequestError(f"expected exactly one of: {', '.join(FORMATS)}", "body")
    key = present[0]
    value = payload[key]
    if key == "dataframe_split":
        if not isinstance(value, dict) or "data" not in value:
            raise RequestError('expected {"columns": [...], "data": [[...], ...]}', key)
        extra = set(value) - {"columns", "data", "index"}
        if extra:
            raise RequestError("unknown field", f"{key}.{sorted(extra)[0]}")
        if value.get("index") is not None and not isinstance(value["index"], list):
            raise RequestError("expected a list (one label per row)", f"{key}.index")
        return signature.split(value.get("columns"), value["data"], key)
    if key == "dataframe_records":
        return signature.records(value, key)
    if isinstance(value, dict):
        return signature.columns(value, key)
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        return signature.records(value, key)
    if isinstance(value, list) and signature.width == 1 and value and not isinstance(value[0], list):
        value = [[v] for v in value]  # one column: a flat list of values
    return signature.rows(value, key)


def parse_csv(signature: CompiledSignature, body: bytes) -> np.ndarray:
    """CSV with a header row; values are converted by the signature's column types."""
    try:
        lines = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))  # -sig: a spreadsheet's BOM is no column
    except (UnicodeDecodeError, csv.Error) as exc:
        raise RequestError(f"unreadable CSV: {exc}", "body") from None
    if not lines:
        raise RequestError("the CSV is empty: send a header row and at least one row", "body")
    header, rows = lines[0], [line for line in lines[1:] if line]
    order = signature.order(header, "csv.header")
    positions = order or list(range(len(header)))
    converted = []
    for i, line in enumerate(rows):
        if len(line) != len(header):
            raise RequestError(f"expected {len(header)} values, got {len(line)}", f"csv.line[{i + 2}]")
        converted.append([_csv_value(signature, j, line[k], i + 2) if k >= 0 else None
                          for j, k in enumerate(positions)])
    return signature.rows(converted, "csv.rows")


_TRUE, _FALSE = {"true", "1", "yes"}, {"false", "0", "no"}


def _csv_value(signature: CompiledSignature, j: int, text: str, line: int) -> Any:
    column = signature.inputs[j]
    if text == "":
        return None
    try:
        if column.type in ("float", "double"):
            return float(text)
        if column.type in ("integer", "long"):
            return int(text)
        if column.type == "boolean" and text.lower() in _TRUE | _FALSE:
            return text.lower() in _TRUE
        if column.type == "boolean":
            raise ValueError
    except ValueError:
        raise RequestError(f"column {column.name!r}: {text!r} is not {column.type}",
                           f"csv.line[{line}].{column.name}") from None
    return text


class ErrorBody(BaseModel):
    """What every refused request gets (MLflow's error shape plus the field)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"error_code": "BAD_REQUEST", "field":
                              "dataframe_split.data[0][1]", "message": "column 'x': 'a' is not a number (double)"}]})
    error_code: str
    message: str
    field: str = ""


Batch = Annotated[list[Any], Field(min_length=1)]


class DataframeSplit(BaseModel):
    model_config = ConfigDict(extra="forbid")
    columns: list[str] | None = None
    data: Annotated[list[list[Any]], Field(min_length=1)]
    index: list[Any] | None = None


class SplitRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    dataframe_split: DataframeSplit


class RecordsRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    dataframe_records: Annotated[list[dict[str, Any]], Field(min_length=1)]


class InstancesRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    instances: Batch | dict[str, Batch]


class InputsRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    inputs: Batch | dict[str, Batch]


class InvocationsResponse(BaseModel):
    predictions: list[Any]


def error_responses(*codes: int) -> dict[int | str, dict]:
    """OpenAPI documentation of the error answers of an operation."""
    words = {400: "The request does not fit the signature or the protocol", 404: "No such model or version",
             413: "The body is over the limit", 415: "Missing or unsupported Content-Type",
             422: "The model cannot score this input", 500: "The model failed", 503: "Not ready"}
    return {code: {"model": ErrorBody, "description": words[code]} for code in codes}


VERSION_HEADER = {"X-Model-Version": {"description": "The model version that answered",
                                      "schema": {"type": "string"}}}
SCORING_ERRORS = (400, 413, 415, 422, 500, 503)


def router(runtime: Runtime) -> tuple[APIRouter, list[type[BaseModel]]]:
    """The /invocations and /predict routes, and the request models the OpenAPI document must include."""
    signature = runtime.signature
    predict_request, predict_response = request_models(runtime.target.model, signature, runtime.target.example)
    names = signature.names
    example = runtime.target.example or []
    split_example = {"dataframe_split": {"columns": names, "data": [[r.get(n) for n in names] for r in example]}}
    csv_example = ",".join(names) + "\n" + "\n".join(",".join(str(r.get(n, "")) for n in names) for r in example)
    api = APIRouter()

    def ref(model: type[BaseModel]) -> dict:
        return {"$ref": f"#/components/schemas/{model.__name__}"}

    invocation_body = {"requestBody": {"required": True, "content": {
        JSON: {"schema": {"oneOf": [ref(m) for m in (SplitRequest, RecordsRequest, InstancesRequest,
                                                      InputsRequest)]},
               **({"example": split_example} if example else {})},
        CSV: {"schema": {"type": "string"}, **({"example": csv_example} if example else {})}}}}

    def parse_invocation_body(body: bytes, content_type: str | None) -> np.ndarray:
        return parse_invocation(signature, body, content_type)

    @api.post("/invocations", tags=["MLflow scoring"], summary="Score (MLflow scoring protocol)",
              response_model=InvocationsResponse, openapi_extra=invocation_body,
              responses={200: {"headers": VERSION_HEADER}, **error_responses(*SCORING_ERRORS)})
    async def invocations(request: Request) -> Response:
        """Score rows sent as `dataframe_split`, `dataframe_records`, `instances`, `inputs` or CSV.

        Send `X-Request-Key` to keep a caller on the same version of an A/B split.
        """
        version, outputs = await runtime.score(request, "invocations", parse_invocation_body)
        return Response(dumps({"predictions": outputs}), media_type=JSON, headers={"X-Model-Version": version})

    fields = [f"c{j}" for j in range(signature.width)]  # the request model's names for the columns

    def parse_predict(body: bytes, content_type: str | None) -> np.ndarray:
        media_type(content_type, (JSON,))
        try:
            parsed = predict_request.model_validate_json(body)
        except ValidationError as exc:
            error = exc.errors()[0]
            raise RequestError(error["msg"], dotted(error["loc"]) or "body") from None
        return signature.rows([[getattr(row, f) for f in fields] for row in parsed.inputs], "inputs")

    predict_body = {"requestBody": {"required": True, "content": {JSON: {"schema": ref(predict_request)}}}}

    @api.post("/predict", tags=["Typed scoring"], summary="Score records of the signature's columns",
              response_model=predict_response, openapi_extra=predict_body,
              responses={200: {"headers": VERSION_HEADER}, **error_responses(*SCORING_ERRORS)})
    async def predict(request: Request) -> Response:
        """Score `{"inputs": [records]}` (the request model lists the columns, their types and an example)."""
        version, outputs = await runtime.score(request, "predict", parse_predict)
        body = {"outputs": signature.output_records(outputs), "version": version}
        return Response(dumps(body), media_type=JSON, headers={"X-Model-Version": version})

    extra_models = [SplitRequest, RecordsRequest, InstancesRequest, InputsRequest, predict_request]
    return api, extra_models


def dotted(loc: tuple) -> str:
    """A pydantic error location as a field path: ("inputs", 0, "x") -> inputs[0].x."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text
