"""`modelops render [PATHS]`: the build context of each runner image."""

from __future__ import annotations

from pathlib import Path

import click

from modelops.images import selection


@click.command("render")
@selection.options
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="Write here (one model and image only); default build/images/<model>-<tag>/.")
@click.option("--wheels", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Put the wheels of this folder in the context (for `docker build` elsewhere).")
def command(paths: tuple[str, ...], versions: tuple[str, ...], envs: tuple[str, ...], out: Path | None,
            wheels: Path | None) -> None:
    """Write each image's build context (Dockerfile, .dockerignore, model, runner, requirements).

    Prints the path of each context written.
    """
    from modelops.errors import ModelopsError
    from modelops.images import context

    root, picked = selection.chosen(paths, versions, envs)
    count = sum(len(chosen) for _, chosen in picked)
    if out is not None and count != 1:
        raise ModelopsError(f"--out takes one image, but {count} are selected",
                            hint="name one model folder and one --version or --env")
    for loaded, chosen in picked:
        for target in chosen:
            written = context.render(loaded, target, root, out or context.default_out(root, target), wheels,
                                     log=lambda line: click.echo(line, err=True))
            click.echo(written.path)
