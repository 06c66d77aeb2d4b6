"""`modelops smoke IMAGE|MODEL_DIR`: run an image, score its example, check, remove it."""

from __future__ import annotations

from pathlib import Path

import click

from modelops.commands.output import echo_json


@click.command("smoke")
@click.argument("subjects", nargs=-1, required=True, metavar="IMAGE|MODEL_DIR...")
@click.option("--version", "versions", multiple=True, help="With a MODEL_DIR: only this version's image.")
@click.option("--env", "envs", multiple=True, help="With a MODEL_DIR: only the image serving this environment.")
@click.option("--timeout", type=click.FloatRange(1), default=120, show_default=True,
              help="Seconds to wait for /ready.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def command(subjects: tuple[str, ...], versions: tuple[str, ...], envs: tuple[str, ...], timeout: float,
            fmt: str) -> None:
    """Run each image (or a model folder's built images), wait for /ready, score the example.

    The answer is checked against the signature and the example's expected outputs; the container is
    removed whatever happens (also on Ctrl-C). Exit 1 when any image fails.
    """
    from modelops.commands import options as selection
    from modelops.images import build, context
    from modelops.images.smoke import smoke

    engine = build.client()
    refs = []
    for subject in subjects:
        if Path(subject).is_dir():
            root, picked = selection.chosen((subject,), versions, envs)
            registry, commit = context.registry(root), context.git_commit(root)
            refs += [build.tags(registry, target, commit)[0] for _, chosen in picked for target in chosen]
        else:
            refs.append(subject)
    results = [smoke(engine, ref, timeout, log=lambda line: click.echo(line, err=True)) for ref in refs]
    if fmt == "json":
        echo_json({"smoke": [result.to_json() for result in results]})
