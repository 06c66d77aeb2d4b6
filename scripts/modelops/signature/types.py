"""The signature's column types: checking example rows and model outputs against them."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import math
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np


def _is_int(value: Any) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_)


def _is_number(value: Any) -> bool:
    return _is_int(value) or (isinstance(value, float | np.floating))


def _is_base64(value: Any) -> bool:
    try:
        base64.b64decode(value, validate=True)
        return isinstance(value, str)
    except (binascii.Error, TypeError, ValueError):
        return False


def _is_datetime(value: Any) -> bool:
    try:
        dt.datetime.fromisoformat(value)
        return True
    except (TypeError, ValueError):
        return False


# type -> (accepts a JSON value, words for an error message)
TYPES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "boolean": (lambda v: isinstance(v, bool | np.bool_), "true or false"),
    "integer": (lambda v: _is_int(v) and -(2**31) <= v < 2**31, "a 32-bit integer"),
    "long": (lambda v: _is_int(v) and -(2**63) <= v < 2**63, "an integer"),
    "float": (_is_number, "a number"),
    "double": (_is_number, "a number"),
    "string": (lambda v: isinstance(v, str), "a string"),
    "binary": (_is_base64, "base64 text"),
    "datetime": (_is_datetime, "an ISO 8601 date-time"),
}

NUMPY_DTYPES = {"boolean": np.bool_, "integer": np.int32, "long": np.int64, "float": np.float32,
                "double": np.float64, "string": object, "binary": object, "datetime": object}


def check_rows(rows: Any, columns: Iterable, *, where: str = "row") -> list[str]:
    """Problems of a list of records against input columns (unknown, missing, null, mistyped)."""
    columns = list(columns)
    if not isinstance(rows, list) or not rows:
        return ["expected a non-empty list of records"]
    known = {c.name: c for c in columns}
    problems: list[str] = []
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            problems.append(f"{where} {i}: expected a mapping of column to value")
            continue
        problems += [f"{where} {i}: unknown column {name!r}" for name in row if name not in known]
        for column in columns:
            value = row.get(column.name)
            if value is None:
                if column.required:
                    problems.append(f"{where} {i}: column {column.name!r} is required")
            elif not TYPES[column.type][0](value):
                problems.append(f"{where} {i}: column {column.name!r}: {value!r} is not "
                                f"{TYPES[column.type][1]} ({column.type})")
    return problems


def check_outputs(predictions: Any, columns: list, rows: int) -> list[str]:
    """Problems of model predictions (as JSON-able data) against the signature's outputs."""
    array = np.asarray(predictions, dtype=object)
    if array.ndim == 1:
        array = array.reshape(-1, 1)
    if array.ndim != 2 or array.shape[0] != rows:
        return [f"the model returned shape {np.shape(predictions)} for {rows} rows"]
    if array.shape[1] != len(columns):
        return [f"the model returned {array.shape[1]} output column(s); the signature declares {len(columns)}"]
    problems = []
    for j, column in enumerate(columns):
        accepts, words = TYPES[column.type]
        wrong = [v for v in array[:, j] if not (accepts(v) or (column.type in ("long", "integer")
                                                              and _is_number(v) and float(v).is_integer()))]
        if wrong:
            problems.append(f"output {column.name!r}: {wrong[0]!r} is not {words} ({column.type})")
    return problems


def compare_outputs(predictions: Any, expected: list[dict], columns: list, rel_tol: float = 1e-6) -> list[str]:
    """Differences between predictions (already shaped like the outputs) and the expected records;
    numbers of type float/double compare within `rel_tol`, everything else exactly."""
    array = np.asarray(predictions, dtype=object).reshape(len(expected), len(columns))
    problems = []
    for i, record in enumerate(expected):
        for j, column in enumerate(columns):
            got, want = array[i, j], record.get(column.name)
            close = (math.isclose(float(got), float(want), rel_tol=rel_tol, abs_tol=1e-9)
                     if column.type in ("float", "double") and _is_number(got) and _is_number(want) else got == want)
            if not close:
                problems.append(f"row {i}: output {column.name!r} is {got!r}, the example expects {want!r}")
    return problems[:5]
