"""`modelops codeowners [--check]`."""

from __future__ import annotations

import sys

import click

from modelops import workspace as repo
from modelops.manifest import codeowners


@click.command("codeowners")
@click.option("--check", is_flag=True, help="Write nothing; exit 1 when the file is out of date.")
def command(check: bool) -> None:
    """Write .github/CODEOWNERS from each manifest's owners (lines outside its generated block are kept)."""
    root = repo.root()
    if check:
        problems = codeowners.repository_problems(root)
        for problem in problems:
            click.echo(problem.render(), err=True)
        sys.exit(1 if problems else 0)
    changed = codeowners.write(root)
    click.echo(f"{codeowners.PATH} {'written' if changed else 'already up to date'}")
