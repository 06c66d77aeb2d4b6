"""`modelops smoke IMAGE|MODEL_DIR`: run an image, score its example, check, remove it."""

from __future__ import annotations

from pathlib import Path

import click

from modelops.commands.output import TerminalReporter, echo_json, workspace


@click.command("smoke")
@click.argument("subjects", nargs=-1, required=True, metavar="IMAGE|MODEL_DIR...")
@click.option("--version", "versions", multiple=True, help="With a MODEL_DIR: only this version's image.")
@click.option("--env", "envs", multiple=True, help="With a MODEL_DIR: only the image serving this environment.")
@click.option("--timeout", type=click.FloatRange(1), default=120, show_default=True,
              help="Seconds to wait for /ready.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def command(subjects: tuple[str, ...], versions: tuple[str, ...], envs: tuple[str, ...], timeout: float,
            fmt: str) -> int:
    """Run each image (or a model folder's built images), wait for /ready, score the example.

    The answer is checked against the signature and the example's expected outputs; the container is
    removed whatever happens (also on Ctrl-C). Exit 1 when any image fails.

    \b
    Examples:
      modelops smoke 127.0.0.1:5000/models/iris:1.0.0
      modelops smoke models/iris --env production
    """
    from modelops import api
    from modelops.workspace import Workspace

    # image references alone need no repository
    ws = workspace() if any(Path(s).is_dir() for s in subjects) else Workspace(Path.cwd(), TerminalReporter())
    results = api.smoke(ws, list(subjects), versions, envs, timeout=timeout)
    if fmt == "json":
        echo_json({"smoke": [result.to_json() for result in results]})
    return 0
