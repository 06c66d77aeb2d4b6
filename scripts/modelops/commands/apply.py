"""`modelops apply [PATHS] [--build [--push] [--images-out FILE]]`."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import click

from modelops import workspace as repo


@click.command("apply")
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--build", "build_images", is_flag=True,
              help="Then build every runner image of each model (per version and per multi-version deployment).")
@click.option("--push", "push_images", is_flag=True,
              help="With --build: push the images and record each reference with its digest in the registry.")
@click.option("--images-out", type=click.Path(dir_okay=False, path_type=Path),
              help="With --build: write the images as `build --format json` does (for `render --images`).")
def command(paths: tuple[str, ...], build_images: bool, push_images: bool, images_out: Path | None) -> None:
    """Make the MLflow registry match git: register versions, set tags, move aliases. Idempotent.

    PATHS are model folders (default: every folder under models/). Refuses, before any write, a
    manifest that changes the artifact of a registered version. With --build --push, also builds and
    pushes the runner images and tags the versions and the registered model with their digests.
    """
    from modelops import api, settings

    if (push_images or images_out) and not build_images:
        raise click.UsageError("--push and --images-out go with --build")
    root = repo.root()
    config = settings.load(root)
    folders = repo.model_folders(paths, root)
    result = api.apply(folders, root, config, every_model=not paths,
                       done=lambda action: click.echo(f"  + {action.text()}"),
                       log=lambda line: click.echo(line, err=True))
    for drift in result.drift:
        if drift.kind == "not-in-git":
            click.echo(f"  ! {drift.message}")
    for note in result.notes:
        click.echo(f"  i {note}")
    if result.actions:
        click.echo(f"applied {len(result.actions)} action(s) to {config.tracking_uri}")
    else:
        click.echo(f"nothing to do: the registry at {config.tracking_uri} matches git")
    if not build_images:
        return
    images, recorded = api.apply_images(folders, root, config, push=push_images,
                                        log=lambda line: click.echo(line, err=True),
                                        done=lambda action: click.echo(f"  + {action.text()}"))
    if images_out:
        _write_json(images_out, {"images": [image.to_json() for image in images]})
    if not push_images:
        click.echo(f"built {len(images)} image(s); not pushed, so no image recorded in the registry")
    elif recorded:
        click.echo(f"built and pushed {len(images)} image(s); recorded their digests in {len(recorded)} update(s)")
    else:
        click.echo(f"built and pushed {len(images)} image(s): nothing new, the registry already records "
                   "these digests")


def _write_json(path: Path, document: dict) -> None:
    """Write `document` whole or not at all (a temporary file renamed into place)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, prefix=f".{path.name}.", delete=False) as out:
        json.dump(document, out, indent=2)
        out.write("\n")
    os.replace(out.name, path)
