"""What every protocol of the runner shares: JSON in and out, media types, refusals and their documentation."""

from __future__ import annotations

import json
from typing import Any, TypeVar

import numpy as np
import orjson
from pydantic import BaseModel, ConfigDict, ValidationError

from modelops.errors import dotted

JSON = "application/json"
CSV = "text/csv"
VERSION_HEADER = {"X-Model-Version": {"description": "The model version that answered",
                                      "schema": {"type": "string"}}}
SCORING_ERRORS = (400, 408, 413, 415, 422, 429, 500, 503, 504)  # what a scoring operation may answer besides 200
ERROR_CODES = {400: "BAD_REQUEST", 404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED", 408: "REQUEST_TIMEOUT",
               413: "REQUEST_TOO_LARGE", 415: "UNSUPPORTED_MEDIA_TYPE", 422: "INVALID_INPUT",
               429: "TOO_MANY_REQUESTS", 431: "HEADERS_TOO_LARGE", 500: "INTERNAL_ERROR", 503: "NOT_READY",
               504: "TIMEOUT"}
Model = TypeVar("Model", bound=BaseModel)


class RequestError(Exception):
    """A request the runner refuses: answered with `status` and a JSON body naming `field`."""

    def __init__(self, message: str, field: str = "", status: int = 400, version: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.status = status
        self.version = version  # the version that failed to score it, if one did (else the answer names the primary)


def dumps(data: Any) -> bytes:
    """JSON bytes, with NumPy arrays and scalars serialised natively."""
    return orjson.dumps(data, default=_default, option=orjson.OPT_SERIALIZE_NUMPY)


def error_body(status: int, message: str, field: str, path: str) -> bytes:
    """The JSON of a refusal: MLflow's error shape plus the field, or the v2 shape under /v2/."""
    if path.startswith("/v2/"):
        return dumps({"error": message, "field": field})
    return dumps({"error_code": ERROR_CODES.get(status, "ERROR"), "message": message, "field": field})


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
        if "infinity" not in str(exc):
            raise RequestError(f"malformed JSON: {exc}", "body") from None
    # A number beyond float64 (orjson holds numbers in 64 bits): Python's parser keeps it, so that the
    # signature can refuse it naming its cell. Only this rare refusal pays for the slower parser.
    try:
        return json.loads(body, parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:  # ValueError: also an integer over Python's 4300 digits
        raise RequestError(f"malformed JSON: {exc}", "body") from None


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def parse_model(model: type[Model], body: bytes, content_type: str | None) -> Model:
    """A JSON body validated by a pydantic `model`; its first error is refused naming the field."""
    media_type(content_type, (JSON,))
    return validate_json(model, body)


def validate_json(model: type[Model], body: bytes) -> Model:
    """JSON validated by a pydantic `model`; its first error is refused naming the field."""
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        error = exc.errors()[0]
        raise RequestError(error["msg"], dotted(error["loc"]) or "body") from None


def component_schemas(*models: type[BaseModel]) -> dict[str, dict]:
    """The OpenAPI component schemas of pydantic models (and of the models they use), by name."""
    schemas: dict[str, dict] = {}
    for model in models:
        spec = model.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(spec.pop("$defs", {}))
        schemas[model.__name__] = spec
    return schemas


class ErrorBody(BaseModel):
    """What every refused request gets (MLflow's error shape plus the field)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"error_code": "BAD_REQUEST", "field":
                              "dataframe_split.data[0][1]", "message": "column 'x': 'a' is not a number (double)"}]})
    error_code: str
    message: str
    field: str = ""


def error_responses(*codes: int) -> dict[int | str, dict]:
    """OpenAPI documentation of the error answers of an operation."""
    words = {400: "The request does not fit the signature or the protocol", 404: "No such model or version",
             408: "The body did not arrive in time", 413: "The body is over the limit",
             415: "Missing or unsupported Content-Type", 422: "The model cannot score this input",
             429: "Too many requests in flight: retry after Retry-After seconds", 500: "The model failed",
             503: "Not ready, or shutting down", 504: "The answer took longer than the request timeout"}
    return {code: {"model": ErrorBody, "description": words[code]} for code in codes}
