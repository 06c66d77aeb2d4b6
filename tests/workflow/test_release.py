"""`modelops release`: a version from an artifact, checked, pinned, copied and appended, or nothing at all."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from modelops.artifacts import digest
from modelops.manifest.scaffold import SCAFFOLDS
from tests.conftest import run_cli
from tests.manifest.test_validate_artifacts import http_server  # noqa: F401  (a real HTTP file server)

IRIS = "models/iris/model.yaml"


def folder_state(root: Path) -> dict[str, bytes]:
    """Every file under `root` and its bytes (hidden ones too: a staging folder left behind shows)."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_release_copies_pins_appends_and_says_nothing_to_change_the_second_time(repo: Path, tmp_path: Path) -> None:
    trained = shutil.copytree(repo / "models/iris/artifacts/1.2.0", tmp_path / "trained")  # an MLflow model folder
    result = run_cli("release", "iris", "--version", "1.3.0", "--artifact", str(trained), "--description",
                     "GradientBoosting, retrained", cwd=repo)
    assert result.code == 0, result.err
    sha256 = digest(trained)
    assert result.out.startswith(f"--- a/{IRIS}\n+++ b/{IRIS}\n")
    added = [line[1:] for line in result.out.splitlines() if line.startswith("+") and not line.startswith("+++")]
    assert added == ["  - version: 1.3.0", "    description: GradientBoosting, retrained", "    artifact:",
                     "      uri: artifacts/1.3.0/", f"      sha256: {sha256}"]
    assert not [line for line in result.out.splitlines() if line.startswith("-") and not line.startswith("---")]
    assert f"copied {trained} to models/iris/artifacts/1.3.0/" in result.out and result.out.endswith(f"wrote {IRIS}\n")
    assert digest(repo / "models/iris/artifacts/1.3.0") == sha256
    assert run_cli("validate", "models/iris", "--offline", cwd=repo).code == 0

    before = folder_state(repo / "models/iris")
    again = run_cli("release", "iris", "--version", "1.3.0", "--artifact", str(trained), cwd=repo)
    assert again.code == 0, again.err
    assert again.out == f"  i 1.3.0 is already released with this artifact\nnothing to change in {IRIS}\n"
    assert folder_state(repo / "models/iris") == before


def unloadable(tmp_path: Path, repo: Path) -> Path:
    """An MLflow model folder whose pickle is not one."""
    folder = shutil.copytree(repo / "models/iris/artifacts/1.2.0", tmp_path / "broken")
    (folder / "model.pkl").write_bytes(b"this is not a pickle")
    return folder


@pytest.mark.parametrize(("args", "words"), [
    (["--version", "1.3.0", "--artifact", "BROKEN"],
     "models/iris/model.yaml:34: versions[3].artifact: version 1.3.0: does not load as sklearn"),
    (["--version", "1.1.5", "--artifact", "GOOD"], "--version: 1.1.5 does not come after 1.2.0, the latest version"),
    (["--version", "1.2.0", "--artifact", "GOOD"], "--version: 1.2.0 is already released, with another artifact"),
    (["--version", "1.3", "--artifact", "GOOD"], "--version: '1.3' is not a semantic version"),
    (["--version", "1.3.0", "--artifact", "nowhere/model.pkl"],
     "--artifact: nowhere/model.pkl: no such file or folder"),
    (["--version", "1.3.0", "--artifact", "ftp://host/model.pkl"], "--artifact: unsupported scheme 'ftp'"),
    (["--version", "1.3.0", "--artifact", "GOOD", "--description", "a bell\x07"],
     "models/iris/model.yaml:33: versions[3].description"),
])
def test_a_refused_release_changes_nothing(repo: Path, tmp_path: Path, args: list[str], words: str) -> None:
    good = shutil.copytree(repo / "models/iris/artifacts/1.0.0", tmp_path / "good")
    args = [str(unloadable(tmp_path, repo)) if a == "BROKEN" else str(good) if a == "GOOD" else a for a in args]
    before = folder_state(repo / "models/iris")
    result = run_cli("release", "iris", *args, cwd=repo)
    assert result.code == 1
    assert words in result.err, result.err
    assert "Traceback" not in result.err and result.out == ""
    assert folder_state(repo / "models/iris") == before  # the manifest's bytes, and no artifacts/1.3.0 left
    assert not (repo / "models/iris/artifacts/1.3.0").exists()


def test_dry_run_checks_and_shows_the_diff_but_writes_nothing(repo: Path, tmp_path: Path) -> None:
    trained = shutil.copytree(repo / "models/iris/artifacts/1.1.0", tmp_path / "trained")
    before = folder_state(repo / "models/iris")
    result = run_cli("release", "iris", "--version", "2.0.0", "--artifact", str(trained), "--dry-run", cwd=repo)
    assert result.code == 0, result.err
    assert "+  - version: 2.0.0\n" in result.out and result.out.endswith(f"dry run: {IRIS} is not written\n")
    assert folder_state(repo / "models/iris") == before


def test_a_remote_artifact_is_downloaded_checked_and_kept_where_it_is(repo: Path, http_server) -> None:  # noqa: F811
    url, served = http_server
    local = repo / "models/diabetes/artifacts/1.0.0/model.skops"
    served.joinpath("model.skops").write_bytes(local.read_bytes())
    artifacts = sorted(p.name for p in (repo / "models/diabetes/artifacts").iterdir())
    result = run_cli("release", "diabetes", "--version", "1.1.0", "--artifact", f"{url}/model.skops", cwd=repo)
    assert result.code == 0, result.err
    assert f"+      uri: {url}/model.skops\n+      sha256: {digest(local)}\n" in result.out
    assert sorted(p.name for p in (repo / "models/diabetes/artifacts").iterdir()) == artifacts  # nothing copied
    again = run_cli("release", "diabetes", "--version", "1.1.0", "--artifact", f"{url}/model.skops", cwd=repo)
    assert again.code == 0 and "nothing to change" in again.out, again.err


@pytest.mark.parametrize("flavor", sorted(SCAFFOLDS))
def test_new_scaffolds_every_flavor(repo: Path, flavor: str) -> None:
    result = run_cli("new", f"m-{flavor}", "--flavor", flavor, cwd=repo)
    assert result.code == 0, result.err
    manifest = (repo / f"models/m-{flavor}/model.yaml").read_text()
    assert f"flavor: {flavor}\n" in manifest and f"uri: {SCAFFOLDS[flavor][0]}\n" in manifest
    checked = run_cli("validate", f"models/m-{flavor}", "--offline", "--format", "json", cwd=repo)
    problems = json.loads(checked.out)["problems"]
    assert [(p["field"], p["message"]) for p in problems if p["file"].endswith("model.yaml")] == [
        ("versions[0].artifact.uri", f"'{SCAFFOLDS[flavor][0]}' does not exist")]  # only the artifact is missing


def test_new_then_release_fills_in_the_scaffolded_version(repo: Path) -> None:
    assert run_cli("new", "churn", "--owner", "@data/churn", cwd=repo).code == 0
    folder = repo / "models/churn"
    diabetes = (repo / "models/diabetes/model.yaml").read_text()
    signature = diabetes[diabetes.index("signature:"):diabetes.index("example:")]
    manifest = folder / "model.yaml"
    text = manifest.read_text()
    manifest.write_text(text[:text.index("signature:")] + signature + text[text.index("\n# Input records"):])
    shutil.copyfile(repo / "models/diabetes/example.json", folder / "example.json")
    model = repo / "models/diabetes/artifacts/1.0.0/model.skops"

    result = run_cli("release", "churn", "--version", "0.1.0", "--artifact", str(model), "--description",
                     "RandomForest", cwd=repo)
    assert result.code == 0, result.err
    assert ("-    description: first version\n+    description: RandomForest\n" in result.out
            and '-      sha256: "' + "0" * 64 + '"\n+      sha256: "' + digest(model) + '"\n' in result.out)
    assert (folder / "artifacts/0.1.0/model.skops").read_bytes() == model.read_bytes()
    assert run_cli("codeowners", cwd=repo).code == 0
    assert run_cli("validate", "models/churn", "--offline", cwd=repo).code == 0  # release loaded it already
