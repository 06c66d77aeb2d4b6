"""`modelops validate [PATHS]`."""

from __future__ import annotations

import sys

import click

from modelops import workspace as repo
from modelops.commands.output import format_option, print_problems


@click.command("validate")
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--offline", is_flag=True, help="Skip fetching remote artifacts and loading models.")
@format_option
def command(paths: tuple[str, ...], offline: bool, fmt: str) -> None:
    """Check manifests, requirements, examples and artifacts; exit 0 only when all is well.

    PATHS are model folders (default: every folder under models/).
    """
    from modelops.manifest.validate import validate

    root = repo.root()
    folders = repo.model_folders(paths, root)
    problems = validate(folders, root, offline=offline)
    summary = (f"{len(folders)} model(s) valid" if not problems
               else f"{len(problems)} problem(s) in {len(folders)} model(s) checked")
    print_problems(problems, fmt, summary)
    sys.exit(1 if problems else 0)
