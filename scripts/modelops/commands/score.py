"""`modelops score MODEL --input FILE --output FILE`: batch scoring, with a progress bar on a terminal."""

from __future__ import annotations

import sys
import time

import click

from modelops.commands.output import TerminalReporter, echo_json

_BAR = 30  # characters of the bar
_EVERY_S = 0.2  # the bar is redrawn at most this often


class ProgressBar(TerminalReporter):
    """A TerminalReporter that draws `advance` as one progress line on stderr, redrawn in place."""

    def __init__(self, results_on_stderr: bool = False) -> None:
        super().__init__(results_on_stderr)
        self._start = time.monotonic()
        self._drawn = 0.0
        self._shown = False

    def advance(self, done: int, total: int | None, unit: str) -> None:
        now = time.monotonic()
        finished = total is not None and done >= total
        if now - self._drawn < _EVERY_S and not finished:
            return
        self._drawn = now
        rate = done / max(now - self._start, 1e-9)
        if total:
            filled = min(_BAR, _BAR * done // total)
            line = f"[{'#' * filled}{'.' * (_BAR - filled)}] {100 * done // total:3d} %  {_amount(done, unit)} " \
                   f"of {_amount(total, unit)}, {_amount(int(rate), unit)}/s"
        else:
            line = f"{_amount(done, unit)}, {_amount(int(rate), unit)}/s"
        click.echo(f"\r{line}\x1b[K", err=True, nl=False)
        self._shown = True

    def progress(self, line: str) -> None:
        self._end_bar()
        super().progress(line)

    def result(self, line: str) -> None:
        self._end_bar()
        super().result(line)

    def _end_bar(self) -> None:
        if self._shown:
            click.echo("", err=True)
            self._shown = False


def _amount(value: int, unit: str) -> str:
    if unit == "B":
        for scale, name in ((1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")):
            if value >= scale:
                return f"{value / scale:.1f} {name}"
        return f"{value} B"
    return f"{value:,} {unit}"


@click.command("score")
@click.argument("target", default=".", envvar="MODELOPS_MODEL")
@click.option("--env", "environment", envvar="MODELOPS_ENV",
              help="Score with the version this environment serves (its primary; a canary and shadows are not "
                   "used)  [default: production]")
@click.option("--version", envvar="MODELOPS_VERSION",
              help="Score with this version instead of an environment's (an --env that does not route to it is "
                   "not used: a note says so).")
@click.option("--input", "source", required=True, metavar="FILE|URI",
              help="The rows: .csv (with a header), .jsonl or .parquet; a path, file://, s3://, gs://, wasbs://, "
                   "abfss://, mlflow-artifacts:/ or http(s)://.")
@click.option("--output", required=True, metavar="FILE|URI",
              help="Where the scored rows go (.csv, .jsonl or .parquet): the kept columns, the inputs, the "
                   "outputs and model_version; a path, file://, s3://, gs://, wasbs://, abfss:// or "
                   "mlflow-artifacts:/.")
@click.option("--rejects", metavar="FILE|URI",
              help="Write the rows that cannot be scored here (JSON Lines, so a .jsonl or .ndjson name: row, line, "
                   "problems, input) and score the others; without it, such rows fail the run and nothing is "
                   "written.")
@click.option("--keep", multiple=True, metavar="COLUMN",
              help="A column of the input carried to the output as it is, not scored (an id; repeatable).")
@click.option("--chunk-rows", type=click.IntRange(1, 1_000_000), help="Rows read and scored at a time "
              "(memory grows with it, not with the file)  [default: 10000]")
@click.option("--progress/--no-progress", default=None,
              help="A progress bar on stderr  [default: when stderr is a terminal]")
@click.option("--format", "fmt", type=click.Choice(("text", "json")), default="text", show_default=True,
              help="text for people, json for machines (the summary on stdout).")
def command(target: str, environment: str | None, version: str | None, source: str, output: str,
            rejects: str | None, keep: tuple[str, ...], chunk_rows: int | None, progress: bool | None,
            fmt: str) -> int:
    """Score a file with a model folder's environment, one version of it, or a models:/ URI: the same
    signature checks, loading and predictions as `modelops serve`, in chunks of rows.

    \b
    Examples:
      modelops score models/iris --env production --input rows.csv --output scored.csv
      modelops score models/iris --version 1.1.0 --input rows.parquet --output scored.parquet --rejects bad.jsonl
      python -m modelops score /model --input s3://bucket/in.csv --output s3://bucket/out.csv   # in an image
    """
    from modelops import api

    shown = sys.stderr.isatty() if progress is None else progress
    machine = fmt == "json"  # stdout holds the summary only
    reporter = ProgressBar(machine) if shown else TerminalReporter(machine)
    scored = api.score(target, source, output, environment, version, rejects=rejects, keep=keep,
                       chunk_rows=chunk_rows, reporter=reporter)
    if scored.note:
        reporter.progress(f"note: {scored.note}")
    if fmt == "json":
        echo_json({"model": scored.model, "version": scored.version, "environment": scored.environment,
                   "rows": scored.rows, "rejected": scored.rejected, "output": scored.output,
                   "rejects": scored.rejects, "seconds": round(scored.seconds, 3)})
    else:
        rejected = f"; {scored.rejected:,} rejected -> {scored.rejects}" if scored.rejects else ""
        reporter.result(f"scored {scored.rows:,} rows with {scored.model} {scored.version} in "
                        f"{scored.seconds:.1f} s -> {scored.output}{rejected}")
    return 0
