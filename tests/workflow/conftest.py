"""A git repository of the example models, committed, for release, promote and history."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest


def git(root: Path, *args: str, author: str = "Ann Admin") -> str:
    """`git ARGS` in `root` as `author` (e-mail: the first name, lower case, @example.com)."""
    email = f"{author.split()[0].lower()}@example.com"
    env = {"GIT_AUTHOR_NAME": author, "GIT_AUTHOR_EMAIL": email, "GIT_COMMITTER_NAME": author,
           "GIT_COMMITTER_EMAIL": email, "PATH": "/usr/bin:/bin", "HOME": str(root)}
    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True, env=env).stdout


def commit(root: Path, message: str, author: str) -> str:
    """Commit everything in `root` as `author`; returns the commit's sha."""
    git(root, "add", "-A")
    git(root, "commit", "-qm", message, author=author)
    return git(root, "rev-parse", "HEAD").strip()


@pytest.fixture
def git_repo(repo: Path) -> Path:
    """The `repo` copy of the examples as a git repository with one commit, by Ann Admin."""
    git(repo, "init", "-q", "-b", "main")
    commit(repo, "the example models", "Ann Admin")
    return repo
