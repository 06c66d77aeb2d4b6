"""`modelops release MODEL --version V --artifact PATH_OR_URI`."""

from __future__ import annotations

import click

from modelops.commands.output import echo_edit, workspace


@click.command("release")
@click.argument("model")
@click.option("--version", "version", required=True, help="The new version (semantic, higher than the latest).")
@click.option("--artifact", required=True,
              help="A local file or MLflow model folder (copied to artifacts/VERSION/), or a URI kept as it is: "
                   "file://, https://, s3://, gs://, wasbs://, models:/, runs:/, mlflow-artifacts:/.")
@click.option("--description", default="", help="One line saying what this version is.")
@click.option("--dry-run", is_flag=True, help="Check it and show the diff; write nothing.")
def command(model: str, version: str, artifact: str, description: str, dry_run: bool) -> int:
    """Add a version to MODEL's manifest from an artifact, editing model.yaml in place (comments kept).

    The artifact is digested (sha256), copied into the model folder (a local one) and loaded in the
    sandbox to score the example, as `validate` does; the edited manifest must validate, or nothing is
    written. Prints the diff. Releasing the same version and artifact again changes nothing.

    \b
    Examples:
      modelops release churn --version 0.2.0 --artifact ~/train/out/model.skops --description "more data"
      modelops release iris --version 1.3.0 --artifact s3://models/iris/1.3.0/ --dry-run
    """
    from modelops import api

    result = api.release(workspace(), model, version, artifact, description=description, dry_run=dry_run)
    echo_edit(result, dry_run)
    return 0
