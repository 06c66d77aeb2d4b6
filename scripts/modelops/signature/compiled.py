"""The signature compiled once: the checker of inputs (to the 2-D array a model predicts on) and outputs.

`rows`, `records`, `split` and `columns` turn request data into the array, raising `SignatureError` for
the first problem, named by its field (`dataframe_split.data[3][1]`, `inputs[0].sepal_width`);
`problems` lists every problem of a list of records, for reports (`validate`). The runner, `validate`,
the load check and `smoke` all check data with it.
"""

from __future__ import annotations

import difflib
import math
import operator
from collections.abc import Callable, Container, Iterator, Sequence
from itertools import chain
from typing import Any

import numpy as np

from modelops.signature.probabilities import PREDICT_PROBA
from modelops.signature.types import NUMERIC, NUMPY_DTYPES, TYPES, ColumnSpec, is_int, is_number

_FLOAT32_MAX = float(np.finfo(np.float32).max)
_NUMBERS = {float, int}
_SEQUENCES = {list, tuple}
EMPTY = "the batch is empty: send at least one row"
NOT_RECORDS = "expected a list of records ({column: value})"
NOT_RECORD = "expected a record: a mapping of column name to value"
Cell = Callable[[int, int], str]


class SignatureError(Exception):
    """Data that does not fit the signature: what is wrong, the field it is in, and its row if any."""

    def __init__(self, message: str, field: str = "", row: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.row = row


def _finite(value: Any) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:  # an integer beyond the float64 range
        return False


def _accepts(column: ColumnSpec) -> Callable[[Any], bool]:
    accepts = TYPES[column.type][0]
    if column.type == "float":
        return lambda v: accepts(v) and abs(v) <= _FLOAT32_MAX
    if column.type == "double":
        return lambda v: accepts(v) and _finite(v)
    return accepts


def _doubles(rows: list, width: int) -> np.ndarray | None:
    """The float64 array of rows of `width` ints and floats (or of columns, `width` their length), all finite
    and summing to a finite number; None when it is not that simple."""
    if not set(map(type, chain.from_iterable(rows))) <= _NUMBERS:
        return None
    try:
        array = np.fromiter(chain.from_iterable(rows), dtype=np.float64, count=len(rows) * width)
    except OverflowError:
        return None
    array = array.reshape(len(rows), width)
    return array if math.isfinite(array.sum()) else None  # an overflowing sum only takes the slow path


class CompiledSignature:
    """Input columns compiled into checks and a dtype; output columns into checks, a cast and record keys."""

    def __init__(self, inputs: Sequence[ColumnSpec], outputs: Sequence[ColumnSpec] | None = None,
                 method: str = "predict") -> None:
        self.inputs = list(inputs)
        self.outputs = list(outputs) if outputs else None
        # predict_proba: one probability per class, the class labels in column order (signature.probabilities)
        self.probabilities = method == PREDICT_PROBA
        self.labels = [getattr(c, "label", None) for c in self.outputs or []] if self.probabilities else None
        self.names = [c.name for c in self.inputs]
        self.index = {name: i for i, name in enumerate(self.names)}
        self.width = len(self.names)
        types = {c.type for c in self.inputs}
        if len(types) == 1:
            self.dtype = NUMPY_DTYPES[types.pop()]
        else:
            # integers alone stay exact in int64; with floats they are scored as float64, as models take them
            self.dtype = np.int64 if types <= {"integer", "long"} else np.float64 if types <= set(NUMERIC) else object
        self._checks = [(_accepts(c), c.required) for c in self.inputs]
        self._keys = set(self.names)
        self._record_row = (operator.itemgetter(*self.names) if self.width > 1
                            else lambda record: tuple(record[n] for n in self.names))
        # The fast path: every column a required double, so a row is fine when each cell is an int or float.
        self.all_doubles = all(c.type == "double" and c.required for c in self.inputs)

    # -- inputs: the first problem raises ---------------------------------------------------------
    def rows(self, rows: Any, where: str, cell: Cell | None = None) -> np.ndarray:
        """Positional rows (each a list in signature order) -> 2-D array.

        `cell(i, j)` names the field of row i, column j in errors (default `where[i][j]`).
        """
        if not isinstance(rows, list):
            raise SignatureError("expected a list of rows", where)
        if not rows:
            raise SignatureError(EMPTY, where)
        if self.all_doubles and set(map(type, rows)) <= _SEQUENCES and set(map(len, rows)) == {self.width} \
                and (array := _doubles(rows, self.width)) is not None:
            return array
        _raise_first(self._row_problems(rows, where, cell or (lambda i, j: f"{where}[{i}][{j}]")))
        dtype = self.dtype
        if dtype not in (np.float64, np.float32, object) and any(v is None for r in rows for v in r):
            dtype = object  # a null in an optional integer or boolean column
        return np.array(rows, dtype=dtype)

    def records(self, records: Any, where: str) -> np.ndarray:
        """A list of {column: value} records -> array."""
        if not isinstance(records, list):
            raise SignatureError(NOT_RECORDS, where)
        names, index = self.names, self.index
        if set(map(type, records)) == {dict} and all(r.keys() == self._keys for r in records):
            return self.rows(list(map(self._record_row, records)), where, lambda i, j: f"{where}[{i}].{names[j]}")
        rows = []
        for i, record in enumerate(records):
            if not isinstance(record, dict):
                raise SignatureError(NOT_RECORD, f"{where}[{i}]", i)
            if len(record) != self.width or any(name not in index for name in record):
                _raise_first(self._key_problems(record, f"{where}[{i}]", i))
            rows.append([record.get(name) for name in names])
        return self.rows(rows, where, lambda i, j: f"{where}[{i}].{names[j]}")

    def order(self, columns: Any, where: str) -> list[int] | None:
        """For named columns, the position of each signature column in them (None: already in order)."""
        if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
            raise SignatureError("expected a list of column names", where)
        if columns == self.names:
            return None
        for k, name in enumerate(columns):
            if name not in self.index:
                raise SignatureError(self._unknown(name), f"{where}[{k}]")
        if len(set(columns)) != len(columns):
            raise SignatureError("a column is named twice", where)
        missing = [c.name for c in self.inputs if c.name not in columns and c.required]
        if missing:
            raise SignatureError(f"required column(s) missing: {', '.join(missing)}", where)
        position = {name: k for k, name in enumerate(columns)}
        return [position.get(name, -1) for name in self.names]

    def split(self, columns: Any, data: Any, where: str) -> np.ndarray:
        """A pandas "split" frame (columns in any order, or none: signature order) -> array."""
        order = None if columns is None else self.order(columns, f"{where}.columns")
        if order is None:
            return self.rows(data, f"{where}.data")
        if not isinstance(data, list):
            raise SignatureError("expected a list of rows", f"{where}.data")
        for i, row in enumerate(data):
            if not isinstance(row, list) or len(row) != len(columns):
                raise SignatureError(f"expected a list of {len(columns)} values, one per column",
                                     f"{where}.data[{i}]", i)
        return self.rows([[row[k] if k >= 0 else None for k in order] for row in data], f"{where}.data")

    def columns(self, columns: Any, where: str) -> np.ndarray:
        """A {column: [values]} mapping (columnar) -> array."""
        if not isinstance(columns, dict):
            raise SignatureError("expected a mapping of column name to a list of values", where)
        for name in columns:
            if name not in self.index:
                raise SignatureError(self._unknown(name), f"{where}.{name}")
        self._require(columns, where)
        for name, column_values in columns.items():
            if not isinstance(column_values, list):
                raise SignatureError("expected a list of values", f"{where}.{name}")
        return self.tensors([columns.get(name) for name in self.names], where)

    def tensors(self, values: list[list | None], where: str, cell: Cell | None = None) -> np.ndarray:
        """One list of values per signature column (None: not sent) -> array; `cell(i, j)` names the value i
        of column j in errors (default `where.name[i]`)."""
        self._require({name for name, v in zip(self.names, values, strict=True) if v is not None}, where)
        lengths = {len(v) for v in values if v is not None}
        if len(lengths) != 1:
            raise SignatureError("every column needs the same number of values", where)
        size = lengths.pop()
        if (array := self.doubles(values)) is not None:
            return array
        names = self.names
        filled = [v if v is not None else [None] * size for v in values]
        return self.rows([list(row) for row in zip(*filled, strict=True)], where,
                         cell or (lambda i, j: f"{where}.{names[j]}[{i}]"))

    def doubles(self, values: list[list | None]) -> np.ndarray | None:
        """The [rows, columns] float64 array of one list of values per signature column, when every column is a
        required double and every value a finite int or float; None when it is not that simple."""
        if not (self.all_doubles and values and values[0]) or any(len(v) != len(values[0]) for v in values):
            return None
        array = _doubles(values, len(values[0]))
        return None if array is None else np.ascontiguousarray(array.T)

    def _require(self, sent: Container[str], where: str) -> None:
        for column in self.inputs:
            if column.required and column.name not in sent:
                raise SignatureError(f"column {column.name!r} is required", f"{where}.{column.name}")

    # -- inputs: every problem, for reports -------------------------------------------------------
    def problems(self, records: Any, where: str) -> list[SignatureError]:
        """Every problem of a list of records (unknown, missing, null or mistyped values), in order."""
        if not isinstance(records, list) or not records:
            return [SignatureError("expected a non-empty list of records ({column: value})", where)]
        found: list[SignatureError] = []
        for i, record in enumerate(records):
            if not isinstance(record, dict):
                found.append(SignatureError(NOT_RECORD, f"{where}[{i}]", i))
                continue
            found += self._key_problems(record, f"{where}[{i}]", i)
            found += [SignatureError(problem, f"{where}[{i}].{name}", i) for j, name in enumerate(self.names)
                      if name in record and (problem := self._cell_problem(j, record[name]))]
        return found

    def row_problems(self, rows: list, cell: Cell) -> list[SignatureError]:
        """Every problem of positional rows (as `rows` reads them), each naming its row's index, for reports
        (batch scoring); `cell(i, j)` names the field of row i, column j."""
        return list(self._row_problems(rows, "", cell))

    def _row_problems(self, rows: list, where: str, cell: Cell) -> Iterator[SignatureError]:
        for i, row in enumerate(rows):
            if not isinstance(row, list | tuple):
                yield SignatureError(f"expected a list of {self.width} values in signature order "
                                     f"({', '.join(self.names)})", f"{where}[{i}]", i)
            elif len(row) != self.width:
                yield SignatureError(f"expected {self.width} values ({', '.join(self.names)}), got {len(row)}",
                                     f"{where}[{i}]", i)
            else:
                for j, value in enumerate(row):
                    if problem := self._cell_problem(j, value):
                        yield SignatureError(problem, cell(i, j), i)

    def _key_problems(self, record: dict, where: str, row: int) -> Iterator[SignatureError]:
        for name in record:
            if name not in self.index:
                yield SignatureError(self._unknown(name), f"{where}.{name}", row)
        for column in self.inputs:
            if column.required and column.name not in record:
                yield SignatureError(f"column {column.name!r} is required", f"{where}.{column.name}", row)

    def _cell_problem(self, j: int, value: Any) -> str:
        accepts, required = self._checks[j]
        if value is None:
            return f"column {self.names[j]!r} is required: null is not allowed" if required else ""
        if accepts(value):
            return ""
        column = self.inputs[j]
        if column.type == "float" and is_number(value) and _finite(value):
            return f"column {column.name!r}: {value!r} is out of the float32 range (±{_FLOAT32_MAX:.2g})"
        if column.type in ("float", "double") and is_int(value):
            return f"column {column.name!r}: an integer of {len(str(abs(value)))} digits is out of the float64 range"
        if column.type in ("integer", "long") and is_int(value):
            bits = 32 if column.type == "integer" else 64
            shown = f"an integer of {len(str(abs(value)))} digits" if abs(value) >= 10**20 else str(value)
            return f"column {column.name!r}: {shown} is out of the {bits}-bit integer range ({column.type})"
        return f"column {column.name!r}: {value!r} is not {TYPES[column.type][1]} ({column.type})"

    def _unknown(self, name: str) -> str:
        close = difflib.get_close_matches(name, self.names, n=1, cutoff=0.75)
        return f"unknown column {name!r}; " + (f"did you mean {close[0]!r}?" if close
                                               else f"the signature's columns are: {', '.join(self.names)}")

    # -- outputs ----------------------------------------------------------------------------------
    def check_outputs(self, predictions: Any, rows: int) -> list[str]:
        """Problems of model predictions (as JSON-able data) against the signature's outputs."""
        columns = self.outputs or []
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
            integral = column.type in ("long", "integer")
            wrong = [v for v in array[:, j]
                     if not (accepts(v) or (integral and is_number(v) and float(v).is_integer()))]
            if wrong:
                problems.append(f"output {column.name!r}: {wrong[0]!r} is not {words} ({column.type})")
        return problems

    def cast(self, predictions: Any) -> np.ndarray:
        """Model output as an array, numeric output columns cast to their declared dtype."""
        array = np.asarray(predictions)
        if self.outputs and len({c.type for c in self.outputs}) == 1:
            kind = self.outputs[0].type
            if kind in NUMERIC and array.dtype != NUMPY_DTYPES[kind] and array.dtype.kind in "biuf":
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


def _raise_first(problems: Iterator[SignatureError]) -> None:
    first = next(problems, None)
    if first is not None:
        raise first
