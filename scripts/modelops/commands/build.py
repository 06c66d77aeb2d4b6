"""`modelops build [PATHS]`: build (and push) runner images with the Docker SDK."""

from __future__ import annotations

from pathlib import Path

import click

from modelops.commands.options import image_selection
from modelops.commands.output import echo_json, workspace


@click.command("build")
@image_selection
@click.option("--push", "push_images", is_flag=True,
              help="Push to the image registry (credentials: MODELOPS_REGISTRY_USERNAME/PASSWORD or "
                   "Docker's config).")
@click.option("--wheelhouse", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Install from these wheels instead of downloading them (air-gapped builds).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def command(paths: tuple[str, ...], versions: tuple[str, ...], envs: tuple[str, ...], push_images: bool,
            wheelhouse: Path | None, fmt: str) -> int:
    """Build one image per version, and one per deployment routing to several versions.

    Tags <registry>/<model>:<tag> and :<tag>-<git commit>; progress goes to stderr.

    \b
    Examples:
      modelops build models/iris --env production
      modelops build --push --format json > images.json
    """
    from modelops import api

    ws = workspace()
    images = api.build(ws, ws.folders(paths), versions, envs, push=push_images, wheelhouse=wheelhouse)
    if fmt == "json":
        echo_json({"images": [image.to_json() for image in images]})
    else:
        for image in images:
            click.echo(f"{image.ref}  {image.digest or image.id}  {image.size / 1e6:.0f} MB")
    return 0
