"""`modelops plan [PATHS]`."""

from __future__ import annotations

import click

from modelops.commands.output import workspace


@click.command("plan")
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--format", "fmt", type=click.Choice(("text", "markdown", "json")), default="text",
              show_default=True, help="text for people, markdown for a pull request comment, json for machines.")
@click.option("--detailed-exitcode", is_flag=True,
              help="Exit 2 when there is something to do or drift (0: in sync, 1: error).")
@click.option("--images/--no-images", default=None,
              help="List the runner images with no recorded reference (built by `apply --build --push`). "
                   "Default: when the registry records images for any planned model.")
def command(paths: tuple[str, ...], fmt: str, detailed_exitcode: bool, images: bool | None) -> int:
    """Show what `apply` would change in the MLflow registry, and any drift from git.

    PATHS are model folders (default: every folder under models/; then registered models that git no
    longer lists are reported too).

    \b
    Examples:
      modelops plan
      modelops plan --format markdown --detailed-exitcode
    """
    from modelops import api
    from modelops.registry.report import render

    ws = workspace()
    result = api.plan(ws, ws.folders(paths), every_model=not paths, images=images)
    click.echo(render(result, fmt))
    api.refuse(result)
    return 2 if detailed_exitcode and (result.actions or result.drift) else 0
