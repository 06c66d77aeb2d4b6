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

_ARROW_TYPES = {"boolean": "bool_", "integer": "int32", "long": "int64", "float": "float32", "double": "float64",
                "string": "string", "binary": "string", "datetime": "string"}


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
        columns = list(zip(*rows, strict=True))
        if self._writer is None:  # the first rows fix the schema of the columns typed None
            arrays = [pa.array(c, type=getattr(pa, _ARROW_TYPES[t])() if t else None)
                      for c, t in zip(columns, self.types, strict=True)]
            table = pa.Table.from_arrays(arrays, names=self.names)
            self._writer = self._pq.ParquetWriter(str(self.path), table.schema)
        else:
            schema = self._writer.schema
            table = pa.Table.from_arrays([pa.array(c, type=f.type) for c, f in zip(columns, schema, strict=True)],
                                         schema=schema)
        self._writer.write_table(table)

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
