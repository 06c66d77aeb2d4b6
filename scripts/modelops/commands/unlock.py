"""`modelops unlock MODEL [--force]`."""

from __future__ import annotations

import click

from modelops.commands.output import workspace


@click.command("unlock")
@click.argument("model")
@click.option("--force", is_flag=True, help="Release the lock even though its holder looks alive.")
def command(model: str, force: bool) -> int:
    """Release the lock an apply left on MODEL in the registry (an apply that was killed, or lost its host).

    A lock whose holder looks alive (renewed within its lease, or a process of this machine that still
    runs) is refused unless --force. `modelops plan` shows who holds a lock and for how long.

    \b
    Examples:
      modelops unlock iris
      modelops unlock iris --force
    """
    from modelops import api

    click.echo(api.unlock(workspace(), model, force=force))
    return 0
