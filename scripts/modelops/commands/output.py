"""Printing for the commands: results for people (text), machines (json) and GitHub (workflow annotations),
and the reporter that shows progress on the terminal."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click

from modelops.errors import Problem
from modelops.reporter import Reporter

if TYPE_CHECKING:
    from modelops.manifest.edit import EditResult
    from modelops.workspace import Workspace

FORMATS = ("text", "json", "github")
format_option = click.option("--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True,
                             help="text for people, json for machines, github for workflow annotations.")


class TerminalReporter(Reporter):
    """Progress on stderr, results on stdout (on stderr too when stdout is for a machine: `results_on_stderr`)."""

    def __init__(self, results_on_stderr: bool = False) -> None:
        self.results_on_stderr = results_on_stderr

    def progress(self, line: str) -> None:
        click.echo(line, err=True)

    def result(self, line: str) -> None:
        click.echo(line, err=self.results_on_stderr)


def workspace(fmt: str = "text") -> Workspace:
    """The command's workspace: the repository around the working folder, reporting on the terminal (only
    on stderr when the command prints JSON)."""
    from modelops.workspace import Workspace

    return Workspace.find(TerminalReporter(results_on_stderr=fmt == "json"))


def echo_edit(result: EditResult, dry_run: bool = False) -> None:
    """What an edit of a manifest did: its diff and notes on stdout, then one line saying whether it wrote."""
    if result.diff:
        click.echo(result.diff, nl=False)
    for note in result.notes:
        click.echo(f"  i {note}")
    if result.written:
        click.echo(f"wrote {result.file}")
    elif result.diff and dry_run:
        click.echo(f"dry run: {result.file} is not written")
    elif not result.diff:
        click.echo(f"nothing to change in {result.file}")


def echo_json(data: object) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=False))


def _escape(text: str, properties: bool = False) -> str:
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return text.replace(":", "%3A").replace(",", "%2C") if properties else text


def print_problems(problems: list[Problem], fmt: str, summary: str) -> None:
    """Print `problems` in `fmt`; `summary` closes the text form."""
    if fmt == "json":
        echo_json({"ok": not problems, "problems": [p.to_json() for p in problems]})
        return
    for p in problems:
        if fmt == "github":
            props = f"file={_escape(p.file, True)}" + (f",line={p.line}" if p.line else "")
            props += f",title={_escape(p.field or 'modelops', True)}"
            message = p.message + (f"\n{p.hint}" if p.hint else "")
            click.echo(f"::error {props}::{_escape(message)}")
        else:
            click.echo(p.render(), err=True)
    if fmt == "text":
        click.echo(summary, err=bool(problems))
