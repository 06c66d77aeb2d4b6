"""The signature's column types: which JSON values each accepts, and the NumPy dtype it is scored as."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np


class ColumnSpec(Protocol):
    """What the signature needs to know of a column (the manifest's `Column` is one)."""

    @property
    def name(self) -> str: ...

    @property
    def type(self) -> str: ...

    @property
    def required(self) -> bool: ...


def is_int(value: Any) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_)


def is_number(value: Any) -> bool:
    return is_int(value) or (isinstance(value, float | np.floating))


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
    "integer": (lambda v: is_int(v) and -(2**31) <= v < 2**31, "a 32-bit integer"),
    "long": (lambda v: is_int(v) and -(2**63) <= v < 2**63, "an integer"),
    "float": (is_number, "a number"),
    "double": (is_number, "a number"),
    "string": (lambda v: isinstance(v, str), "a string"),
    "binary": (_is_base64, "base64 text"),
    "datetime": (_is_datetime, "an ISO 8601 date-time"),
}

NUMPY_DTYPES = {"boolean": np.bool_, "integer": np.int32, "long": np.int64, "float": np.float32,
                "double": np.float64, "string": object, "binary": object, "datetime": object}
NUMERIC = ("integer", "long", "float", "double")
