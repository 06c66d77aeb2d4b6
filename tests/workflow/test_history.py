"""`modelops history`: which versions each environment served, from when to when, who changed it (git)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tests.conftest import run_cli
from tests.workflow.conftest import commit, git

IRIS = "models/iris/model.yaml"


def cli(repo: Path, *args: str) -> str:
    result = run_cli(*args, cwd=repo)
    assert result.code == 0, result.err
    return result.out


def spans(repo: Path, *args: str) -> list[tuple]:
    found = json.loads(cli(repo, "history", "iris", "--format", "json", *args))
    assert found["model"] == "iris" and found["file"] == IRIS
    return [(s["environment"], s["version"], s["canary"], s["shadow"], s["commit"], s["author"], s["ended_by"])
            for s in found["spans"]]


def test_release_canary_promotion_and_rollback_are_each_a_span(git_repo: Path, tmp_path: Path) -> None:
    first = git(git_repo, "rev-parse", "HEAD").strip()
    trained = shutil.copytree(git_repo / "models/iris/artifacts/1.2.0", tmp_path / "trained")
    cli(git_repo, "release", "iris", "--version", "1.3.0", "--artifact", str(trained))
    released = commit(git_repo, "release iris 1.3.0", "Bob Builder")  # no deployment changes
    cli(git_repo, "promote", "iris", "production", "--canary", "1.3.0", "--weight", "20")
    canary = commit(git_repo, "canary 1.3.0 at 20 %", "Cy Canary")
    cli(git_repo, "promote", "iris", "production", "1.3.0")
    promoted = commit(git_repo, "promote 1.3.0", "Dee Deploy")
    cli(git_repo, "promote", "iris", "production", "--rollback")
    rolled = commit(git_repo, "roll back production", "Eve Ops")

    old_canary = {"version": "1.1.0", "weight": 10}
    new_canary = {"version": "1.3.0", "weight": 20}
    assert released not in {s[4] for s in spans(git_repo)}
    assert spans(git_repo, "--env", "production") == [
        ("production", "1.0.0", old_canary, ["1.2.0"], first, "Ann Admin", canary),
        ("production", "1.0.0", new_canary, ["1.2.0"], canary, "Cy Canary", promoted),
        ("production", "1.3.0", None, ["1.2.0"], promoted, "Dee Deploy", rolled),
        ("production", "1.0.0", new_canary, ["1.2.0"], rolled, "Eve Ops", None),
    ]
    assert spans(git_repo, "--env", "staging") == [("staging", "1.2.0", None, [], first, "Ann Admin", None)]

    text = cli(git_repo, "history", "iris").splitlines()
    assert text[0].split() == ["ENVIRONMENT", "SERVED", "FROM", "UNTIL", "COMMIT", "AUTHOR"]
    rows = [line for line in text if line.startswith("production")]
    assert len(rows) == 4 and "1.3.0 + shadow 1.2.0" in rows[2] and promoted[:12] in rows[2]
    assert rows[2].endswith("Dee Deploy <dee@example.com>") and "  now  " in rows[3]


def test_unparsable_commits_renamed_environments_and_a_removed_model(git_repo: Path) -> None:
    manifest = git_repo / IRIS
    good = manifest.read_text()
    manifest.write_text(good + "deployments: [not, closed\n")
    broken = commit(git_repo, "a broken manifest", "Bob Builder")
    manifest.write_text(good.replace("  staging:\n", "  qa:\n"))
    renamed = commit(git_repo, "staging is qa now", "Cy Canary")
    found = json.loads(cli(git_repo, "history", "iris", "--format", "json"))
    assert [(s["environment"], s["until"] is None, s["ended_by"]) for s in found["spans"]] == [
        ("production", True, None), ("staging", False, renamed), ("qa", True, None)]
    assert found["notes"] == [f"{broken[:12]}: skipped: {IRIS} at {broken[:12]}:{good.count(chr(10)) + 2}: invalid "
                              "YAML: expected ',' or ']', but got '<stream end>'"]

    git(git_repo, "rm", "-rq", "models/iris")
    removed = commit(git_repo, "retire iris", "Dee Deploy")
    found = json.loads(cli(git_repo, "history", "iris", "--format", "json"))
    assert all(s["ended_by"] == removed for s in found["spans"] if s["environment"] in ("production", "qa"))
    assert f"{removed[:12]} removed {IRIS}" in found["notes"]


def test_no_history_is_a_clear_error(repo: Path) -> None:
    for setup, words in ((None, "not a git repository"),
                         (["init", "-q"], "has no commits yet"),
                         (["commit", "-q", "--allow-empty", "-m", "empty"], f"{IRIS} has no history")):
        if setup:
            git(repo, *setup)
        result = run_cli("history", "iris", cwd=repo)
        assert result.code == 1 and words in result.err, result.err
        assert "Traceback" not in result.err
    commit(repo, "the models", "Ann Admin")
    unknown = run_cli("history", "iris", "--env", "prod", cwd=repo)
    assert unknown.code == 1
    assert "--env: prod never appears in the deployments of models/iris/model.yaml" in unknown.err
    assert "environments in its history: production, staging" in unknown.err
