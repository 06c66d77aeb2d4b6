"""`modelops changed --base REF`."""

from __future__ import annotations

import click

from modelops import workspace as repo
from modelops.commands.output import echo_json


@click.command("changed")
@click.option("--base", required=True, help="The git ref to compare with, e.g. origin/main.")
def command(base: str) -> None:
    """Print the models a change touches as JSON: {"models": [...], "deleted": [...], "all": bool}.

    A change under templates/ or scripts/ (or to pyproject.toml) touches every model.
    """
    from modelops.git import changed

    echo_json(changed(repo.root(), base))
