"""An image whose versions must be signed: verified before they go in, and it carries their signatures, the
trusted keys and the verifier; an image that need not verify carries none of them."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.signing.conftest import FAILURES, POLICY, artifact_line, signed_model


def test_a_production_image_carries_signatures_keys_and_the_verifier(tmp_path: Path, keys: dict[str, Path]) -> None:
    root = tmp_path / "repo"
    signed_model(root, "signed", keys)
    shutil.copytree(Path(__file__).resolve().parents[2] / "templates", root / "templates")
    done = run_cli("render", "models/signed", "--env", "production", cwd=root)
    assert done.code == 0, done.err
    (context,) = (Path(line) for line in done.out.split())
    model = context / "model"
    assert sorted(p.name for p in (model / "artifacts").glob("*.sig")) == ["1.0.0.sig", "1.1.0.sig"]
    assert (model / "trusted-keys" / "trusted.pub").read_bytes() == (root / "keys" / "trusted.pub").read_bytes()
    assert "model-signing==1.1.1" in (context / "requirements" / "signing.txt").read_text()

    (root / "pyproject.toml").write_text(POLICY.replace('["production"]', '"off"'))
    done = run_cli("render", "models/signed", "--env", "production", cwd=root)
    assert done.code == 0, done.err
    assert not list((context / "model").rglob("*.sig")) and not (context / "model" / "trusted-keys").exists()
    assert not (context / "requirements" / "signing.txt").exists()
    assert "signing.txt" not in (context / "Dockerfile").read_text()


@pytest.mark.parametrize("failure", sorted(FAILURES))
def test_no_image_holds_a_version_that_fails_verification(tmp_path: Path, keys: dict[str, Path], failure: str) -> None:
    root = tmp_path / "repo"
    folder = signed_model(root, "signed", keys)
    shutil.copytree(Path(__file__).resolve().parents[2] / "templates", root / "templates")
    spoil, words = FAILURES[failure]
    spoil(folder, keys)
    done = run_cli("render", "models/signed", "--version", "1.0.0", cwd=root)
    assert done.code == 1 and "Traceback" not in done.err
    assert done.err.startswith(f"models/signed/model.yaml:{artifact_line(folder, 0)}: versions[0].artifact.signature: "
                               "artifacts/1.0.0.sig: "), done.err
    assert not (root / "build" / "images" / "signed-1.0.0").exists()
    if failure != "missing":  # the message of a missing signature is validate's own
        assert words in done.err
