"""The one comparison of model outputs: floats within a relative 1e-6 (absolute 1e-9), the rest exactly.

Used by the load check and the smoke test (predictions against the example's outputs) and by shadow
agreement in the runner (a shadow's predictions against the served ones).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from modelops.signature.types import is_number

REL_TOL = 1e-6
ABS_TOL = 1e-9


def _same_value(got: Any, want: Any) -> bool:
    if is_number(got) and is_number(want) and (isinstance(got, float | np.floating)
                                               or isinstance(want, float | np.floating)):
        return math.isclose(float(got), float(want), rel_tol=REL_TOL, abs_tol=ABS_TOL)
    return bool(got == want)


_same_values = np.frompyfunc(_same_value, 2, 1)


def same(got: Any, want: Any) -> np.ndarray:
    """Element by element, whether `got` equals `want` (arrays of one shape, or values)."""
    got, want = np.asarray(got), np.asarray(want)
    kinds = got.dtype.kind + want.dtype.kind
    if "O" in kinds:
        return np.asarray(_same_values(got, want), dtype=bool)
    if set(kinds) <= set("biuf") and set(kinds) & set("f"):  # as math.isclose, element by element
        a, b = got.astype(np.float64), want.astype(np.float64)
        with np.errstate(invalid="ignore"):
            close = np.abs(a - b) <= np.maximum(REL_TOL * np.maximum(np.abs(a), np.abs(b)), ABS_TOL)
        return close | (a == b)
    return np.asarray(got == want, dtype=bool)


def differences(predictions: Any, expected: list[dict], columns: Sequence) -> list[tuple[int, str, Any, Any]]:
    """(row, output column, got, expected) wherever predictions shaped like the outputs differ from the
    expected records."""
    if not expected:
        return []
    got = np.asarray(predictions, dtype=object).reshape(len(expected), len(columns))
    want = np.array([[record.get(c.name) for c in columns] for record in expected], dtype=object)
    rows, cols = np.nonzero(~same(got, want))
    return [(int(i), columns[j].name, got[i, j], want[i, j]) for i, j in zip(rows, cols, strict=True)]


def compare_outputs(predictions: Any, expected: list[dict], columns: Sequence) -> list[str]:
    """The differences (at most 5) between predictions and the expected records, in words."""
    return [f"row {i}: output {name!r} is {got!r}, the example expects {want!r}"
            for i, name, got, want in differences(predictions, expected, columns)[:5]]
