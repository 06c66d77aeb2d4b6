"""`modelops sign MODEL --version V (--key PRIVATE_KEY | --sigstore)`."""

from __future__ import annotations

import os
from pathlib import Path

import click

from modelops.commands.output import workspace


@click.command("sign")
@click.argument("model")
@click.option("--version", "version", required=True, help="The version whose artifact is signed.")
@click.option("--key", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="An elliptic-curve private key (PEM); MODELOPS_SIGNING_KEY_PASSWORD if it is encrypted.")
@click.option("--sigstore", is_flag=True,
              help="Sign keyless with Sigstore (CI's OIDC identity, or --identity-token); needs the network.")
@click.option("--identity-token", default=lambda: os.environ.get("SIGSTORE_ID_TOKEN"),
              help="An OIDC identity token for --sigstore (default: $SIGSTORE_ID_TOKEN, else the ambient one).")
def command(model: str, version: str, key: Path | None, sigstore: bool, identity_token: str | None) -> int:
    """Sign a version's artifact with OpenSSF model signing; the signature goes to
    models/MODEL/artifacts/VERSION.sig (beside the artifact, which it never changes, nor its sha256).

    The artifact is checked against its sha256 before it is signed. Signing again with the same key keeps
    the signature. validate, apply and the runner verify it against [tool.modelops.signing] trusted_keys.

    \b
    Examples:
      modelops sign iris --version 1.2.0 --key ~/.keys/ml-team.pem
      modelops sign models/iris --version 1.2.0 --sigstore      # in CI, with an OIDC identity
    """
    from modelops import api
    from modelops.files import shown

    ws = workspace()
    signed = api.sign(ws, model, version, key=key, sigstore=sigstore, identity_token=identity_token or None)
    click.echo(f"{'signed' if signed.written else 'already signed by this key'}: {shown(signed.signature, ws.root)}")
    return 0
