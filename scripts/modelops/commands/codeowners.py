"""`modelops codeowners [--check]`."""

from __future__ import annotations

import click

from modelops.commands.output import workspace


@click.command("codeowners")
@click.option("--check", is_flag=True, help="Write nothing; exit 1 when the file is out of date.")
def command(check: bool) -> int:
    """Write .github/CODEOWNERS from each manifest's owners (lines outside its generated block are kept).

    \b
    Examples:
      modelops codeowners
      modelops codeowners --check
    """
    from modelops import api
    from modelops.manifest.codeowners import PATH

    ws = workspace()
    if check:
        problems = api.codeowners_problems(ws)
        for problem in problems:
            click.echo(problem.render(), err=True)
        return 1 if problems else 0
    click.echo(f"{PATH} {'written' if api.codeowners(ws) else 'already up to date'}")
    return 0
