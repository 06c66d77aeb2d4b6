"""Verify a version's artifact against its signature and the trusted signers, with model-signing.

A key signature (a Sigstore bundle holding a DSSE envelope over the in-toto statement of every file's digest)
names its key by the sha256 of the public key: the trusted key of that hint verifies it, offline. A Sigstore
keyless signature is tried against each trusted identity (that needs Sigstore's trust root, so the network).
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

from modelops.errors import ModelopsError
from modelops.signing.policy import Trust

MAX_SIGNATURE_BYTES = 16 * 1024 * 1024  # a signature lists one digest per file: far less than this


class Unverified(ModelopsError):
    """A signature that is missing, unreadable, by an untrusted signer, or that the artifact does not match."""


def key_id(public_key: Path) -> str:
    """The sha256 of a public key (its PEM SubjectPublicKeyInfo), as model-signing names the signing key."""
    from cryptography.hazmat.primitives import serialization

    try:
        key = serialization.load_pem_public_key(public_key.read_bytes())
    except (OSError, ValueError, TypeError) as exc:
        raise ModelopsError(f"{public_key.name} is not a PEM public key ({type(exc).__name__})", file=str(public_key),
                            hint="write the signer's public key: openssl ec -in KEY -pubout") from None
    pem = key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(pem).hexdigest()


def check(artifact: Path, signature: Path, trust: Trust) -> str:
    """The trusted signer whose signature of `artifact` verifies (a key file's name, or an identity); raises
    Unverified saying what is wrong."""
    if signature.is_symlink() or not signature.is_file():
        raise Unverified("the version is not signed (no such file)",
                         hint=f"sign it: modelops sign MODEL --version V --key PRIVATE_KEY (trusted signers: "
                              f"{trust.signers})")
    if signature.stat().st_size > MAX_SIGNATURE_BYTES:
        raise Unverified(f"{signature.name} is larger than {MAX_SIGNATURE_BYTES} bytes: not a signature",
                         hint="sign it again with modelops sign")
    try:
        material = json.loads(signature.read_bytes()).get("verificationMaterial", {})
        hint = material["publicKey"]["hint"] if "publicKey" in material else None
    except (ValueError, AttributeError, TypeError, KeyError):
        raise Unverified(f"{signature.name} is not a model-signing signature (a Sigstore bundle)",
                         hint="sign it again with modelops sign") from None
    import model_signing

    if hint is not None:
        keys = {key_id(key): key for key in trust.keys}
        if hint not in keys:
            raise Unverified(f"signed by an untrusted key (key id {str(hint)[:16]}...; trusted: {trust.signers})",
                             hint="have a trusted signer sign it, or add the signer's public key to "
                                  "[tool.modelops.signing] trusted_keys (a reviewed change)")
        config = model_signing.verifying.Config().use_elliptic_key_verifier(public_key=keys[hint])
        _verify(config, artifact, signature)
        return keys[hint].name
    failures = []
    for identity in trust.identities:
        try:  # the verifier fetches Sigstore's trust root (TUF) when it is made
            config = model_signing.verifying.Config().use_sigstore_verifier(identity=identity.identity,
                                                                             oidc_issuer=identity.issuer)
            _verify(config, artifact, signature)
        except Unverified as exc:
            failures.append(f"{identity.identity}: {exc}")
            continue
        except Exception as exc:
            failures.append(f"{identity.identity}: Sigstore is out of reach ({type(exc).__name__}: {str(exc)[:100]})")
            continue
        return identity.identity
    raise Unverified("a Sigstore signature that no trusted identity verifies" + (f" ({'; '.join(failures)})"[:600]
                     if failures else f" (trusted: {trust.signers})"),
                     hint="add the signing identity and issuer to [tool.modelops.signing] trusted_identities "
                          "(verifying keyless signatures needs Sigstore's trust root: the network)")


def _verify(config: object, artifact: Path, signature: Path) -> None:
    from cryptography.exceptions import InvalidSignature

    try:
        config.verify(artifact, signature)  # type: ignore[attr-defined]
    except InvalidSignature:
        raise Unverified("the signature is invalid: its bytes were altered, or it was not made with the key it "
                         "names", hint="sign it again with modelops sign") from None
    except ValueError as exc:
        text = str(exc)
        if text.startswith("Signature mismatch"):
            raise Unverified(f"the artifact does not match its signature ({_differences(text, artifact)})",
                             hint="the artifact changed after it was signed: restore it, or have a trusted "
                                  "signer sign the new bytes (and bump the version)") from None
        raise Unverified(f"the signature does not verify: {text[:300]}", hint="sign it again with modelops sign"
                         ) from None
    except Exception as exc:  # a malformed bundle fails deep inside the library's parsers
        raise Unverified(f"the signature does not verify: {type(exc).__name__}: {str(exc)[:300]}",
                         hint="sign it again with modelops sign") from None


def _differences(mismatch: str, artifact: Path) -> str:
    """Which files differ, from model-signing's mismatch message (the repr of a list of lines, so its quotes
    may be escaped; a single file is named `.` there)."""
    names = re.findall(r"Hash mismatch for \\?'([^'\\]*)\\?'", mismatch)
    changed = [artifact.name if name == "." else name for name in names]
    parts = [f"changed: {', '.join(changed)}"] if changed else []
    for kind, what in (("Extra", "added"), ("Missing", "removed")):
        if found := re.search(rf"{kind} files (?:found )?in model \\?'[^'\\]*\\?': ([^'\"\]]*)", mismatch):
            parts.append(f"{what}: {found[1].rstrip(', ')}")
    return "; ".join(parts)[:300] or mismatch[:300]
