"""`deployments.<env>.rollout`: a bad policy is refused by validate, located at its line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelops.manifest.model import Rollout, seconds
from tests.conftest import run_cli

IRIS = "models/iris/model.yaml"
GOOD = "rollout: {steps: [10, 30, 100], window: 10m, min_requests: 500, max_error_rate: 0.01}"


def with_policy(repo: Path, policy: str) -> None:
    path = repo / IRIS
    path.write_text(path.read_text().replace("    shadow: [1.2.0]\n", f"    shadow: [1.2.0]\n    {policy}\n"))


# (id, policy, field, words in the message or hint)
CASES = [
    ("steps-not-increasing", "rollout: {steps: [30, 10, 100], max_error_rate: 0.01}",
     "deployments.production.rollout.steps", "steps [30, 10, 100] do not rise to 100"),
    ("steps-not-ending-at-100", "rollout: {steps: [10, 50], max_error_rate: 0.01}",
     "deployments.production.rollout.steps", "ending with 100"),
    ("only-the-promotion", "rollout: {steps: [100], max_error_rate: 0.01}", "deployments.production.rollout.steps",
     "without a step to judge the canary at"),
    ("step-above-100", "rollout: {steps: [10, 150], max_error_rate: 0.01}", "deployments.production.rollout.steps[1]",
     "less than or equal to 100"),
    ("window-in-words", "rollout: {steps: [10, 100], window: 10 minutes, max_error_rate: 0.01}",
     "deployments.production.rollout.window", "such as 30s, 10m or 1h"),
    ("unknown-key", "rollout: {steps: [10, 100], max_error: 0.01}", "deployments.production.rollout.max_error",
     "did you mean 'max_error_rate'"),
    ("bounds-nothing", "rollout: {steps: [10, 100]}", "deployments.production.rollout", "the policy bounds nothing"),
    ("rate-above-one", "rollout: {steps: [10, 100], max_error_rate: 1.5}",
     "deployments.production.rollout.max_error_rate", "less than or equal to 1"),
    ("ratio-zero", "rollout: {steps: [10, 100], max_p99_ratio: 0}", "deployments.production.rollout.max_p99_ratio",
     "greater than 0"),
    ("auto-rollback-as-text", "rollout: {steps: [10, 100], max_error_rate: 0.01, auto_rollback: 'yes'}",
     "deployments.production.rollout.auto_rollback", "valid boolean"),
]


@pytest.mark.parametrize(("policy", "field", "words"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_bad_policy_is_located(repo: Path, policy: str, field: str, words: str) -> None:
    with_policy(repo, policy)
    result = run_cli("validate", "models/iris", "--offline", cwd=repo)
    assert result.code == 1, result.err
    assert f"{IRIS}:39: {field}: " in result.err, result.err
    assert words in result.err and "Traceback" not in result.err


def test_a_good_policy_validates_and_is_in_the_schema(repo: Path) -> None:
    with_policy(repo, GOOD)
    result = run_cli("validate", "models/iris", "--offline", cwd=repo)
    assert result.code == 0, result.err
    schema = run_cli("schema", cwd=repo).out
    assert '"min_shadow_agreement"' in schema and '"auto_rollback"' in schema


def test_defaults_and_durations() -> None:
    policy = Rollout.model_validate({"steps": [10, 100], "max_error_rate": 0.01})
    assert (policy.window, policy.min_requests, policy.auto_rollback) == ("10m", 100, False)
    assert [seconds(d) for d in ("30s", "10m", "1h")] == [30, 600, 3600]
