"""`modelops digest PATH`."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("digest")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
def command(paths: tuple[Path, ...]) -> int:
    """Print the sha256 of each artifact: of a file's bytes, or the canonical digest of a folder.

    \b
    Example:
      modelops digest models/churn/artifacts/0.1.0/model.skops
    """
    from modelops import api

    for path in paths:
        click.echo(f"{api.digest(path)}  {path}")
    return 0
