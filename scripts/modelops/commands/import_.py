"""`modelops import [NAME]... | --all`."""

from __future__ import annotations

import click

from modelops.commands.output import echo_json, workspace


@click.command("import")
@click.argument("names", nargs=-1)
@click.option("--all", "every", is_flag=True, help="Every registered model import can take (not those modelops "
                                                   "manages already).")
@click.option("--tracking-uri", default=None,
              help="The MLflow registry to read (default: the repository's tracking_uri setting).")
@click.option("--copy/--uri", "copy", default=True, show_default=True,
              help="Copy each version's files into artifacts/1.0.N/, or point at models:/NAME/N (resolved in the "
                   "repository's registry).")
@click.option("--owner", "owners", multiple=True, help="Owner of the imported models (repeatable; default @ml-team).")
@click.option("--offline", is_flag=True, help="Check the folders without loading the versions.")
@click.option("--format", "fmt", type=click.Choice(("text", "json")), default="text", show_default=True,
              help="text for people, json for machines.")
def command(names: tuple[str, ...], every: bool, tracking_uri: str | None, copy: bool, owners: tuple[str, ...],
            offline: bool, fmt: str) -> int:
    """Write models/NAME/ for registered models of an MLflow registry: the migration path from plain MLflow.

    Each MLflow version N becomes version 1.0.N (its files copied in, or pointed to, and digested), each alias
    an environment serving its version; the latest version gives the flavor, signature, requirements and
    example. The folders are checked as `validate` checks them (each version loads) before any is written;
    an existing folder is never overwritten. `apply` then adopts the versions: tags only, no upload.

    \b
    Examples:
      modelops import churn --tracking-uri http://mlflow:5000 --owner @data/churn
      modelops import --all --uri
    """
    from modelops import api

    ws = workspace(fmt)
    imported, skipped = api.import_models(ws, list(names), every=every, tracking_uri=tracking_uri, copy=copy,
                                          owners=list(owners), offline=offline)
    if fmt == "json":
        echo_json({"imported": [i.to_json() for i in imported], "skipped": skipped})
        return 0
    for one in imported:
        versions = ", ".join(f"{v} (MLflow {n})" for n, v in one.versions.items())
        served = ", ".join(f"{env} {v}" for env, v in one.deployments.items()) or "none"
        click.echo(f"{'imported' if one.written else 'unchanged'} {one.folder}/: flavor {one.flavor}; "
                   f"versions {versions}; environments {served}")
        for note in one.notes:
            click.echo(f"  i {note}")
    for note in skipped:
        click.echo(f"  i {note}")
    if any(one.written for one in imported):
        click.echo("next: review and commit the folders (modelops codeowners), then `modelops plan`: apply adopts "
                   "the versions (tags only, no upload)")
    elif not imported:
        click.echo("nothing to import")
    return 0
