"""`modelops history MODEL [--env ENV]`."""

from __future__ import annotations

import click

from modelops.commands.output import echo_json, workspace


@click.command("history")
@click.argument("model")
@click.option("--env", help="Only this environment.")
@click.option("--format", "fmt", type=click.Choice(("text", "json")), default="text", show_default=True,
              help="text for people, json for machines.")
def command(model: str, env: str | None, fmt: str) -> int:
    """Which versions each environment of MODEL served (main, canary and weight, shadows), from when to
    when, and the commit and author that changed it: read from model.yaml in each commit of the branch.

    A commit whose manifest does not parse is skipped, with a note.

    \b
    Examples:
      modelops history iris
      modelops history iris --env production --format json
    """
    from modelops import api

    found = api.history(workspace(fmt), model, env)
    if fmt == "json":
        echo_json(found.to_json())
        return 0
    rows = [("ENVIRONMENT", "SERVED", "FROM", "UNTIL", "COMMIT", "AUTHOR")]
    rows += [(s.environment, s.serving.describe(), _when(s.commit.date), _when(s.until.date) if s.until else "now",
              s.commit.sha[:12], f"{s.commit.author} <{s.commit.email}>") for s in found.spans]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)) + "  " + row[-1])
    for note in found.notes:
        click.echo(f"  i {note}")
    return 0


def _when(date: str) -> str:
    """`2026-12-01T15:08:50+00:00` as `2026-12-01 15:08:50 +00:00`."""
    return date.replace("T", " ").replace("+", " +").replace("Z", " +00:00")
