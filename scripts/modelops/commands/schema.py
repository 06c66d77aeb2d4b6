"""`modelops schema`."""

from __future__ import annotations

import click

from modelops.commands.output import echo_json


@click.command("schema")
def command() -> int:
    """Print the manifest's JSON Schema (for editors: yaml-language-server, check-jsonschema).

    \b
    Example:
      modelops schema > model.schema.json
    """
    from modelops import api

    echo_json(api.schema())
    return 0
