"""`modelops apply [PATHS] [--build [--push] [--images-out FILE]]`."""

from __future__ import annotations

import json
from pathlib import Path

import click

from modelops.commands.output import workspace


@click.command("apply")
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--build", "build_images", is_flag=True,
              help="Then build every runner image of each model (per version and per multi-version deployment).")
@click.option("--push", "push_images", is_flag=True,
              help="With --build: push the images and record each reference with its digest in the registry.")
@click.option("--images-out", type=click.Path(dir_okay=False, path_type=Path),
              help="With --build: write the images as `build --format json` does (for `render --images`).")
def command(paths: tuple[str, ...], build_images: bool, push_images: bool, images_out: Path | None) -> int:
    """Make the MLflow registry match git: register versions, set tags, move aliases. Idempotent.

    PATHS are model folders (default: every folder under models/). Refuses, before any write, a
    manifest that changes the artifact of a registered version. With --build --push, also builds and
    pushes the runner images and tags the versions and the registered model with their digests.

    \b
    Examples:
      modelops apply
      modelops apply --build --push --images-out images.json
    """
    from modelops import api
    from modelops.files import check_file, write_text

    if (push_images or images_out) and not build_images:
        raise click.UsageError("--push and --images-out go with --build")
    ws = workspace()
    if images_out:
        check_file(images_out)
    applied = api.apply(ws, ws.folders(paths), every_model=not paths)
    result, uri = applied.plan, ws.settings.tracking_uri
    for drift in result.drift:
        if drift.kind == "not-in-git":
            click.echo(f"  ! {drift.message}")
    for note in result.notes:
        click.echo(f"  i {note}")
    click.echo(f"applied {len(result.actions)} action(s) to {uri}" if result.actions
               else f"nothing to do: the registry at {uri} matches git")
    if not build_images:
        return 0
    images, recorded = api.apply_images(ws, applied.models, push=push_images)
    if images_out:
        images_out.parent.mkdir(parents=True, exist_ok=True)
        write_text(images_out, json.dumps({"images": [image.to_json() for image in images]}, indent=2) + "\n")
    if not push_images:
        click.echo(f"built {len(images)} image(s); not pushed, so no image recorded in the registry")
    elif recorded:
        click.echo(f"built and pushed {len(images)} image(s); recorded their digests in {len(recorded)} "
                   "update(s)")
    else:
        click.echo(f"built and pushed {len(images)} image(s): nothing new, the registry already records "
                   "these digests")
    return 0
