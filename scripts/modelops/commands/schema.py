"""`modelops schema`."""

from __future__ import annotations

import click

from modelops.commands.output import echo_json


@click.command("schema")
def command() -> None:
    """Print the manifest's JSON Schema (for editors: yaml-language-server, check-jsonschema)."""
    from modelops.manifest.model import json_schema

    echo_json(json_schema())
