"""`modelops validate [PATHS]`."""

from __future__ import annotations

import click

from modelops.commands.output import format_option, print_problems, workspace


@click.command("validate")
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--offline", is_flag=True, help="Skip fetching remote artifacts and loading models.")
@format_option
def command(paths: tuple[str, ...], offline: bool, fmt: str) -> int:
    """Check manifests, requirements, examples and artifacts; exit 0 only when all is well.

    PATHS are model folders (default: every folder under models/).

    \b
    Examples:
      modelops validate
      modelops validate models/iris --offline --format github
    """
    from modelops import api

    ws = workspace()
    folders = ws.folders(paths)
    problems = api.validate(ws, folders, offline=offline)
    summary = (f"{len(folders)} model(s) valid" if not problems
               else f"{len(problems)} problem(s) in {len(folders)} model(s) checked")
    print_problems(problems, fmt, summary)
    return 1 if problems else 0
