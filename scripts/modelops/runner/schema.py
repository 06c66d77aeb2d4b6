"""The signature, compiled once: a fast validator to a 2-D array, and the pydantic models /docs shows.

`CompiledSignature.rows(...)` turns positional rows (lists in signature order) into the array the
model predicts on; `records(...)` and `columns(...)` reorder named data into such rows first. Every
problem raises `RequestError` naming the field (`dataframe_split.data[3][1]`, `inputs[0].sepal_width`).
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Sequence
from typing import Annotated, Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, create_model

from modelops.manifest.model import Column
from modelops.signature.types import NUMPY_DTYPES, TYPES

_NUMERIC = ("integer", "long", "float", "double")
_FLOAT32_MAX = float(np.finfo(np.float32).max)


class RequestError(Exception):
    """A request the runner refuses: answered with `status` and a JSON body naming `field`."""

    def __init__(self, message: str, field: str = "", status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.status = status
        self.version = ""  # the version the request was routed to, once known


def _accepts(column: Column) -> Callable[[Any], bool]:
    accepts = TYPES[column.type][0]
    if column.type == "float":
        return lambda v: accepts(v) and abs(v) <= _FLOAT32_MAX
    if column.type == "double":
        return lambda v: accepts(v) and math.isfinite(v)
    return accepts


class CompiledSignature:
    """Input columns compiled into checks and a dtype; output columns into a cast and record keys."""

    def __init__(self, inputs: Sequence[Column], outputs: Sequence[Column] | None) -> None:
        self.inputs = list(inputs)
        self.outputs = list(outputs) if outputs else None
        self.names = [c.name for c in self.inputs]
        self.index = {name: i for i, name in enumerate(self.names)}
        self.width = len(self.names)
        types = {c.type for c in self.inputs}
        if len(types) == 1:
            self.dtype = NUMPY_DTYPES[types.pop()]
        else:
            self.dtype = np.float64 if types <= set(_NUMERIC) else object
        self._checks = [(_accepts(c), c.required) for c in self.inputs]
        # The fast path: every column a required double, so a row is fine when each cell is an int or float.
        self._fast = all(c.type == "double" and c.required for c in self.inputs)

    # -- inputs ---------------------------------------------------------------------------------
    def rows(self, rows: Any, where: str, cell: Callable[[int, int], str] | None = None) -> np.ndarray:
        """Positional rows (each a list in signature order) -> 2-D array; RequestError names the bad cell.

        `cell(i, j)` names the field of row i, column j in errors (default `where[i][j]`).
        """
        if not isinstance(rows, list):
            raise RequestError("expected a list of rows", where)
        if not rows:
            raise RequestError("the batch is empty: send at least one row", where)
        width = self.width
        if self._fast and all(type(r) is list and len(r) == width for r in rows) and all(
                type(v) is float or type(v) is int for r in rows for v in r):
            array = np.array(rows, dtype=np.float64)
            if np.isfinite(array).all():
                return array
        self._explain(rows, where, cell or (lambda i, j: f"{where}[{i}][{j}]"))
        dtype = self.dtype
        if dtype not in (np.float64, np.float32, object) and any(v is None for r in rows for v in r):
            dtype = object  # a null in an optional integer or boolean column
        return np.array(rows, dtype=dtype)

    def _explain(self, rows: list, where: str, cell: Callable[[int, int], str]) -> None:
        """Raise RequestError for the first bad cell of `rows`, if any."""
        for i, row in enumerate(rows):
            if not isinstance(row, list | tuple):
                raise RequestError(f"expected a list of {self.width} values in signature order "
                                   f"({', '.join(self.names)})", f"{where}[{i}]")
            if len(row) != self.width:
                raise RequestError(f"expected {self.width} values ({', '.join(self.names)}), got {len(row)}",
                                   f"{where}[{i}]")
            for j, (value, (accepts, required)) in enumerate(zip(row, self._checks, strict=True)):
                if value is None:
                    if required:
                        raise RequestError(f"column {self.names[j]!r} is required: null is not allowed",
                                           cell(i, j))
                elif not accepts(value):
                    raise RequestError(self._wrong(j, value), cell(i, j))

    def _wrong(self, j: int, value: Any) -> str:
        column = self.inputs[j]
        if column.type == "float" and TYPES["float"][0](value) and math.isfinite(value):
            return f"column {column.name!r}: {value!r} is out of the float32 range (±{_FLOAT32_MAX:.2g})"
        return f"column {column.name!r}: {value!r} is not {TYPES[column.type][1]} ({column.type})"

    def order(self, columns: Any, where: str) -> list[int] | None:
        """For named columns, the position of each signature column in them (None: already in order)."""
        if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
            raise RequestError("expected a list of column names", where)
        if columns == self.names:
            return None
        for k, name in enumerate(columns):
            if name not in self.index:
                raise RequestError(self._unknown(name), f"{where}[{k}]")
        if len(set(columns)) != len(columns):
            raise RequestError("a column is named twice", where)
        missing = [c.name for c in self.inputs if c.name not in columns and c.required]
        if missing:
            raise RequestError(f"required column(s) missing: {', '.join(missing)}", where)
        position = {name: k for k, name in enumerate(columns)}
        return [position.get(name, -1) for name in self.names]

    def split(self, columns: Any, data: Any, where: str) -> np.ndarray:
        """A pandas "split" frame (columns in any order, or none: signature order) -> array."""
        order = None if columns is None else self.order(columns, f"{where}.columns")
        if order is None:
            return self.rows(data, f"{where}.data")
        if not isinstance(data, list):
            raise RequestError("expected a list of rows", f"{where}.data")
        for i, row in enumerate(data):
            if not isinstance(row, list) or len(row) != len(columns):
                raise RequestError(f"expected a list of {len(columns)} values, one per column",
                                   f"{where}.data[{i}]")
        return self.rows([[row[k] if k >= 0 else None for k in order] for row in data], f"{where}.data")

    def records(self, records: Any, where: str) -> np.ndarray:
        """A list of {column: value} records -> array."""
        if not isinstance(records, list):
            raise RequestError("expected a list of records ({column: value})", where)
        names, index = self.names, self.index
        rows = []
        for i, record in enumerate(records):
            if not isinstance(record, dict):
                raise RequestError("expected a record: a mapping of column name to value", f"{where}[{i}]")
            if len(record) != self.width or any(name not in index for name in record):
                self._check_keys(record, f"{where}[{i}]")
            rows.append([record.get(name) for name in names])
        return self.rows(rows, where, lambda i, j: f"{where}[{i}].{names[j]}")

    def columns(self, columns: Any, where: str) -> np.ndarray:
        """A {column: [values]} mapping (columnar) -> array."""
        if not isinstance(columns, dict):
            raise RequestError("expected a mapping of column name to a list of values", where)
        self._check_keys(columns, where)
        lengths = set()
        for name, values in columns.items():
            if not isinstance(values, list):
                raise RequestError("expected a list of values", f"{where}.{name}")
            lengths.add(len(values))
        if len(lengths) != 1:
            raise RequestError("every column needs the same number of values", where)
        size = lengths.pop()
        data = [columns.get(name) or [None] * size for name in self.names]
        names = self.names
        return self.rows([list(row) for row in zip(*data, strict=True)], where,
                         lambda i, j: f"{where}.{names[j]}[{i}]")

    def _unknown(self, name: str) -> str:
        close = difflib.get_close_matches(name, self.names, n=1, cutoff=0.75)
        return f"unknown column {name!r}; " + (f"did you mean {close[0]!r}?" if close
                                               else f"the signature's columns are: {', '.join(self.names)}")

    def _check_keys(self, record: dict, where: str) -> None:
        for name in record:
            if name not in self.index:
                raise RequestError(self._unknown(name), f"{where}.{name}")
        for column in self.inputs:
            if column.required and column.name not in record:
                raise RequestError(f"column {column.name!r} is required", f"{where}.{column.name}")

    # -- outputs --------------------------------------------------------------------------------
    def cast(self, predictions: Any) -> np.ndarray:
        """Model output as an array, numeric output columns cast to their declared dtype."""
        array = np.asarray(predictions)
        if self.outputs and len({c.type for c in self.outputs}) == 1:
            kind = self.outputs[0].type
            if kind in _NUMERIC and array.dtype != NUMPY_DTYPES[kind] and array.dtype.kind in "biuf":
                array = array.astype(NUMPY_DTYPES[kind])
        return array

    def output_records(self, predictions: np.ndarray) -> list[dict]:
        """Predictions as records keyed by the output column names (`prediction` when undeclared)."""
        names = [c.name for c in self.outputs] if self.outputs else ["prediction"]
        values = predictions.tolist()
        if predictions.ndim == 1 or len(names) == 1:
            name = names[0]
            return [{name: v[0] if isinstance(v, list) and len(v) == 1 else v} for v in values]
        return [dict(zip(names, row, strict=False)) for row in values]


# -- pydantic models for /predict and the OpenAPI document ----------------------------------------
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
        fields[f"c{j}"] = ((annotation, Field(alias=column.name)) if column.required
                           else (annotation | None, Field(None, alias=column.name)))
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
