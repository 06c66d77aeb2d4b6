"""Batch scoring (`modelops score`): a file scored in chunks by one version, as the runner scores requests.

The model is resolved and loaded as `serve` does (`loading.resolve`, `loading.load_version`: the digest
checked, the classes checked, the example scored), every row is checked by the compiled signature, and each
chunk is predicted as the runner predicts a request (`batching.predict_rows`, then `signature.cast`), so the
outputs are the online runner's. An environment with a canary or shadows is scored by its primary version
alone (the version whose answers a caller gets when no canary is drawn); the output names the version of
every row in the `model_version` column.

Rows that do not fit the signature, or that the model refuses (a ValueError or TypeError on that row
alone), are rejects: with a rejects file they are written there and the others scored; without one, the
first chunk holding any stops the run with their row numbers, and nothing is written.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from modelops import flavors
from modelops.errors import ModelopsError, Problem
from modelops.runner import batch_files, batch_read, batch_write
from modelops.runner.batching import predict_rows
from modelops.runner.loading import LoadFailed, ServedModel, load_version, warm_up_rows
from modelops.signature.compiled import CompiledSignature, SignatureError

VERSION_COLUMN = "model_version"
DEFAULT_CHUNK_ROWS = 10_000
SHOWN_REJECTS = 5  # rejected rows an error lists
Progress = Callable[[int, int | None, str], None]  # (done, total or None, unit)


@dataclass(frozen=True)
class Scored:
    """What a batch scoring did."""

    model: str
    version: str
    environment: str
    rows: int  # scored and written
    rejected: int
    output: str
    rejects: str | None
    seconds: float
    note: str = ""  # what of the environment was not used (its canary, its shadows)


def score(served: ServedModel, source: str, output: str, *, rejects: str | None = None, keep: Sequence[str] = (),
          chunk_rows: int = DEFAULT_CHUNK_ROWS, progress: Progress | None = None) -> Scored:
    """Score the file `source` (a path or URI) with `served`'s primary version into `output` (and the rows
    that cannot be scored into `rejects`); raises ModelopsError for bad input, writing nothing."""
    start = time.perf_counter()
    signature, version = served.signature, served.primary
    batch_files.check_distinct({"--input": source, "--output": output, "--rejects": rejects})
    batch_read.format_of(source)
    names = _output_columns(signature, keep)
    batch_read.format_of(output)
    batch_files.check_output(output, "--output")
    if rejects:
        if batch_read.format_of(rejects) != "jsonl":
            raise ModelopsError(f"{rejects}: the rejects file is JSON Lines, whatever its name says",
                                field="--rejects", hint="name it .jsonl (or .ndjson)")
        batch_files.check_output(rejects, "--rejects")
    try:
        predictor = load_version(served, version, warm_up_rows(served))
    except LoadFailed as exc:
        raise ModelopsError(str(exc), hint="fix the model (modelops validate says more)") from None
    types = [batch_write.KEPT] * len(keep) + [c.type for c in signature.inputs] + _output_types(signature) + ["string"]
    scored = rejected = 0
    with tempfile.TemporaryDirectory(prefix="modelops-score-") as folder, contextlib.ExitStack() as stack:
        scratch = Path(folder)
        table = batch_read.open_table(batch_files.local_input(source, scratch), source, signature, keep, chunk_rows)
        out_path, publish_output = stack.enter_context(batch_files.staged(output, scratch))
        rejects_path, publish_rejects = stack.enter_context(batch_files.staged(rejects, scratch)) if rejects \
            else (None, None)
        out = batch_write.writer(out_path, output, names, types)
        bad = batch_write.Rejects(rejects_path) if rejects_path else None
        try:
            for chunk in table.chunks:
                rows, found = _score_chunk(signature, predictor, chunk, version)
                if found and bad is None:
                    raise _located(source, found, chunk)
                if bad is not None:
                    bad.write([r.to_json() for r in found])
                out.write(rows)
                scored, rejected = scored + len(rows), rejected + len(found)
                if progress:
                    progress(chunk.done, table.total, table.unit)
        finally:
            out.close()
            if bad is not None:
                bad.close()
        publish_output()  # first: rejects never claim a run whose output did not land
        if publish_rejects:
            publish_rejects()
    note = ""
    if served.canary or served.shadows:
        unused = ([f"canary {served.canary} ({served.weight} %)"] if served.canary else []) + \
                 [f"shadow {v}" for v in served.shadows]
        note = f"{' and '.join(unused)} not used: batch scoring uses the primary version {version}"
    return Scored(served.model, version, served.environment, scored, rejected, output, rejects,
                  time.perf_counter() - start, note)


def _output_columns(signature: CompiledSignature, keep: Sequence[str]) -> list[str]:
    outputs = [c.name for c in signature.outputs] if signature.outputs else ["prediction"]
    names = [*keep, *signature.names, *outputs, VERSION_COLUMN]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        kept = bool(set(twice) & set(keep))
        raise ModelopsError(f"the output would have column(s) {', '.join(map(repr, twice))} twice",
                            field="--keep" if kept else "signature",
                            hint=f"the output holds the kept columns, the inputs, the outputs and {VERSION_COLUMN}: "
                                 + ("keep only columns that are none of those" if kept else
                                    "rename the signature's output columns so that none is an input's or "
                                    f"{VERSION_COLUMN}"))
    return names


def _output_types(signature: CompiledSignature) -> list[str | None]:
    return [c.type for c in signature.outputs] if signature.outputs else [None]


def _score_chunk(signature: CompiledSignature, predictor: flavors.Predictor, chunk: batch_read.Chunk,
                 version: str) -> tuple[list[list], list[batch_read.Reject]]:
    """The output rows of a chunk and its rejects (in row order)."""
    found = list(chunk.rejects)
    good, array = _fitting(signature, chunk, found)
    outputs: list = []
    if good:
        try:
            outputs = _predict(signature, predictor, array)
        except _Refused:  # one row or more the model refuses: find them, one by one
            kept = []
            for k, i in enumerate(good):
                try:
                    outputs += _predict(signature, predictor, array[k:k + 1])
                    kept.append(i)
                except _Refused as exc:
                    found.append(_reject(chunk, i, [("", f"the model cannot score this row: {exc}")]))
            good = kept
    found.sort(key=lambda r: r.row)
    rows = [[*chunk.kept[i], *chunk.rows[i], *out, version] for i, out in zip(good, outputs, strict=True)]
    return rows, found


def _fitting(signature: CompiledSignature, chunk: batch_read.Chunk, found: list[batch_read.Reject]
             ) -> tuple[list[int], np.ndarray | None]:
    """The indexes of the chunk's rows that fit the signature and their array; the others go to `found`."""
    if not chunk.rows:
        return [], None
    try:
        return list(range(len(chunk.rows))), signature.rows(chunk.rows, "rows")
    except SignatureError:
        pass
    names = signature.names
    problems: dict[int, list[tuple[str, str]]] = {}
    for problem in signature.row_problems(chunk.rows, lambda i, j: names[j]):
        problems.setdefault(problem.row if problem.row is not None else -1, []).append((problem.field, problem.message))
    found += [_reject(chunk, i, p) for i, p in problems.items()]
    good = [i for i in range(len(chunk.rows)) if i not in problems]
    return good, signature.rows([chunk.rows[i] for i in good], "rows") if good else None


def _reject(chunk: batch_read.Chunk, i: int, problems: list[tuple[str, str]]) -> batch_read.Reject:
    return batch_read.Reject(chunk.numbers[i], problems, chunk.describe(chunk.raw[i]),
                             chunk.lines[i] if chunk.lines is not None else None)


class _Refused(Exception):
    """The model refused its input (ValueError, TypeError): the message's first line."""


def _predict(signature: CompiledSignature, predictor: flavors.Predictor, array: np.ndarray) -> list[list]:
    """One output row (a list of the output columns' values) per row of `array`, as the runner predicts."""
    try:
        outputs = signature.cast(predict_rows(predictor.predict, array))
    except (ValueError, TypeError) as exc:
        raise _Refused(str(exc).strip().split("\n", 1)[0][:200]) from None
    except Exception as exc:
        raise ModelopsError(f"the model failed ({type(exc).__name__}): {str(exc)[:300]}",
                            hint="the rows fit the signature: check the model with modelops validate") from None
    values = outputs.tolist()
    if outputs.ndim == 1:
        return [[v] for v in values]
    if signature.outputs is None or len(signature.outputs) == 1:  # [N, 1], or an undeclared [N, k] output
        return [[v[0]] if len(v) == 1 else [v] for v in values]
    return values


def _located(source: str, found: list[batch_read.Reject], chunk: batch_read.Chunk) -> ModelopsError:
    """The error for rejects without a rejects file: the first few rows, where and why."""
    shown = [Problem(file=source, line=r.line, field=f"row {r.row}" + (f".{f}" if f else ""), message=m)
             for r in found[:SHOWN_REJECTS] for f, m in r.problems[:1]]
    more = len(found) - SHOWN_REJECTS
    last = chunk.numbers[-1] if chunk.numbers else found[-1].row
    summary = (f"{len(found)} row(s) up to row {max(last, found[-1].row)} do not fit the signature or the model"
               + (f" ({more} more than shown)" if more > 0 else "") + "; nothing was written")
    hint = "fix those rows, or pass --rejects FILE to score the others and write every bad row there"
    return ModelopsError(summary, file=source, hint=hint, problems=[*shown, Problem(file=source, message=summary,
                                                                                     hint=hint)])
