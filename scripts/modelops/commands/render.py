"""`modelops render [PATHS] [--target image|kubernetes|kserve|compose]`."""

from __future__ import annotations

from pathlib import Path

import click

from modelops.commands.options import image_selection
from modelops.commands.output import echo_json, workspace

TARGETS = ("image", "kubernetes", "kserve", "compose")
DEFAULT_OUT = {"kubernetes": "deploy", "kserve": "deploy", "compose": "deploy-compose"}


@click.command("render")
@image_selection
@click.option("--target", type=click.Choice(TARGETS), default="image", show_default=True,
              help="image: each runner image's build context; kubernetes: Deployment, Service, HPA and PDB "
                   "per environment; kserve: a KServe InferenceService per environment; compose: a Docker Compose "
                   "file per environment, for a Docker host.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="image: write here (one image only; default build/images/<model>-<tag>/); "
                   "kubernetes/kserve: the tree a GitOps engine watches (default deploy/); compose: the tree of "
                   "Compose files (default deploy-compose/).")
@click.option("--wheels", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="image: put the wheels of this folder in the context (for `docker build` elsewhere).")
@click.option("--images", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="kubernetes/kserve/compose: `modelops build --format json` output, to deploy images by digest.")
@click.option("--format", "fmt", type=click.Choice(("text", "json")), default="text", show_default=True)
def command(paths: tuple[str, ...], versions: tuple[str, ...], envs: tuple[str, ...], target: str,
            out: Path | None, wheels: Path | None, images: Path | None, fmt: str) -> int:
    """Render from templates/: image build contexts (Dockerfile, .dockerignore, model, runner, requirements),
    the Kubernetes manifests of each environment with a kustomization per environment, or a Docker Compose
    file per environment.

    Prints the path of each build context written, or how many files of the tree were written, unchanged
    and removed (JSON: `files`, `written`, `removed`, `notes`). With no PATHS, the tree is
    pruned to the models there are.

    \b
    Examples:
      modelops render models/iris --version 1.0.0
      modelops render --target kubernetes --images images.json --out deploy
      modelops render --target compose --images images.json --env production
    """
    from modelops import api
    from modelops.errors import ModelopsError
    from modelops.files import shown

    ws = workspace()
    if target == "image":
        if images:
            raise ModelopsError("--images goes with --target kubernetes, kserve or compose")
        for context in api.render(ws, ws.folders(paths), versions, envs, out=out, wheels=wheels):
            click.echo(context.path)
        return 0
    if wheels or versions or len(envs) > 1:
        raise ModelopsError(f"--target {target} takes PATHS, one --env, --out, --images and --format",
                            hint="--version and --wheels go with --target image")
    folders = ws.folders(paths)
    out = out or Path(DEFAULT_OUT[target])
    out = out if out.is_absolute() else Path.cwd() / out
    env = envs[0] if envs else None
    before = _tree(out)
    if target == "compose":
        files, notes = api.render_compose(ws, folders, out, env=env, images=images, prune=not paths)
    else:
        files, notes = api.render_kubernetes(ws, folders, out, target="deployment" if target == "kubernetes"
                                             else target, env=env, images=images, prune=not paths)
    written = [path for path in files if before.get(path) != path.read_bytes()]
    removed = sorted(path for path in before if not path.exists())
    if fmt == "json":
        echo_json({"files": [shown(path, Path.cwd()) for path in files],
                   "written": [shown(path, Path.cwd()) for path in written],
                   "removed": [shown(path, Path.cwd()) for path in removed], "notes": notes})
        return 0
    for note in notes:
        click.echo(f"note: {note}", err=True)
    gone = f", {len(removed)} removed" if removed else ""
    click.echo(f"{len(written)} file(s) written, {len(files) - len(written)} unchanged{gone} for {len(folders)} "
               f"model(s) in {shown(out, Path.cwd())}")
    return 0


def _tree(out: Path) -> dict[Path, bytes]:
    """The .yaml files of a rendered tree (in `out` and two folders down) and their bytes, to tell afterwards
    which files the render wrote and removed."""
    return {path: path.read_bytes() for pattern in ("*.yaml", "*/*.yaml", "*/*/*.yaml")
            for path in out.glob(pattern) if path.is_file()}
