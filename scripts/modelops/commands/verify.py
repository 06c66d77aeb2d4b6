"""`modelops verify IMAGE...`: a pushed image's labels, SBOM and provenance agree with the registries."""

from __future__ import annotations

import click

from modelops.commands.output import echo_json, workspace


@click.command("verify")
@click.argument("subjects", nargs=-1, required=True, metavar="IMAGE...")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def command(subjects: tuple[str, ...], fmt: str) -> int:
    """Check each pushed image against its provenance, its SBOM, the image registry and MLflow.

    IMAGE is REGISTRY/NAME:TAG or REGISTRY/NAME@sha256:... as `build --push` printed it. Exit 1, with every
    disagreement located, when any image fails (no image is run; one the engine lacks is pulled by digest).

    \b
    Examples:
      modelops verify 127.0.0.1:5000/models/iris:1.0.0
      modelops verify --format json $(jq -r '.images[].ref' images.json)
    """
    from modelops import api

    results = api.verify(workspace(), list(subjects))
    if fmt == "json":
        echo_json({"verified": [result.to_json() for result in results]})
    return 0
