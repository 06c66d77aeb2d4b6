"""`modelops apply [PATHS]`."""

from __future__ import annotations

import click

from modelops import repo


@click.command("apply")
@click.argument("paths", nargs=-1, type=click.Path())
def command(paths: tuple[str, ...]) -> None:
    """Make the MLflow registry match git: register versions, set tags, move aliases. Idempotent.

    PATHS are model folders (default: every folder under models/). Refuses, before any write, a
    manifest that changes the artifact of a registered version.
    """
    from modelops import api, settings

    root = repo.root()
    config = settings.load(root)
    result = api.apply(repo.model_folders(paths, root), root, config, every_model=not paths,
                       done=lambda action: click.echo(f"  + {action.text()}"))
    for drift in result.drift:
        if drift.kind == "not-in-git":
            click.echo(f"  ! {drift.message}")
    if result.actions:
        click.echo(f"applied {len(result.actions)} action(s) to {config.tracking_uri}")
    else:
        click.echo(f"nothing to do: the registry at {config.tracking_uri} matches git")
