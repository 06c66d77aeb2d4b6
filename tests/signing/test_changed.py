"""A change to the trusted keys touches every model (what verifies may change), for CI's fan-out."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import EXAMPLES, run_cli
from tests.test_cli import git


def test_a_new_trusted_key_touches_every_model(repo: Path) -> None:
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-qm", "base")
    (repo / "keys").mkdir()
    (repo / "keys" / "ml-team.pub").write_text("a key\n")
    result = run_cli("changed", "--base", "main", cwd=repo)
    assert result.code == 0, result.err
    assert json.loads(result.out) == {"models": EXAMPLES, "deleted": [], "all": True}
