"""A v2 inference request to the array, and the predictions to its answer, as Triton's and KServe's clients speak.

The body is JSON, or JSON then binary tensors (`binary.py`), whatever its Content-Type says (none,
`application/json` or `application/octet-stream`). Each input tensor is one signature column, shaped
`[n]` or `[n, 1]`; its datatype must fit the column and its data must fit the datatype and the shape.
`model_name`, `model_version`, `id` and `parameters` are accepted in the body (parameters this server
has no use for are ignored, those it cannot honour, shared memory and classification, are refused);
the requested `outputs` are answered, as JSON or binary data (`binary_data`, `binary_data_output`).
For a signature of required doubles, the common body (every column once, FP64, shaped [n], and at most an
`id`) is read without pydantic, in under half the full parse's time; any other goes through the full parse,
which names what it refuses.
"""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
from fastapi import Response
from pydantic import BaseModel, ConfigDict, Field

from modelops.runner import binary
from modelops.runner.http import JSON, RequestError, dumps, media_type, validate_json
from modelops.runner.runtime import Parsed
from modelops.signature import probabilities
from modelops.signature.compiled import CompiledSignature
from modelops.signature.types import is_int, is_number

DATATYPES = {"boolean": "BOOL", "integer": "INT32", "long": "INT64", "float": "FP32", "double": "FP64",
             "string": "BYTES", "binary": "BYTES", "datetime": "BYTES"}
_INTEGERS = {f"{sign}INT{bits}": ((0, 2**bits - 1) if sign else (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1))
             for sign in ("", "U") for bits in (8, 16, 32, 64)}
_FLOATS = {"FP16": float(np.finfo(np.float16).max), "FP32": float(np.finfo(np.float32).max),
           "FP64": float(np.finfo(np.float64).max)}
_ACCEPTED = {"boolean": {"BOOL"}, "integer": set(_INTEGERS), "long": set(_INTEGERS),
             "float": {*_INTEGERS, *_FLOATS}, "double": {*_INTEGERS, *_FLOATS},
             "string": {"BYTES"}, "binary": {"BYTES"}, "datetime": {"BYTES"}}
_KNOWN = {"BOOL", "BYTES", *_INTEGERS, *_FLOATS}
_SHARED_MEMORY = ("shared_memory_region", "shared_memory_byte_size", "shared_memory_offset")
_STRICT = ConfigDict(extra="forbid", strict=True)
_PLAIN_TENSOR = {"name", "shape", "datatype", "data"}


class RequestInput(BaseModel):
    model_config = _STRICT
    name: str
    shape: list[int]
    datatype: str
    data: list[Any] | None = None
    parameters: dict[str, Any] | None = None


class RequestOutput(BaseModel):
    model_config = _STRICT
    name: str
    parameters: dict[str, Any] | None = None


class InferenceRequest(BaseModel):
    model_config = _STRICT
    id: str | None = None
    model_name: str | None = None
    model_version: str | None = None
    parameters: dict[str, Any] | None = None
    inputs: list[RequestInput] = Field(min_length=1)
    outputs: list[RequestOutput] | None = None


@dataclass(frozen=True, slots=True)
class Reply:
    """What the answer needs from the request: its id, the outputs asked for (name, as binary data), the default."""

    id: str | None
    outputs: list[tuple[str, bool]] | None  # None: every output
    binary: bool  # binary_data_output


class InferParser:
    """Parse v2 inference bodies (JSON or with binary tensors) into the array of the signature."""

    def __init__(self, signature: CompiledSignature, model: str) -> None:
        self.signature = signature
        self.model = model
        self.outputs = output_names(signature)
        self._namers = [lambda i, n=n: f"inputs.{n}[{i}]" for n in signature.names]  # of the columns not sent
        self._datatypes = [DATATYPES[c.type] for c in signature.inputs]  # each column's own

    def __call__(self, body: bytes, content_type: str | None, header: str | None, version: str | None) -> Parsed:
        """`header`: the Inference-Header-Content-Length, if sent; `version`: the one the URL pins, if any."""
        if content_type and content_type.strip():  # Triton's clients send none: JSON, as Triton reads it
            media_type(content_type, (JSON, binary.OCTET_STREAM))
        if header is None and self.signature.all_doubles and (parsed := self._plain(body)) is not None:
            return parsed
        text, raw = (body, None) if header is None else binary.split(body, header)
        request = validate_json(InferenceRequest, text)
        self._check_target(request, version)
        signature = self.signature
        columns: list[list | None] = [None] * signature.width
        names: list[Any] = list(self._namers)  # how to name value i of each column in errors
        rows: tuple[int, int] | None = None  # (index, rows) of the first tensor
        offset = 0
        for k, tensor in enumerate(request.inputs):
            where = f"inputs[{k}]"
            j = signature.index.get(tensor.name)
            if j is None:
                raise RequestError(f"unknown input {tensor.name!r}; the inputs are: {', '.join(signature.names)}",
                                   f"{where}.name")
            if columns[j] is not None:
                raise RequestError(f"input {tensor.name!r} is sent twice", f"{where}.name")
            kind = signature.inputs[j].type
            if tensor.datatype not in _ACCEPTED[kind]:
                unknown = "" if tensor.datatype in _KNOWN else " (not a datatype this server reads)"
                raise RequestError(f"datatype {tensor.datatype!r}{unknown} does not fit column type {kind}; "
                                   f"send {DATATYPES[kind]}", f"{where}.datatype")
            n = _rows(tensor.shape, where)
            values, offset, names[j] = self._values(tensor, kind, n, where, raw, offset)
            if rows is not None and rows[1] != n:
                raise RequestError(f"shape {tensor.shape} has {n} row(s), but inputs[{rows[0]}] has {rows[1]}: "
                                   "every input needs the same number of rows", f"{where}.shape")
            rows = rows or (k, n)
            columns[j] = values
        if raw is not None and offset != len(raw):
            raise RequestError(f"the body has {len(raw)} bytes after the JSON, the inputs' binary_data_size add up "
                               f"to {offset}", binary.FIELD)
        array = signature.tensors(columns, "inputs", lambda i, j: names[j](i))
        return Parsed(array, Reply(request.id, self._requested(request), _binary_output(request.parameters)))

    def _plain(self, body: bytes) -> Parsed | None:
        """The common request to a signature of required doubles, read without pydantic: `{"inputs": [...]}`
        (and an `id`) whose tensors are every column once, FP64, shaped [n], its data n ints or floats whose
        sum is finite. None for any other body: the full parse reads it, and names what it refuses."""
        try:
            request = orjson.loads(body)
        except orjson.JSONDecodeError:
            return None
        if type(request) is not dict or not request.keys() <= {"inputs", "id"}:
            return None
        inputs, ident = request.get("inputs"), request.get("id")
        if type(inputs) is not list or len(inputs) != self.signature.width or not isinstance(ident, str | None):
            return None
        columns: list[list | None] = [None] * self.signature.width
        for tensor in inputs:
            if type(tensor) is not dict or tensor.keys() != _PLAIN_TENSOR or type(tensor["name"]) is not str:
                return None
            j, shape, data = self.signature.index.get(tensor["name"]), tensor["shape"], tensor["data"]
            if (j is None or columns[j] is not None or tensor["datatype"] != self._datatypes[j]
                    or type(data) is not list or type(shape) is not list or len(shape) != 1
                    or type(shape[0]) is not int or shape[0] != len(data)):
                return None
            columns[j] = data
        array = self.signature.doubles(columns)
        return None if array is None else Parsed(array, Reply(ident, None, False))

    def _check_target(self, request: InferenceRequest, version: str | None) -> None:
        if request.model_name is not None and request.model_name != self.model:
            raise RequestError(f"model_name {request.model_name!r} contradicts the URL, which names {self.model!r}",
                               "model_name")
        if request.model_version:
            if version is None:
                raise RequestError("this URL routes (A/B); to ask for one version, POST "
                                   f"/v2/models/{self.model}/versions/{request.model_version}/infer", "model_version")
            if request.model_version != version:
                raise RequestError(f"model_version {request.model_version!r} contradicts the URL, which names "
                                   f"{version!r}", "model_version")

    def _values(self, tensor: RequestInput, kind: str, n: int, where: str, raw: memoryview | None,
                offset: int) -> tuple[list, int, Any]:
        """(the column's values, the offset in the binary data after them, the namer of value i)."""
        size = None
        if tensor.parameters:
            for key in _SHARED_MEMORY:
                if key in tensor.parameters:
                    raise RequestError("this server has no shared memory: send the data in the body",
                                       f"{where}.parameters.{key}")
            size = tensor.parameters.get("binary_data_size")
        if size is None:
            if tensor.data is None:
                raise RequestError("no data: send data, or binary_data_size with binary data after the JSON",
                                   f"{where}.data")
            values, name = _flat(tensor.data, where)
            if len(values) != n:
                raise RequestError(f"shape {tensor.shape} does not match the {len(values)} value(s) in data",
                                   f"{where}.shape")
            if tensor.datatype != DATATYPES[kind]:  # the column's own datatype: its checks are the datatype's
                _fit(tensor.datatype, values, name)
            return values, offset, name
        field = f"{where}.parameters.binary_data_size"
        if tensor.data is not None:
            raise RequestError("both data and binary_data_size: send one", f"{where}.data")
        if raw is None:
            raise RequestError(f"binary data needs the {binary.FIELD} header (the length of the JSON)", field)
        if not is_int(size) or size < 0:
            raise RequestError(f"binary_data_size is {_short(size)}: expected a number of bytes", field)
        if offset + size > len(raw):
            raise RequestError(f"binary_data_size {size} runs past the end of the body ({len(raw) - offset} bytes "
                               "left)", field)
        values = binary.decode(tensor.datatype, raw[offset:offset + size], n, where)
        if tensor.datatype == "BYTES":
            values = _texts(values, kind, where)
        return values, offset + size, lambda i: f"{where}.data[{i}]"

    def _requested(self, request: InferenceRequest) -> list[tuple[str, bool]] | None:
        if request.outputs is None:
            return None
        default = _binary_output(request.parameters)
        wanted: list[tuple[str, bool]] = []
        for k, output in enumerate(request.outputs):
            where = f"outputs[{k}]"
            if output.name not in self.outputs:
                raise RequestError(f"unknown output {output.name!r}; the outputs are: {', '.join(self.outputs)}",
                                   f"{where}.name")
            if any(name == output.name for name, _ in wanted):
                raise RequestError(f"output {output.name!r} is asked for twice", f"{where}.name")
            parameters = output.parameters or {}
            for key in ("classification", *_SHARED_MEMORY):
                if key in parameters:
                    raise RequestError(f"{key} is not supported by this server", f"{where}.parameters.{key}")
            as_binary = parameters.get("binary_data", default)
            if not isinstance(as_binary, bool):
                raise RequestError("expected true or false", f"{where}.parameters.binary_data")
            wanted.append((output.name, as_binary))
        return wanted


def _binary_output(parameters: dict[str, Any] | None) -> bool:
    value = (parameters or {}).get("binary_data_output", False)
    if not isinstance(value, bool):
        raise RequestError("expected true or false", "parameters.binary_data_output")
    return value


def _rows(shape: list[int], where: str) -> int:
    """The rows of a column tensor shaped [n] or [n, 1]."""
    if len(shape) == 1 and 0 <= shape[0] < 2**63:
        return shape[0]
    if len(shape) not in (1, 2) or not all(0 <= d < 2**63 for d in shape) or shape[1:] not in ([], [1]):
        shown = "[" + ", ".join(map(_short, shape)) + "]"
        raise RequestError(f"shape {shown}: each input is one column, shaped [n] or [n, 1] for n rows",
                           f"{where}.shape")
    return shape[0]


def _flat(data: list, where: str) -> tuple[list, Any]:
    """The values of JSON data, flat or as [n, 1] nested lists, and the namer of value i."""
    if not data or not isinstance(data[0], list):
        return data, lambda i: f"{where}.data[{i}]"
    for i, row in enumerate(data):
        if not isinstance(row, list) or len(row) != 1:
            raise RequestError("expected a flat list of values, or one list of one value per row", f"{where}.data[{i}]")
    return [row[0] for row in data], lambda i: f"{where}.data[{i}][0]"


def _fit(datatype: str, values: list, name: Any) -> None:
    """Refuse the first value that `datatype` cannot hold (None is left to the column's check)."""
    if datatype in _INTEGERS:
        low, high = _INTEGERS[datatype]
        for i, v in enumerate(values):
            if v is not None and not (is_int(v) and low <= v <= high):
                words = f"out of the {datatype} range" if is_int(v) else f"not an integer ({datatype})"
                raise RequestError(f"{_short(v)} is {words}", name(i))
    elif datatype in _FLOATS:
        top = _FLOATS[datatype]
        for i, v in enumerate(values):
            if v is not None and not (is_number(v) and _within(v, top)):
                words = f"out of the {datatype} range" if is_number(v) else f"not a number ({datatype})"
                raise RequestError(f"{_short(v)} is {words}", name(i))
    else:
        accepts = (lambda v: isinstance(v, bool)) if datatype == "BOOL" else (lambda v: isinstance(v, str))
        for i, v in enumerate(values):
            if v is not None and not accepts(v):
                raise RequestError(f"{_short(v)} is not {'true or false' if datatype == 'BOOL' else 'a string'} "
                                   f"({datatype})", name(i))


def _within(value: float, top: float) -> bool:
    try:
        return math.isfinite(value) and abs(value) <= top
    except OverflowError:  # an integer beyond the float64 range
        return False


def _texts(elements: list[bytes], kind: str, where: str) -> list[str]:
    """BYTES elements as the column takes them: text (UTF-8), or base64 text for a binary column."""
    if kind == "binary":
        return [base64.b64encode(e).decode() for e in elements]
    texts = []
    for i, element in enumerate(elements):
        try:
            texts.append(element.decode())
        except UnicodeDecodeError:
            raise RequestError(f"element {i} is not UTF-8 text", f"{where}.data[{i}]") from None
    return texts


def _short(value: Any) -> str:
    if is_int(value) and abs(value) >= 10**20:
        return f"an integer of {len(str(abs(value)))} digits"
    text = repr(value)
    return text if len(text) <= 40 else text[:40] + "..."


def output_names(signature: CompiledSignature) -> list[str]:
    """The names of the output tensors `output_tensors` answers with."""
    if signature.probabilities:
        return [probabilities.TENSOR]
    return [c.name for c in signature.outputs] if signature.outputs else ["predictions"]


def output_tensors(signature: CompiledSignature, outputs: np.ndarray) -> list[dict]:
    """One tensor per output column when the signature declares them, else one `predictions` tensor;
    class probabilities are one [N, classes] tensor."""
    if signature.probabilities:
        return [probabilities.tensor(outputs)]
    declared = signature.outputs
    table = outputs.reshape(len(outputs), -1) if outputs.ndim <= 2 else None
    if declared and table is not None and table.shape[1] == len(declared):
        return [{"name": c.name, "datatype": DATATYPES[c.type], "shape": [len(table)], "data": table[:, j]}
                for j, c in enumerate(declared)]
    kind = {"b": "BOOL", "i": "INT64", "u": "UINT64", "f": "FP64"}.get(outputs.dtype.kind, "BYTES")
    return [{"name": "predictions", "datatype": kind, "shape": list(outputs.shape), "data": outputs.reshape(-1)}]


def answer(signature: CompiledSignature, model: str, version: str, outputs: np.ndarray, reply: Reply) -> Response:
    """The inference response: JSON, or JSON then the binary outputs (with Inference-Header-Content-Length)."""
    tensors = output_tensors(signature, outputs)
    if reply.outputs is None:
        chosen = [(tensor, reply.binary) for tensor in tensors]
    else:
        by_name = {tensor["name"]: tensor for tensor in tensors}
        missing = [name for name, _ in reply.outputs if name not in by_name]
        if missing:  # the model's outputs do not fit its signature
            raise RequestError(f"the model returned no output {missing[0]!r}", "", 500, version)
        chosen = [(by_name[name], as_binary) for name, as_binary in reply.outputs]
    chunks = []
    for tensor, as_binary in chosen:
        if as_binary:
            chunks.append(binary.encode(tensor["datatype"], tensor.pop("data")))
            tensor["parameters"] = {"binary_data_size": len(chunks[-1])}
    result: dict[str, Any] = {"model_name": model, "model_version": version, "outputs": [t for t, _ in chosen]}
    if reply.id is not None:
        result["id"] = reply.id
    text = dumps(result)
    if not chunks:
        return Response(text, media_type=JSON, headers={"X-Model-Version": version})
    return Response(b"".join((text, *chunks)), media_type=binary.OCTET_STREAM,
                    headers={"X-Model-Version": version, binary.FIELD: str(len(text))})
