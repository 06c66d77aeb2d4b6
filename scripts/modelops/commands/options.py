"""Options shared by the image commands: PATHS plus --version and --env."""

from __future__ import annotations

from collections.abc import Callable

import click


def image_selection(command: Callable) -> Callable:
    """PATHS plus --version/--env (each repeatable), shared by render and build."""
    command = click.option("--env", "envs", multiple=True,
                           help="Only the image serving this environment (repeatable).")(command)
    command = click.option("--version", "versions", multiple=True,
                           help="Only the image of this version (repeatable).")(command)
    return click.argument("paths", nargs=-1, type=click.Path())(command)
