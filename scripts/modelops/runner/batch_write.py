"""Writing scored rows: CSV (with a header), JSON Lines or Parquet (the format from the file's suffix), and
the rejects file (JSON Lines). A writer writes where it is told; `batch_files` makes the file whole or absent.
Parquet needs pyarrow, imported only for a Parquet file."""

from __future__ import annotations

import csv
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import orjson

from modelops.errors import ModelopsError
from modelops.runner.batch_read import PYARROW_HINT, format_of

KEPT = "kept"  # the type of a --keep column: text in Parquet, whatever each row holds (1, then "A2", or nothing)
_ARROW_TYPES = {"boolean": "bool_", "integer": "int32", "long": "int64", "float": "float32", "double": "float64",
                "string": "string", "binary": "string", "datetime": "string", KEPT: "string"}


def _text(value: Any) -> str | None:
    """A kept value as Parquet text: a string as it is, a boolean as JSON's, a list or mapping as JSON."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        return orjson.dumps(value, default=str).decode()
    return str(value)


class Writer(ABC):
    """Rows (lists in the order of `names`) to one file; `types` are column types (None: inferred)."""

    def __init__(self, path: Path, names: list[str], types: list[str | None]) -> None:
        self.path, self.names, self.types = path, names, types

    @abstractmethod
    def write(self, rows: list[list]) -> None: ...

    @abstractmethod
    def close(self) -> None: ...


class _Csv(Writer):
    def __init__(self, path: Path, names: list[str], types: list[str | None]) -> None:
        super().__init__(path, names, types)
        self._text = path.open("w", encoding="utf-8", newline="")
        self._csv = csv.writer(self._text)
        self._csv.writerow(names)

    def write(self, rows: list[list]) -> None:
        self._csv.writerows(rows)

    def close(self) -> None:
        self._text.close()


class _Jsonl(Writer):
    def __init__(self, path: Path, names: list[str], types: list[str | None]) -> None:
        super().__init__(path, names, types)
        self._handle = path.open("wb")

    def write(self, rows: list[list]) -> None:
        names = self.names
        self._handle.write(b"".join(orjson.dumps(dict(zip(names, row, strict=True)), default=str,
                                                 option=orjson.OPT_APPEND_NEWLINE | orjson.OPT_SERIALIZE_NUMPY)
                                    for row in rows))

    def close(self) -> None:
        self._handle.close()


class _Parquet(Writer):
    def __init__(self, path: Path, names: list[str], types: list[str | None]) -> None:
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:  # not installed (or broken)
            raise ModelopsError("the pyarrow package is missing", field="--output", hint=PYARROW_HINT) from None
        super().__init__(path, names, types)
        self._pa, self._pq = pa, pq
        self._writer: Any = None

    def write(self, rows: list[list]) -> None:
        if not rows:
            return
        pa = self._pa
        columns = [list(map(_text, c)) if t == KEPT else c
                   for c, t in zip(zip(*rows, strict=True), self.types, strict=True)]
        if self._writer is None:  # the first rows fix the schema of the columns typed None
            arrays = [self._array(c, n, getattr(pa, _ARROW_TYPES[t])() if t else None)
                      for c, n, t in zip(columns, self.names, self.types, strict=True)]
            table = pa.Table.from_arrays(arrays, names=self.names)
            self._writer = self._pq.ParquetWriter(str(self.path), table.schema)
        else:
            schema = self._writer.schema
            table = pa.Table.from_arrays([self._array(c, f.name, f.type) for c, f in zip(columns, schema, strict=True)],
                                         schema=schema)
        self._writer.write_table(table)

    def _array(self, values: list, name: str, kind: Any) -> Any:
        """The Arrow array of one column; a ModelopsError when its values do not fit its type (an output
        column the signature does not type that changes type between chunks)."""
        try:
            return self._pa.array(values, type=kind)
        except (self._pa.ArrowException, OverflowError) as exc:
            fixed = f"the Parquet type {kind} its first rows gave it" if kind is not None else "one Parquet type"
            raise ModelopsError(f"column {name!r} does not fit {fixed}: {exc}", field="--output",
                                hint="declare the model's outputs in its signature, or write CSV or JSON Lines"
                                ) from None

    def close(self) -> None:
        if self._writer is None:  # no row: an empty file with the columns
            pa = self._pa
            fields = [pa.field(n, getattr(pa, _ARROW_TYPES[t])() if t else pa.string())
                      for n, t in zip(self.names, self.types, strict=True)]
            self._writer = self._pq.ParquetWriter(str(self.path), pa.schema(fields))
        self._writer.close()


_WRITERS: dict[str, type[Writer]] = {"csv": _Csv, "jsonl": _Jsonl, "parquet": _Parquet}


def writer(path: Path, shown: str, names: list[str], types: list[str | None]) -> Writer:
    """The writer of the format `shown`'s suffix names, writing to `path`."""
    return _WRITERS[format_of(shown)](path, names, types)


class Rejects:
    """The rejects file: one JSON line per row that was not scored (`Reject.to_json`)."""

    def __init__(self, path: Path) -> None:
        self._handle = path.open("wb")

    def write(self, records: list[dict]) -> None:
        self._handle.write(b"".join(orjson.dumps(r, default=str, option=orjson.OPT_APPEND_NEWLINE)
                                    for r in records))

    def close(self) -> None:
        self._handle.close()
