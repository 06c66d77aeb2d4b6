"""`modelops digest PATH`."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("digest")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
def command(paths: tuple[Path, ...]) -> None:
    """Print the sha256 of each artifact: of a file's bytes, or the canonical digest of a folder."""
    from modelops.artifacts import digest

    for path in paths:
        click.echo(f"{digest(path)}  {path}")
