"""MLflow's scoring protocol, `POST /invocations`: what `mlflow models serve` takes, so its clients work.

JSON with exactly one of `dataframe_split`, `dataframe_records`, `instances`, `inputs` (records, columns
or positional rows), or CSV with a header; the answer is `{"predictions": [...]}`. The JSON envelope is
one contract: `INVOCATION` (pydantic) validates it and is what the OpenAPI document shows; the rows
inside are the compiled signature's to check, and it names the bad cell when the envelope refuses them.
"""

from __future__ import annotations

import csv
import io
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, TypeAdapter, ValidationError

from modelops.errors import dotted
from modelops.runner.http import (
    CSV,
    JSON,
    SCORING_ERRORS,
    VERSION_HEADER,
    RequestError,
    dumps,
    error_responses,
    load_json,
    media_type,
)
from modelops.runner.runtime import Parsed, Runtime
from modelops.signature import text as text_values
from modelops.signature.compiled import CompiledSignature, SignatureError

FORMS = ("dataframe_split", "dataframe_records", "instances", "inputs")
_STRICT = ConfigDict(extra="forbid", strict=True)
Batch = Annotated[list[Any], Field(min_length=1)]


class DataframeSplit(BaseModel):
    model_config = _STRICT
    columns: list[str] | None = None
    data: Annotated[list[list[Any]], Field(min_length=1)]
    index: list[Any] | None = None


class SplitRequest(BaseModel):
    model_config = _STRICT
    dataframe_split: DataframeSplit


class RecordsRequest(BaseModel):
    model_config = _STRICT
    dataframe_records: Annotated[list[dict[str, Any]], Field(min_length=1)]


class InstancesRequest(BaseModel):
    model_config = _STRICT
    instances: Batch | dict[str, Batch]


class InputsRequest(BaseModel):
    model_config = _STRICT
    inputs: Batch | dict[str, Batch]


class InvocationsResponse(BaseModel):
    predictions: list[Any]


def form(payload: Any) -> str | None:
    """The one of FORMS a JSON body uses (None: not an object with exactly one of them)."""
    if isinstance(payload, dict):
        present = [key for key in FORMS if key in payload]
        if len(present) == 1:
            return present[0]
    return None


INVOCATION: TypeAdapter[Any] = TypeAdapter(Annotated[
    Annotated[SplitRequest, Tag("dataframe_split")] | Annotated[RecordsRequest, Tag("dataframe_records")]
    | Annotated[InstancesRequest, Tag("instances")] | Annotated[InputsRequest, Tag("inputs")],
    Discriminator(form)])

_FORM_OF = {SplitRequest: "dataframe_split", RecordsRequest: "dataframe_records", InstancesRequest: "instances",
            InputsRequest: "inputs"}


class InvocationParser:
    """Parse /invocations bodies (JSON or CSV) into the array of the signature."""

    def __init__(self, signature: CompiledSignature) -> None:
        self.signature = signature

    def __call__(self, body: bytes, content_type: str | None) -> Parsed:
        if media_type(content_type, (JSON, CSV)) == CSV:
            return Parsed(parse_csv(self.signature, body))
        payload = load_json(body)
        try:
            key = _FORM_OF[type(INVOCATION.validate_python(payload))]
        except ValidationError as exc:
            raise self._refusal(payload, exc) from None
        return Parsed(self._array(key, payload[key]))  # the envelope is valid: its data is read as sent

    def _array(self, key: str, value: Any) -> np.ndarray:
        """The array of one form's value; SignatureError names the bad row or cell."""
        signature = self.signature
        if key == "dataframe_split":
            return signature.split(value.get("columns"), value["data"], key)
        if key == "dataframe_records" or (isinstance(value, list) and value
                                          and all(isinstance(v, dict) for v in value)):
            return signature.records(value, key)
        if isinstance(value, dict):
            return signature.columns(value, key)
        if isinstance(value, list) and signature.width == 1 and value and not isinstance(value[0], list):
            value = [[v] for v in value]  # one column: a flat list of values
        return signature.rows(value, key)

    def _refusal(self, payload: Any, exc: ValidationError) -> Exception:
        """The answer to an envelope INVOCATION refuses: its first problem in the order the checks read."""
        key = form(payload)
        if key is None:
            if not isinstance(payload, dict):
                return RequestError(f"expected a JSON object with one of: {', '.join(FORMS)}", "body")
            unknown = [k for k in payload if k not in FORMS]
            return _unknown_field(unknown[0]) if unknown else RequestError(
                f"expected exactly one of: {', '.join(FORMS)}", "body")
        errors = sorted(exc.errors(), key=lambda e: _rank(e["type"], e["loc"][1:]))
        error = errors[0]
        loc = error["loc"][1:]  # without the tag of the form
        if error["type"] == "extra_forbidden":
            return _unknown_field(loc[0]) if len(loc) == 1 else RequestError("unknown field", dotted(loc))
        if loc == ("dataframe_split",) or (loc == ("dataframe_split", "data") and error["type"] == "missing"):
            return RequestError('expected {"columns": [...], "data": [[...], ...]}', key)
        if loc[:2] == ("dataframe_split", "index"):
            return RequestError("expected a list (one label per row)", dotted(loc[:2]))
        try:  # the rows or columns: the signature names the bad one in its own words
            self._array(key, payload[key])
        except SignatureError as problem:  # answered by the runtime, as every protocol's
            return problem
        return RequestError(error["msg"], dotted(loc))


def _rank(kind: str, loc: tuple) -> tuple:
    """The order in which the envelope's problems are answered: unknown fields, then the split's shape."""
    if kind == "extra_forbidden":
        return (0, "") if len(loc) == 1 else (2, str(loc[-1]))
    if loc == ("dataframe_split",) or kind == "missing":
        return (1, "")
    return (3, "") if loc[:2] == ("dataframe_split", "index") else (4, "")


def _unknown_field(key: str) -> RequestError:
    hint = "this model takes no parameters" if key == "params" else f"use one of: {', '.join(FORMS)}"
    return RequestError(f"unknown field: {hint}", key)


def parse_csv(signature: CompiledSignature, body: bytes) -> np.ndarray:
    """CSV with a header row; values are converted by the signature's column types."""
    try:
        lines = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))  # -sig: a spreadsheet's BOM is no column
    except (UnicodeDecodeError, csv.Error) as exc:
        raise RequestError(f"unreadable CSV: {exc}", "body") from None
    if not lines:
        raise RequestError("the CSV is empty: send a header row and at least one row", "body")
    header = lines[0]
    rows = [(number, line) for number, line in enumerate(lines[1:], start=2) if line]  # file line numbers
    order = signature.order(header, "csv.header")
    positions = order or list(range(len(header)))
    converted = []
    for number, line in rows:
        if len(line) != len(header):
            raise RequestError(f"expected {len(header)} values, got {len(line)}", f"csv.line[{number}]")
        converted.append([_csv_value(signature, j, line[k], number) if k >= 0 else None
                          for j, k in enumerate(positions)])
    return signature.rows(converted, "csv.rows", lambda i, j: f"csv.line[{rows[i][0]}].{signature.names[j]}")


def _csv_value(signature: CompiledSignature, j: int, text: str, line: int) -> Any:
    column = signature.inputs[j]
    try:
        return text_values.parser(column)(text)
    except ValueError:
        raise RequestError(text_values.problem(column, text), f"csv.line[{line}].{column.name}") from None


def router(runtime: Runtime) -> tuple[APIRouter, dict[str, dict]]:
    """The /invocations route, and the schemas its OpenAPI document references (by name)."""
    served, signature = runtime.served, runtime.signature
    names, example = signature.names, served.example or []
    split_example = {"dataframe_split": {"columns": names, "data": [[r.get(n) for n in names] for r in example]}}
    csv_example = ",".join(names) + "\n" + "\n".join(",".join(str(r.get(n, "")) for n in names) for r in example)
    schema = INVOCATION.json_schema(ref_template="#/components/schemas/{model}")
    definitions = schema.pop("$defs")
    body = {"requestBody": {"required": True, "content": {
        JSON: {"schema": schema, **({"example": split_example} if example else {})},
        CSV: {"schema": {"type": "string"}, **({"example": csv_example} if example else {})}}}}
    parse = InvocationParser(signature)
    api = APIRouter()

    @api.post("/invocations", tags=["MLflow scoring"], summary="Score (MLflow scoring protocol)",
              response_model=InvocationsResponse, openapi_extra=body,
              responses={200: {"headers": VERSION_HEADER}, **error_responses(*SCORING_ERRORS)})
    async def invocations(request: Request) -> Response:
        """Score rows sent as `dataframe_split`, `dataframe_records`, `instances`, `inputs` or CSV.

        Send `X-Request-Key` to keep a caller on the same version of an A/B split.
        """
        version, outputs, _ = await runtime.score(request, parse)
        return Response(dumps({"predictions": outputs}), media_type=JSON, headers={"X-Model-Version": version})

    return api, definitions
