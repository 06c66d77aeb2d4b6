"""Reading a file to score in chunks of rows: CSV (with a header), JSON Lines (one record per line) or Parquet.

Each reader yields `Chunk`s of at most `size` rows, in the signature's column order with the values typed
(CSV text parsed by the column types, as the runner reads text/csv), and the rows it could not read at all
(a CSV row with the wrong number of values or that the csv module refuses, a cell that is not a number, a
line that is not a JSON object), each a `Reject` naming its row number (and line): 1 for the first data row
(the line after a CSV's header, the first record of JSON Lines or Parquet), blank lines not counted. Only
one chunk is in memory at a time.
Columns named in `keep` are carried to the output as they are, neither checked nor scored.
Parquet needs pyarrow, imported only for a Parquet file.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from modelops.errors import ModelopsError
from modelops.signature import text
from modelops.signature.compiled import CompiledSignature, SignatureError

FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet", ".pq": "parquet"}
PYARROW_HINT = "Parquet files need pyarrow: add pyarrow==<version> to the model's requirements.txt " \
               "(or pip install pyarrow), or score a CSV or JSON Lines file"


@dataclass(frozen=True)
class Reject:
    """A row that is not scored: its row number (and file line), its problems as (field, message), the input."""

    row: int
    problems: list[tuple[str, str]]
    input: Any
    line: int | None = None

    def to_json(self) -> dict:
        return {"row": self.row, "line": self.line,
                "problems": [{"field": f, "message": m} for f, m in self.problems], "input": self.input}


@dataclass
class Chunk:
    """Rows to check and score (signature order), their row numbers, kept values and raw input; and rejects."""

    rows: list[list] = field(default_factory=list)
    numbers: list[int] = field(default_factory=list)
    lines: list[int] | None = None
    kept: list[list] = field(default_factory=list)
    raw: list[Any] = field(default_factory=list)  # what `describe` turns into a reject's input
    rejects: list[Reject] = field(default_factory=list)
    done: int = 0  # progress: bytes (CSV, JSON Lines) or rows (Parquet) read so far
    describe: Callable[[Any], Any] = lambda raw: raw


@dataclass
class Table:
    """An open input: its chunks, and the progress total (bytes or rows; None when unknown)."""

    chunks: Iterator[Chunk]
    total: int | None
    unit: str


def format_of(name: str) -> str:
    """csv, jsonl or parquet, from a file name's suffix."""
    suffix = Path(name).suffix.lower()
    if suffix not in FORMATS:
        raise ModelopsError(f"{name}: cannot tell the format from the suffix {suffix or '(none)'!r}",
                            hint=f"name the file with one of: {', '.join(FORMATS)}")
    return FORMATS[suffix]


def open_table(path: Path, shown: str, signature: CompiledSignature, keep: Sequence[str], size: int) -> Table:
    """The chunks of the file at `path` (`shown` names it in errors)."""
    kind = format_of(shown)
    if kind == "parquet":
        return _parquet(path, shown, signature, keep, size)
    total = path.stat().st_size
    reader = _csv if kind == "csv" else _jsonl
    return Table(reader(path, shown, signature, list(keep), size), total, "B")


def _columns(names: list[str], keep: list[str], signature: CompiledSignature, shown: str, line: int | None
             ) -> tuple[list[int], list[int]]:
    """For a file's column names: the position of each signature column in them (-1: absent, optional) and
    of each kept column; a ModelopsError when they do not fit the signature."""
    missing = [k for k in keep if k not in names]
    if missing:
        raise ModelopsError(f"--keep names column(s) the file does not have: {', '.join(missing)}", file=shown,
                            line=line, hint=f"its columns are: {', '.join(names)}")
    kept = [names.index(k) for k in keep]
    scored = [n for n in names if n not in keep]
    try:
        order = signature.order(scored, "columns")
    except SignatureError as exc:
        raise ModelopsError(exc.message, file=shown, line=line, field="columns",
                            hint="name the signature's columns, once each (--keep carries other columns along)"
                            ) from None
    positions = list(range(len(scored))) if order is None else order
    index = [i for i, n in enumerate(names) if n not in keep]  # scored column k is file column index[k]
    return [index[k] if k >= 0 else -1 for k in positions], kept


FIELD_LIMIT = 8 * 1024 * 1024  # characters of one CSV value: the runner's default request body limit


def _not_utf8(path: Path, shown: str) -> ModelopsError:
    """The error for a file that is not UTF-8: the line and the byte of its first undecodable byte."""
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            try:
                line.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError as exc:
                return ModelopsError(f"not UTF-8: byte 0x{line[exc.start]:02x} ({exc.start + 1} bytes into the "
                                     "line) is not valid UTF-8 text", file=shown, line=number,
                                     hint="save the file as UTF-8 (a spreadsheet's \"CSV UTF-8\"), or convert it "
                                          "with iconv -f <its encoding> -t utf-8")
    return ModelopsError("not UTF-8", file=shown, hint="save the file as UTF-8")


def _malformed(exc: csv.Error, first: int, last: int) -> str:
    """What a csv.Error says of the row on lines first-last, in words."""
    if "end of data" in str(exc):
        return (f"a quoted value is never closed: a \" on line {first} opens it and the file ends inside it"
                + (f" (at line {last})" if last > first else ""))
    if "field limit" in str(exc):
        return f"a value longer than {FIELD_LIMIT:,} characters, the most a CSV value may hold here"
    return f"not CSV: {exc} (a value holding a \" must be quoted, its \" doubled: \"say \"\"hi\"\"\")"


def _records(reader: Any) -> Iterator[tuple[int, list[str] | None, str]]:
    """(the line a row starts on, its values or None, what is wrong with it) for each row of a csv.reader:
    a row the csv module refuses is reported and reading goes on at the next line."""
    while True:
        first = reader.line_num + 1
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield first, None, _malformed(exc, first, reader.line_num)
            continue
        yield first, values, ""


def _csv(path: Path, shown: str, signature: CompiledSignature, keep: list[str], size: int) -> Iterator[Chunk]:
    csv.field_size_limit(max(csv.field_size_limit(), FIELD_LIMIT))
    with path.open("rb") as raw:
        reader = csv.reader(io.TextIOWrapper(raw, encoding="utf-8-sig", newline=""), strict=True)
        records = _records(reader)
        try:
            _, header, problem = next(records, (1, None, ""))
        except UnicodeDecodeError:
            raise _not_utf8(path, shown) from None
        if problem:
            raise ModelopsError(f"the header row: {problem}", file=shown, line=1,
                                hint="the first row names the columns, separated by commas")
        if not header:
            raise ModelopsError("the CSV file is empty: it needs a header row", file=shown, line=1)
        positions, kept = _columns(header, keep, signature, shown, 1)
        parsers = [text.parser(c) for c in signature.inputs]
        width, number = len(header), 0

        def typed(line: list[str]) -> list:
            return [parse(line[k]) if k >= 0 else None for parse, k in zip(parsers, positions, strict=True)]

        def describe(line: list[str]) -> dict:
            return dict(zip(header, line, strict=True))

        every_double = (not kept and positions == list(range(width))
                        and all(c.type in ("double", "float") and c.required for c in signature.inputs))
        chunk = Chunk(lines=[], describe=describe)
        try:
            for first, line, problem in records:
                if line is not None and not line:
                    continue  # a blank line
                number += 1
                if line is None:
                    chunk.rejects.append(Reject(number, [("", problem)], None, first))
                elif len(line) != width:
                    chunk.rejects.append(Reject(number, [("", f"expected {width} values, one per column, got "
                                                         f"{len(line)}")], line, first))
                else:
                    try:
                        values = list(map(float, line)) if every_double else typed(line)
                    except ValueError:
                        values = None
                    if values is None:
                        problems = _cell_problems(signature, parsers, positions, line)
                        if problems:
                            chunk.rejects.append(Reject(number, problems, describe(line), first))
                        else:  # an empty cell: null, which the signature check refuses or accepts
                            values = typed(line)
                    if values is not None:
                        chunk.rows.append(values)
                        chunk.numbers.append(number)
                        chunk.lines.append(first)
                        chunk.kept.append([line[k] for k in kept])
                        chunk.raw.append(line)
                if len(chunk.rows) + len(chunk.rejects) >= size:
                    chunk.done = raw.tell()
                    yield chunk
                    chunk = Chunk(lines=[], describe=describe)
        except UnicodeDecodeError:
            raise _not_utf8(path, shown) from None
        chunk.done = raw.tell()
        yield chunk


def _cell_problems(signature: CompiledSignature, parsers: list, positions: list[int], line: list[str]
                   ) -> list[tuple[str, str]]:
    """Every problem of a CSV row some cell of which does not parse, in column order: the cells that do not
    parse, and what the signature says of the others."""
    problems: dict[str, str] = {}
    values = []
    for column, parse, k in zip(signature.inputs, parsers, positions, strict=True):
        try:
            values.append(parse(line[k]) if k >= 0 else None)
        except ValueError:
            values.append(None)
            problems[column.name] = text.problem(column, line[k])
    if problems:
        names = signature.names
        for problem in signature.row_problems([values], lambda i, j: names[j]):
            problems.setdefault(problem.field, problem.message)  # an unparsed cell keeps its own message
    return [(c.name, problems[c.name]) for c in signature.inputs if c.name in problems]


def _jsonl(path: Path, shown: str, signature: CompiledSignature, keep: list[str], size: int) -> Iterator[Chunk]:
    names, keys, keeping = signature.names, set(signature.names), set(keep)
    number = 0
    chunk = Chunk(lines=[])
    with path.open("rb") as handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            number += 1
            problem = ""
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                record, problem = line.decode("utf-8", "replace").rstrip("\n"), f"not JSON: {exc}"
            if not problem and not isinstance(record, dict):
                problem = "expected a JSON object: a record {column: value}"
            if not problem:
                kept_values = [record.get(k) for k in keep]
                if (record.keys() - keeping if keeping else record.keys()) != keys:
                    try:
                        signature.order([k for k in record if k not in keeping], "")
                    except SignatureError as exc:
                        problem = exc.message
            if problem:
                chunk.rejects.append(Reject(number, [("", problem)], record, line_number))
            else:
                chunk.rows.append([record.get(n) for n in names])
                chunk.numbers.append(number)
                chunk.lines.append(line_number)
                chunk.kept.append(kept_values)
                chunk.raw.append(record)
            if len(chunk.rows) + len(chunk.rejects) >= size:
                chunk.done = handle.tell()
                yield chunk
                chunk = Chunk(lines=[])
        chunk.done = handle.tell()
        yield chunk


def _parquet(path: Path, shown: str, signature: CompiledSignature, keep: Sequence[str], size: int) -> Table:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:  # not installed (or broken)
        raise ModelopsError(f"{shown}: the pyarrow package is missing", hint=PYARROW_HINT) from None

    def unreadable(exc: Exception, row: int | None = None) -> ModelopsError:
        where = f" (after row {row})" if row else ""
        return ModelopsError(f"not a readable Parquet file{where}: {exc}", file=shown,
                             hint="the file is damaged or not Parquet: write it again, or score a CSV or JSON "
                                  "Lines file")

    try:
        parquet = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as exc:
        raise unreadable(exc) from None
    names = parquet.schema_arrow.names
    positions, kept = _columns(names, list(keep), signature, shown, None)
    temporal = {k for k, c in zip(positions, signature.inputs, strict=True)
                if k >= 0 and c.type == "datetime" and pa.types.is_temporal(parquet.schema_arrow.field(k).type)}

    def chunks() -> Iterator[Chunk]:
        done = 0
        try:
            for batch in parquet.iter_batches(batch_size=size):
                columns = [(batch.column(k).cast(pa.string()) if k in temporal else batch.column(k)).to_pylist()
                           for k in range(batch.num_columns)]
                count = batch.num_rows
                chunk = Chunk(rows=[[columns[k][i] if k >= 0 else None for k in positions] for i in range(count)],
                              numbers=list(range(done + 1, done + count + 1)),
                              kept=[[columns[k][i] for k in kept] for i in range(count)], raw=list(range(count)),
                              describe=lambda i, columns=columns: {n: c[i] for n, c in
                                                                   zip(names, columns, strict=True)})
                done += count
                chunk.done = done
                yield chunk
        except (pa.ArrowException, OSError) as exc:  # a damaged row group
            raise unreadable(exc, done) from None

    return Table(chunks(), parquet.metadata.num_rows, "rows")
