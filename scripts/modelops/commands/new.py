"""`modelops new NAME`."""

from __future__ import annotations

import click

from modelops.commands.output import workspace


@click.command("new")
@click.argument("name")
@click.option("--owner", default="@ml-team", show_default=True, help="GitHub user or team owning the model.")
@click.option("--description", default="", help="One line saying what the model predicts.")
@click.option("--flavor", default="sklearn", show_default=True,
              help="How the artifact loads: sklearn, xgboost, lightgbm, catboost, onnx or pyfunc (docs/flavors.md).")
def command(name: str, owner: str, description: str, flavor: str) -> int:
    """Scaffold models/NAME/ from templates/new-model/: a commented manifest, example, requirements, card.

    \b
    Example:
      modelops new churn --owner @data/churn --description "Will a customer leave this month?"
      modelops new fraud --flavor xgboost
    """
    from modelops import api

    ws = workspace()
    folder = api.new(ws, name, owner, description, flavor)
    click.echo(f"created {folder.relative_to(ws.root)}/")
    click.echo(f"next: fill in the signature, example.json and requirements.txt, then pin the {flavor} artifact: "
               f"`modelops release {name} --version 0.1.0 --artifact PATH`")
    return 0
