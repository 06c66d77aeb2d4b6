"""`modelops new NAME`."""

from __future__ import annotations

import click

from modelops import workspace as repo


@click.command("new")
@click.argument("name")
@click.option("--owner", default="@ml-team", show_default=True, help="GitHub user or team owning the model.")
@click.option("--description", default="", help="One line saying what the model predicts.")
def command(name: str, owner: str, description: str) -> None:
    """Scaffold models/NAME/ from templates/new-model/: a commented manifest, example, requirements, card."""
    from modelops.manifest.scaffold import new

    folder = new(repo.root(), name, owner, description or f"{name} model")
    click.echo(f"created {folder.relative_to(repo.root())}/")
    click.echo("next: put the artifact under artifacts/0.1.0/, run `modelops digest` on it, fill in sha256,"
               " the signature and example.json, then `modelops validate " + f"models/{name}`")
