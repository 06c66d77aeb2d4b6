"""`modelops changed --base REF`."""

from __future__ import annotations

import click

from modelops.commands.output import echo_json, workspace


@click.command("changed")
@click.option("--base", required=True, help="The git ref to compare with, e.g. origin/main.")
def command(base: str) -> int:
    """Print the models a change touches as JSON: {"models": [...], "deleted": [...], "all": bool}.

    A change under templates/ or scripts/ (or to pyproject.toml) touches every model.

    \b
    Example:
      modelops changed --base origin/main
    """
    from modelops import api

    echo_json(api.changed(workspace(), base))
    return 0
