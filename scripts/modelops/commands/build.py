"""`modelops build [PATHS]`: build (and push) runner images with the Docker SDK."""

from __future__ import annotations

from pathlib import Path

import click

from modelops.commands import options as selection
from modelops.commands.output import echo_json


@click.command("build")
@selection.options
@click.option("--push", "push_images", is_flag=True,
              help="Push to the image registry (credentials: MODELOPS_REGISTRY_USERNAME/PASSWORD or "
                   "Docker's config).")
@click.option("--wheelhouse", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Install from these wheels instead of downloading them (air-gapped builds).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def command(paths: tuple[str, ...], versions: tuple[str, ...], envs: tuple[str, ...], push_images: bool,
            wheelhouse: Path | None, fmt: str) -> None:
    """Build one image per version, and one per deployment routing to several versions.

    Tags <registry>/<model>:<tag> and :<tag>-<git commit>; progress goes to stderr.
    """
    from modelops.images.build import build

    root, picked = selection.chosen(paths, versions, envs)
    images = []
    for loaded, chosen in picked:
        images += build(loaded, root, chosen, push_images=push_images, wheels=wheelhouse,
                        log=lambda line: click.echo(line, err=True))
    if fmt == "json":
        echo_json({"images": [image.to_json() for image in images]})
    else:
        for image in images:
            click.echo(f"{image.ref}  {image.digest or image.id}  {image.size / 1e6:.0f} MB")
