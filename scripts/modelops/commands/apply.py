"""`modelops apply [PATHS] [--build [--push] [--images-out FILE]]`."""

from __future__ import annotations

import json
from pathlib import Path

import click

from modelops.commands.output import echo_json, workspace


@click.command("apply")
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--build", "build_images", is_flag=True,
              help="Then build every runner image of each model (per version and per multi-version deployment).")
@click.option("--push", "push_images", is_flag=True,
              help="With --build: push the images and record each reference with its digest in the registry.")
@click.option("--images-out", type=click.Path(dir_okay=False, path_type=Path),
              help="With --build: write the images as `build --format json` does (for `render --images`).")
@click.option("--format", "fmt", type=click.Choice(("text", "json")), default="text", show_default=True,
              help="json: {actions, drift, notes, images, recorded} on stdout (progress on stderr).")
def command(paths: tuple[str, ...], build_images: bool, push_images: bool, images_out: Path | None,
            fmt: str) -> int:
    """Make the MLflow registry match git: register versions, set tags, move aliases. Idempotent.

    PATHS are model folders (default: every folder under models/). Refuses, before any write, a
    manifest that changes the artifact of a registered version. With --build --push, also builds and
    pushes the runner images and tags the versions and the registered model with their digests.

    \b
    Examples:
      modelops apply
      modelops apply --build --push --images-out images.json
      modelops apply --build --push --format json > applied.json
    """
    from modelops import api
    from modelops.files import check_file, write_text

    if (push_images or images_out) and not build_images:
        raise click.UsageError("--push and --images-out go with --build")
    ws = workspace(fmt)
    if images_out:
        check_file(images_out)
    applied = api.apply(ws, ws.folders(paths), every_model=not paths)
    result, uri = applied.plan, ws.settings.tracking_uri
    say = click.echo if fmt == "text" else lambda line: click.echo(line, err=True)
    for drift in result.drift:
        if drift.kind == "not-in-git":
            say(f"  ! {drift.message}")
    for note in result.notes:
        say(f"  i {note}")
    say(f"applied {len(result.actions)} action(s) to {uri}" if result.actions
        else f"nothing to do: the registry at {uri} matches git")
    images, recorded = api.apply_images(ws, applied.models, push=push_images) if build_images else ([], [])
    if fmt == "json":  # the plan's shape (what was carried out), the images as `build --format json` lists them
        echo_json({**result.to_json(), "images": [image.to_json() for image in images],
                   "recorded": [action.to_json() for action in recorded]})
    if not build_images:
        return 0
    if images_out:
        images_out.parent.mkdir(parents=True, exist_ok=True)
        write_text(images_out, json.dumps({"images": [image.to_json() for image in images]}, indent=2) + "\n")
    if not push_images:
        say(f"built {len(images)} image(s); not pushed, so no image recorded in the registry")
    elif recorded:
        say(f"built and pushed {len(images)} image(s); recorded their digests in {len(recorded)} update(s)")
    else:
        say(f"built and pushed {len(images)} image(s): nothing new, the registry already records these digests")
    return 0
