"""`modelops render [PATHS] [--target image|kubernetes|kserve]`."""

from __future__ import annotations

from pathlib import Path

import click

from modelops.commands import options as selection

TARGETS = ("image", "kubernetes", "kserve")


@click.command("render")
@selection.options
@click.option("--target", type=click.Choice(TARGETS), default="image", show_default=True,
              help="image: each runner image's build context; kubernetes: Deployment, Service, HPA and PDB "
                   "per environment; kserve: a KServe InferenceService per environment.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="image: write here (one image only; default build/images/<model>-<tag>/); "
                   "kubernetes/kserve: the tree a GitOps engine watches (default deploy/).")
@click.option("--wheels", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="image: put the wheels of this folder in the context (for `docker build` elsewhere).")
@click.option("--images", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="kubernetes/kserve: `modelops build --format json` output, to deploy images by digest.")
@click.option("--format", "fmt", type=click.Choice(("text", "json")), default="text", show_default=True)
def command(paths: tuple[str, ...], versions: tuple[str, ...], envs: tuple[str, ...], target: str,
            out: Path | None, wheels: Path | None, images: Path | None, fmt: str) -> None:
    """Render from templates/: image build contexts (Dockerfile, .dockerignore, model, runner, requirements),
    or the Kubernetes manifests of each environment with a kustomization per environment.

    Prints the path of each build context written, or a summary of the Kubernetes tree.
    """
    from modelops.errors import ModelopsError

    if target == "image":
        if images:
            raise ModelopsError("--images goes with --target kubernetes or kserve")
        _render_images(paths, versions, envs, out, wheels)
        return
    if wheels or versions or len(envs) > 1:
        raise ModelopsError(f"--target {target} takes PATHS, one --env, --out, --images and --format",
                            hint="--version and --wheels go with --target image")
    from modelops.kubernetes import render as kubernetes_render

    kubernetes_render.render(paths, envs[0] if envs else None, out or Path("deploy"),
                             "deployment" if target == "kubernetes" else target, images, fmt)


def _render_images(paths: tuple[str, ...], versions: tuple[str, ...], envs: tuple[str, ...], out: Path | None,
                   wheels: Path | None) -> None:
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
