"""`modelops promote`: what an environment serves, changed in place, checked, idempotent, or nothing at all."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.workflow.conftest import commit

IRIS = "models/iris/model.yaml"


def diff_lines(out: str) -> tuple[list[str], list[str]]:
    """(removed, added) lines of the unified diff in a command's output."""
    lines = out.splitlines()
    return ([line[1:] for line in lines if line.startswith("-") and not line.startswith("---")],
            [line[1:] for line in lines if line.startswith("+") and not line.startswith("+++")])


def promote(repo: Path, *args: str) -> str:
    result = run_cli("promote", "iris", *args, cwd=repo)
    assert result.code == 0, result.err
    return result.out


def test_a_canary_moves_is_promoted_and_a_second_run_changes_nothing(repo: Path) -> None:
    out = promote(repo, "production", "--canary", "1.2.0", "--weight", "20")
    assert diff_lines(out) == (["    canary: {version: 1.1.0, weight: 10}"],
                               ["    canary: {version: 1.2.0, weight: 20}"])
    assert out.endswith(f"wrote {IRIS}\n")
    assert promote(repo, "production", "--weight", "50").count("weight: 50}") == 1

    out = promote(repo, "production", "1.2.0")  # the canary's version: it takes all the traffic, shadows no more
    assert diff_lines(out) == (["    version: 1.0.0", "    canary: {version: 1.2.0, weight: 50}",
                                "    shadow: [1.2.0]"], ["    version: 1.2.0"])
    assert "the canary 1.2.0 now takes all of production's traffic" in out
    assert "1.2.0 is no longer a shadow of production: it answers" in out
    before = (repo / IRIS).read_bytes()
    again = run_cli("promote", "iris", "production", "1.2.0", cwd=repo)
    assert again.out == f"  i production already serves 1.2.0\nnothing to change in {IRIS}\n"
    assert (repo / IRIS).read_bytes() == before
    assert run_cli("validate", "models/iris", "--offline", cwd=repo).code == 0


def test_ending_a_canary_shadows_and_a_new_environment(repo: Path) -> None:
    assert diff_lines(promote(repo, "production", "--end-canary")) == (["    canary: {version: 1.1.0, weight: 10}"], [])
    assert diff_lines(promote(repo, "production", "--shadow", "1.1.0", "--shadow", "1.2.0")) == (
        ["    shadow: [1.2.0]"], ["    shadow: [1.1.0, 1.2.0]"])
    assert diff_lines(promote(repo, "production", "--no-shadow")) == (["    shadow: [1.1.0, 1.2.0]"], [])
    assert diff_lines(promote(repo, "qa", "1.1.0")) == ([], ["  qa:", "    version: 1.1.0"])
    assert run_cli("validate", "models/iris", "--offline", cwd=repo).code == 0


def test_dry_run_shows_the_diff_and_writes_nothing(repo: Path) -> None:
    before = (repo / IRIS).read_bytes()
    out = promote(repo, "staging", "1.1.0", "--dry-run")
    assert diff_lines(out) == (["    version: 1.2.0"], ["    version: 1.1.0"])
    assert out.endswith(f"dry run: {IRIS} is not written\n")
    assert (repo / IRIS).read_bytes() == before


@pytest.mark.parametrize(("args", "words"), [
    (["production", "9.9.9"], f"{IRIS}:36: deployments.production.version: version 9.9.9 is not in versions\n"
                              "  hint: known versions are: 1.0.0, 1.1.0, 1.2.0"),
    (["production", "--weight", "150"], f"{IRIS}:37: deployments.production.canary.weight: Input should be less "
                                        "than or equal to 99 (got 150)"),
    (["production", "--canary", "1.0.0", "--weight", "5"], "deployments.production.canary.version: the canary is "
                                                           "the version it splits traffic with"),
    (["staging", "--weight", "5"], "--weight: --weight sets the canary's share, but staging has no canary"),
    (["prodution", "1.1.0"], "ENV: prodution is not an environment of models/iris/model.yaml\n"
                             "  hint: did you mean 'production'?"),
    (["Prod", "1.1.0"], "deployments.Prod: 'Prod' is not valid"),
    (["qa"], "VERSION: qa is not deployed yet: name the VERSION it serves"),
    (["production", "--end-canary", "--weight", "5"], "--end-canary removes the canary"),
    (["production", "--rollback", "1.1.0"], "--rollback goes back to what the environment served before"),
    (["production", "--rollback"], "not a git repository"),
])
def test_an_invalid_promotion_changes_nothing(repo: Path, args: list[str], words: str) -> None:
    before = (repo / IRIS).read_bytes()
    result = run_cli("promote", "iris", *args, cwd=repo)
    assert result.code == 1
    assert words in result.err, result.err
    assert "Traceback" not in result.err and result.out == ""
    assert (repo / IRIS).read_bytes() == before


def test_rollback_goes_back_to_what_was_served_before_the_last_committed_change(git_repo: Path) -> None:
    refused = run_cli("promote", "iris", "production", "--rollback", cwd=git_repo)
    assert refused.code == 1 and "there is nothing to roll back to" in refused.err
    promote(git_repo, "production", "1.1.0")
    commit(git_repo, "promote 1.1.0", "Bob Builder")
    out = promote(git_repo, "production", "--rollback")
    assert diff_lines(out) == (["    version: 1.1.0"],
                               ["    version: 1.0.0", "    canary: {version: 1.1.0, weight: 10}"])
    again = run_cli("promote", "iris", "production", "--rollback", cwd=git_repo)
    assert "nothing to change" in again.out  # until the rollback is committed
