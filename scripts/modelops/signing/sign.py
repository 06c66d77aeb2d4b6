"""Sign an artifact with model-signing: an elliptic-curve private key (offline), or Sigstore keyless (in CI)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from modelops.errors import ModelopsError
from modelops.signing import verify
from modelops.signing.policy import Trust

PASSWORD_ENV = "MODELOPS_SIGNING_KEY_PASSWORD"  # the private key's password, when it is encrypted


def _public_key(private_key: Path, out: Path) -> Path:
    """Write the public key of `private_key` to `out` (refusing what is not an elliptic-curve PEM key)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    password = os.environ.get(PASSWORD_ENV)
    try:
        key = serialization.load_pem_private_key(private_key.read_bytes(), password.encode() if password else None)
    except (OSError, ValueError, TypeError) as exc:
        raise ModelopsError(f"cannot read the private key: {type(exc).__name__}: {str(exc)[:200]}",
                            file=str(private_key), hint="pass an unencrypted elliptic-curve PEM key, or set "
                            f"{PASSWORD_ENV}; make one: openssl ecparam -name prime256v1 -genkey -noout") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ModelopsError("is not an elliptic-curve private key", file=str(private_key),
                            hint="model signing keys are elliptic-curve (P-256, P-384 or P-521)")
    out.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                  serialization.PublicFormat.SubjectPublicKeyInfo))
    return out


def sign(artifact: Path, signature: Path, *, key: Path | None = None, sigstore: bool = False,
         identity_token: str | None = None) -> bool:
    """Write the signature of `artifact` (a file or a folder) to `signature`, whole or not at all. With `key`,
    a signature that this key already made over these bytes is kept (signing again changes nothing): returns
    whether it wrote one."""
    import model_signing

    if (key is None) == (not sigstore):
        raise ModelopsError("sign with a key or with Sigstore, one of them",
                            hint="pass --key PRIVATE_KEY or --sigstore")
    signature.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".sign-", dir=signature.parent) as work:
        config = model_signing.signing.Config()
        if key is not None:
            own = Trust(keys=(_public_key(key, Path(work) / "key.pub"),))
            try:
                verify.check(artifact, signature, own)
                return False
            except verify.Unverified:
                pass
            config.use_elliptic_key_signer(private_key=key, password=os.environ.get(PASSWORD_ENV))
        partial = Path(work) / signature.name
        try:
            if sigstore:  # Sigstore's trust root (TUF), then its OIDC and certificate services: the network
                config.use_sigstore_signer(use_ambient_credentials=identity_token is None,
                                           identity_token=identity_token)
            config.sign(artifact, partial)
        except ModelopsError:
            raise
        except Exception as exc:
            how = "Sigstore" if sigstore else "the key"
            raise ModelopsError(f"signing with {how} failed: {type(exc).__name__}: {str(exc)[:300]}",
                                hint="for Sigstore, run in CI with an OIDC identity (GitHub Actions: permissions "
                                     "id-token: write) or pass --identity-token" if sigstore else
                                "check the key") from None
        os.replace(partial, signature)
    return True
