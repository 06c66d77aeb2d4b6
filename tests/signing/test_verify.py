"""`modelops validate` and `modelops apply` verify signatures offline: a tampered artifact, a signature by an
untrusted key, a missing one where the policy requires it are each a located problem, and nothing registers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.registry.helpers import run, snapshot
from tests.signing.conftest import FAILURES, artifact_line, signed_model


def test_sign_writes_beside_the_artifact_keeps_its_digest_and_signing_again_changes_nothing(
        tmp_path: Path, keys: dict[str, Path]) -> None:
    root = tmp_path / "repo"
    folder = signed_model(root, "signed", keys)
    manifest = (folder / "model.yaml").read_text()
    (folder / "artifacts" / "1.1.0.sig").unlink()
    first = run_cli("sign", "signed", "--version", "1.1.0", "--key", str(keys["trusted"]), cwd=root)
    assert first.code == 0 and first.out.startswith("signed: "), first.err
    signature = (folder / "artifacts" / "1.1.0.sig").read_bytes()
    again = run_cli("sign", "models/signed", "--version", "1.1.0", "--key", str(keys["trusted"]), cwd=root)
    assert again.out.startswith("already signed by this key: ") and again.code == 0
    assert (folder / "artifacts" / "1.1.0.sig").read_bytes() == signature
    assert (folder / "model.yaml").read_text() == manifest  # the sha256 pins are unchanged
    assert run_cli("digest", "models/signed/artifacts/1.1.0", cwd=root).out.split()[0] in manifest
    done = run_cli("validate", "--offline", cwd=root)
    assert (done.code, done.out) == (0, "1 model(s) valid\n"), done.err


def test_sign_refuses_an_unknown_version_and_what_is_not_a_private_key(tmp_path: Path, keys: dict[str, Path]) -> None:
    root = tmp_path / "repo"
    signed_model(root, "signed", keys)
    unknown = run_cli("sign", "signed", "--version", "9.9.9", "--key", str(keys["trusted"]), cwd=root)
    assert unknown.code == 1 and "signed has no version 9.9.9" in unknown.err and "1.0.0, 1.1.0" in unknown.err
    public = run_cli("sign", "signed", "--version", "1.0.0", "--key", str(keys["trusted"].with_suffix(".pub")),
                     cwd=root)
    assert public.code == 1 and "cannot read the private key" in public.err and "Traceback" not in public.err


def test_sigstore_signing_is_the_librarys_keyless_signer(tmp_path: Path, keys: dict[str, Path]) -> None:
    """Keyless signing needs Sigstore's services (not reachable here): a token that is no OIDC token is refused
    by the library's signer, as one clear error, and the signature is left as it was."""
    root = tmp_path / "repo"
    folder = signed_model(root, "signed", keys)
    before = (folder / "artifacts" / "1.0.0.sig").read_bytes()
    done = run_cli("sign", "signed", "--version", "1.0.0", "--sigstore", "--identity-token", "not-a-token", cwd=root)
    assert done.code == 1 and done.err.startswith("error: signing with Sigstore failed: "), done.err
    assert "id-token: write" in done.err and "Traceback" not in done.err
    assert (folder / "artifacts" / "1.0.0.sig").read_bytes() == before


@pytest.mark.parametrize("failure", sorted(FAILURES))
def test_validate_locates_each_failure(tmp_path: Path, keys: dict[str, Path], failure: str) -> None:
    root = tmp_path / "repo"
    folder = signed_model(root, "signed", keys)
    spoil, words = FAILURES[failure]
    spoil(folder, keys)
    done = run_cli("validate", "--offline", "--format", "json", cwd=root)
    assert done.code == 1
    (problem,) = json.loads(done.out)["problems"]
    assert problem["file"] == "models/signed/model.yaml" and problem["line"] == artifact_line(folder, 0)
    assert problem["field"] == "versions[0].artifact.signature"
    assert words in problem["message"] and problem["hint"]


def test_a_changed_file_in_a_signed_folder_is_found(tmp_path: Path, keys: dict[str, Path]) -> None:
    root = tmp_path / "repo"
    folder = signed_model(root, "signed", keys)
    from modelops.artifacts import digest

    old = digest(folder / "artifacts" / "1.1.0")
    with (folder / "artifacts" / "1.1.0" / "MLmodel").open("a") as handle:
        handle.write("\n")
    manifest = folder / "model.yaml"
    manifest.write_text(manifest.read_text().replace(old, digest(folder / "artifacts" / "1.1.0")))
    done = run_cli("validate", "--offline", cwd=root)
    assert done.code == 1
    assert done.err.startswith(f"models/signed/model.yaml:{artifact_line(folder, 1)}: versions[1].artifact.signature: "
                               "artifacts/1.1.0.sig: the artifact does not match its signature (changed: MLmodel)\n"
                               ), done.err


def test_apply_registers_a_signed_model(tmp_path: Path, keys: dict[str, Path], mlflow_server) -> None:
    root = tmp_path / "repo"
    signed_model(root, "signed-apply", keys)
    done = run(root, "apply", "models/signed-apply", uri=mlflow_server.uri)
    assert done.stdout.count("  + register ") == 2
    assert snapshot(mlflow_server.uri, "signed-apply")["signed-apply"]["aliases"]["production"] == "1.0.0"


@pytest.mark.parametrize("failure", sorted(FAILURES))
def test_apply_registers_nothing_that_fails_verification(tmp_path: Path, keys: dict[str, Path], mlflow_server,
                                                         failure: str) -> None:
    root = tmp_path / "repo"
    name = f"signed-{failure}"
    folder = signed_model(root, name, keys)
    spoil, words = FAILURES[failure]
    spoil(folder, keys)
    done = run(root, "apply", f"models/{name}", uri=mlflow_server.uri, check=1)
    assert done.stderr.startswith(f"models/{name}/model.yaml:{artifact_line(folder, 0)}: "
                                  "versions[0].artifact.signature: "), done.stderr
    assert words in done.stderr and "\n  hint: " in done.stderr
    assert snapshot(mlflow_server.uri, name) == {name: None}


def test_a_keyless_signature_goes_to_the_sigstore_verifier_of_each_trusted_identity(
        tmp_path: Path, keys: dict[str, Path]) -> None:
    """A bundle with a certificate (Sigstore keyless) and no key hint is tried against each trusted identity
    with the library's Sigstore verifier; without Sigstore (offline here) it fails as one clear problem."""
    from modelops.signing import policy, verify

    folder = signed_model(tmp_path / "repo", "signed", keys)
    bundle = json.loads((folder / "artifacts" / "1.0.0.sig").read_text())
    bundle["verificationMaterial"] = {"certificate": {"rawBytes": "AAAA"}}
    (folder / "artifacts" / "1.0.0.sig").write_text(json.dumps(bundle))
    trust = policy.Trust(identities=(policy.Identity("ci@example.com", "https://issuer.example.com"),))
    with pytest.raises(verify.Unverified) as caught:
        verify.check(folder / "artifacts" / "1.0.0" / "model.skops", folder / "artifacts" / "1.0.0.sig", trust)
    assert caught.value.problem.message.startswith("a Sigstore signature that no trusted identity verifies "
                                                   "(ci@example.com: ")
    assert "trusted_identities" in caught.value.problem.hint
