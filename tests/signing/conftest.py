"""Signed repositories for the signing tests: keys made here, a copy of iris-proba (a file and a folder
artifact) signed by a trusted key, and the ways a signature fails (the mlflow server of tests/registry)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from modelops.artifacts import digest
from modelops.signing.sign import sign
from tests.registry.conftest import mlflow_server  # noqa: F401  (the session's mlflow server, shared)
from tests.registry.helpers import copy_model

POLICY = """[tool.modelops]
[tool.modelops.signing]
trusted_keys = ["keys/*.pub"]
require = ["production"]
"""


@pytest.fixture(scope="session")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """{trusted, untrusted}: elliptic-curve private keys (PEM); `trusted.pub` beside the first."""
    folder = tmp_path_factory.mktemp("keys")
    made = {}
    for name in ("trusted", "untrusted"):
        key = ec.generate_private_key(ec.SECP256R1())
        made[name] = folder / f"{name}.pem"
        made[name].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                 serialization.NoEncryption()))
        (folder / f"{name}.pub").write_bytes(key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return made


def signed_model(root: Path, name: str, keys: dict[str, Path]) -> Path:
    """models/NAME in the repository `root` (made if need be, with the policy: production must be signed, by
    the trusted key): a copy of iris-proba whose versions 1.0.0 (a file) and 1.1.0 (a folder) are signed."""
    (root / "keys").mkdir(parents=True, exist_ok=True)
    (root / "keys" / "trusted.pub").write_bytes(keys["trusted"].with_suffix(".pub").read_bytes())
    (root / "pyproject.toml").write_text(POLICY)
    folder = copy_model(root, "iris-proba", name)
    for signature in (folder / "artifacts").glob("*.sig"):  # the example's own (demo key) signatures
        signature.unlink()
    for version, artifact in (("1.0.0", "artifacts/1.0.0/model.skops"), ("1.1.0", "artifacts/1.1.0")):
        sign(folder / artifact, folder / "artifacts" / f"{version}.sig", key=keys["trusted"])
    return folder


def _tamper(folder: Path, keys: dict[str, Path]) -> None:
    """One byte of 1.0.0's artifact changed, and its sha256 in the manifest too (as a pull request would)."""
    artifact = folder / "artifacts" / "1.0.0" / "model.skops"
    data = bytearray(artifact.read_bytes())
    data[len(data) // 2] ^= 0x01
    old = digest(artifact)
    artifact.write_bytes(bytes(data))
    manifest = folder / "model.yaml"
    manifest.write_text(manifest.read_text().replace(old, digest(artifact)))


def _untrusted(folder: Path, keys: dict[str, Path]) -> None:
    """1.0.0 signed again, by a key the repository does not trust."""
    signature = folder / "artifacts" / "1.0.0.sig"
    signature.unlink()
    sign(folder / "artifacts" / "1.0.0" / "model.skops", signature, key=keys["untrusted"])


def _missing(folder: Path, keys: dict[str, Path]) -> None:
    (folder / "artifacts" / "1.0.0.sig").unlink()


# how a version's signature fails -> (what does it, words of the message)
FAILURES: dict[str, tuple[Callable[[Path, dict[str, Path]], None], str]] = {
    "tampered": (_tamper, "the artifact does not match its signature (changed: model.skops)"),
    "untrusted": (_untrusted, "signed by an untrusted key (key id "),
    "missing": (_missing, "version 1.0.0 is not signed (artifacts/1.0.0.sig is missing)"),
}


def artifact_line(folder: Path, index: int) -> int:
    """The line where versions[index].artifact starts in the manifest (its first key: `uri:`, the line after
    `artifact:`), as every problem of an artifact is located."""
    lines = [i for i, text in enumerate((folder / "model.yaml").read_text().splitlines(), 1)
             if re.match(r"^\s+artifact:$", text)]
    return lines[index] + 1
