"""`apply --format json`: what was carried out, in plan's shape, on stdout alone (progress on stderr)."""

from __future__ import annotations

import json

from tests.registry.helpers import run


def test_apply_json_lists_the_actions_carried_out_then_none(make_repo, mlflow_server) -> None:
    root = make_repo(**{"diabetes-json": "diabetes"})
    planned = json.loads(run(root, "plan", "--format", "json", "models/diabetes-json", uri=mlflow_server.uri).stdout)
    done = run(root, "apply", "--format", "json", "models/diabetes-json", uri=mlflow_server.uri)
    applied = json.loads(done.stdout)
    assert applied["actions"] == planned["actions"]  # carried out as planned
    assert [a["version"] for a in applied["actions"] if a["kind"] == "register"] == ["1.0.0"]
    assert {a["alias"]: a["new"] for a in applied["actions"] if a["kind"] == "set-alias"} == {
        "staging": "1.0.0", "production": "1.0.0"}
    assert (applied["drift"], applied["images"], applied["recorded"]) == ([], [], [])
    assert "  + register diabetes-json 1.0.0" in done.stderr and "applied " in done.stderr

    again = json.loads(run(root, "apply", "--format", "json", "models/diabetes-json", uri=mlflow_server.uri).stdout)
    assert again == {"actions": [], "drift": [], "notes": [], "images": [], "recorded": []}
