"""`scripts/publish-kubernetes.sh`: the rendered trees (Kubernetes, and Compose in compose/) committed to a deployment
branch of a real remote."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ROOT

SCRIPT = ROOT / "scripts" / "publish-kubernetes.sh"


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def origin(repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The repository copy as a git repository with a bare remote `origin`."""
    for role in ("AUTHOR", "COMMITTER"):
        monkeypatch.setenv(f"GIT_{role}_NAME", "Test")
        monkeypatch.setenv(f"GIT_{role}_EMAIL", "test@example.com")
    monkeypatch.setenv("MODELOPS", str(Path(sys.executable).parent / "modelops"))
    bare = tmp_path / "origin.git"
    git(tmp_path, "init", "--quiet", "--bare", str(bare))
    git(repo, "init", "--quiet", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "--quiet", "-m", "models")
    git(repo, "remote", "add", "origin", str(bare))
    return bare


def publish(repo: Path) -> str:
    result = subprocess.run([str(SCRIPT)], cwd=repo, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.splitlines()[-1]


def test_publish_commits_the_tree_once_and_then_only_what_changed(repo, origin, edit_manifest):
    assert publish(repo).startswith("pushed ")
    first = git(origin, "rev-parse", "deploy")
    files = git(origin, "ls-tree", "-r", "--name-only", "deploy").splitlines()
    assert "production/kustomization.yaml" in files and "gitops/argocd/production.yaml" in files
    assert not [f for f in files if f.startswith("models/")]
    assert [f for f in files if f.startswith("compose/")] == ["compose/production/compose.yaml",
                                                              "compose/staging/compose.yaml"]
    assert "compose/" not in git(origin, "show", "deploy:production/kustomization.yaml")

    head = git(repo, "rev-parse", "--short", "HEAD")
    assert publish(repo) == f"deploy is up to date with the manifests at {head}"
    assert git(origin, "rev-parse", "deploy") == first

    def promote(data: dict) -> None:
        data["deployments"]["staging"]["version"] = "1.1.0"

    edit_manifest("iris", promote)
    git(repo, "commit", "--quiet", "-am", "promote iris 1.1.0 to staging")
    publish(repo)
    changed = git(origin, "diff", "--name-only", first, "deploy").splitlines()
    assert changed == ["compose/staging/compose.yaml", *(f"staging/iris/{kind}.yaml" for kind in
                       ("deployment", "horizontalpodautoscaler", "poddisruptionbudget", "service"))]
    assert git(repo, "worktree", "list").count("\n") == 0  # the temporary checkout is gone
