"""plan and apply against a real `mlflow server` (SQLite backend, artifacts served), as CI on main runs them."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from dataclasses import replace

import pytest
from mlflow import MlflowClient

from modelops import settings as modelops_settings
from modelops.artifacts import digest
from modelops.errors import ModelopsError
from modelops.registry.client import Registry
from modelops.workspace import Workspace
from tests.registry.helpers import free_port, popen, run, score, snapshot


def lock_models(uri: str) -> list[str]:
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    return [m.name for m in client.search_registered_models("name LIKE '%.modelops-lock'")]


def test_apply_twice_then_nothing_and_versions_load_with_plain_mlflow(make_repo, mlflow_server, monkeypatch) -> None:
    root = make_repo(**{"iris-twice": "iris", "diabetes-twice": "diabetes"})
    first = run(root, "apply", "models/iris-twice", "models/diabetes-twice", uri=mlflow_server.uri)
    assert first.stdout.count("  + register ") == 4
    second = run(root, "apply", "models/iris-twice", "models/diabetes-twice", uri=mlflow_server.uri)
    assert second.stdout == f"nothing to do: the registry at {mlflow_server.uri} matches git\n"
    plan = run(root, "plan", "--format", "json", "models/iris-twice", "models/diabetes-twice", uri=mlflow_server.uri)
    assert json.loads(plan.stdout) == {"actions": [], "drift": [], "notes": []}

    state = snapshot(mlflow_server.uri, "iris-twice")["iris-twice"]
    assert state["aliases"] == {"production": "1.0.0", "production-canary": "1.1.0", "production-shadow-0": "1.2.0",
                                "staging": "1.2.0"}
    tags = dict(state["versions"][0][2])
    assert tags["modelops.version"] == "1.0.0" and tags["modelops.complete"] == "true"
    assert tags["modelops.sha256"] == digest(root / "models/iris-twice/artifacts/1.0.0")
    assert tags["modelops.owners"] == "@ml-team" and tags["modelops.git_commit"] == "unknown"
    assert len(tags["modelops.manifest_sha256"]) == 64

    expected = json.loads((root / "models/iris-twice/example.json").read_text())["outputs"]
    assert score(mlflow_server.uri, "iris-twice", root / "models/iris-twice", monkeypatch) == \
        [row["species"] for row in expected]
    predictions = score(mlflow_server.uri, "diabetes-twice", root / "models/diabetes-twice", monkeypatch)
    assert len(predictions) == 2 and all(25 < p < 346 for p in predictions)  # the data set's target range


def test_hand_moved_alias_is_drift_and_apply_repairs_it(make_repo, mlflow_server) -> None:
    root = make_repo(**{"iris-moved": "iris"})
    run(root, "apply", "models/iris-moved", uri=mlflow_server.uri)
    client = MlflowClient(tracking_uri=mlflow_server.uri, registry_uri=mlflow_server.uri)
    client.set_registered_model_alias("iris-moved", "production", "3")

    plan = run(root, "plan", "--detailed-exitcode", "models/iris-moved", uri=mlflow_server.uri, check=2)
    assert "  + move alias iris-moved@production: 1.2.0 -> 1.0.0" in plan.stdout
    assert "  ! drift: iris-moved@production points at 1.2.0; apply last set 1.0.0" in plan.stdout
    markdown = run(root, "plan", "--format", "markdown", "models/iris-moved", uri=mlflow_server.uri).stdout
    assert "| iris-moved | set-alias | @production | 1.2.0 | 1.0.0 |" in markdown
    assert "- iris-moved@production points at 1.2.0; apply last set 1.0.0" in markdown

    run(root, "apply", "models/iris-moved", uri=mlflow_server.uri)
    assert client.get_model_version_by_alias("iris-moved", "production").version == "1"
    run(root, "plan", "--detailed-exitcode", "models/iris-moved", uri=mlflow_server.uri, check=0)


def test_reverting_a_promotion_rolls_the_alias_back(make_repo, mlflow_server) -> None:
    root = make_repo(**{"iris-rollback": "iris"})
    git = ["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "iris"], check=True)
    run(root, "apply", "models/iris-rollback", uri=mlflow_server.uri)

    manifest = root / "models/iris-rollback/model.yaml"
    staging = "  staging:\n    version: 1.{}.0"
    manifest.write_text(manifest.read_text().replace(staging.format(2), staging.format(1)))
    subprocess.run([*git, "commit", "-qam", "promote 1.1.0 to staging"], check=True)
    promoted = run(root, "apply", "models/iris-rollback", uri=mlflow_server.uri)
    assert "  + move alias iris-rollback@staging: 1.2.0 -> 1.1.0" in promoted.stdout
    client = MlflowClient(tracking_uri=mlflow_server.uri, registry_uri=mlflow_server.uri)
    assert client.get_model_version_by_alias("iris-rollback", "staging").tags["modelops.version"] == "1.1.0"

    subprocess.run([*git, "revert", "--no-edit", "HEAD"], check=True, capture_output=True)
    rolled_back = run(root, "apply", "models/iris-rollback", uri=mlflow_server.uri)
    assert "  + move alias iris-rollback@staging: 1.1.0 -> 1.2.0" in rolled_back.stdout
    assert client.get_model_version_by_alias("iris-rollback", "staging").tags["modelops.version"] == "1.2.0"
    assert len(client.search_model_versions("name = 'iris-rollback'")) == 3


def test_changed_artifact_of_a_registered_version_is_refused_with_nothing_written(make_repo, mlflow_server) -> None:
    root = make_repo(**{"iris-changed": "iris"})
    run(root, "apply", "models/iris-changed", uri=mlflow_server.uri)
    before = snapshot(mlflow_server.uri, "iris-changed")

    folder = root / "models/iris-changed"
    mlmodel = folder / "artifacts/1.0.0/MLmodel"
    mlmodel.write_text(mlmodel.read_text() + "# retrained\n")
    text = (folder / "model.yaml").read_text()
    old = digest(folder / "artifacts/1.0.0")
    new_version = "  - version: 1.3.0\n    artifact:\n      uri: artifacts/1.2.0/\n      sha256: " \
                  f"{digest(folder / 'artifacts/1.2.0')}\ndeployments:\n"
    text = text.replace("839faf83e5f76f9c34d714d7cbf4c8ac5c8d2ef9e9e3a33c9ebcfbacb34ae18a", old)
    (folder / "model.yaml").write_text(text.replace("deployments:\n", new_version).replace(
        "  staging:\n    version: 1.2.0", "  staging:\n    version: 1.3.0"))

    refused = run(root, "apply", "models/iris-changed", uri=mlflow_server.uri, check=1)
    assert refused.stdout == ""
    assert refused.stderr.startswith("models/iris-changed/model.yaml:21: sha256: iris-changed 1.0.0 is registered "
                                     "with artifact sha256 839faf83e5f7")
    assert "hint: a registered version never changes: bump the version" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert snapshot(mlflow_server.uri, "iris-changed") == before
    assert lock_models(mlflow_server.uri) == []
    plan = run(root, "plan", "--format", "json", "models/iris-changed", uri=mlflow_server.uri, check=1)
    assert [d["kind"] for d in json.loads(plan.stdout)["drift"]] == ["digest"]


def test_half_registered_version_is_finished_not_registered_twice(make_repo, mlflow_server) -> None:
    root = make_repo(**{"iris-half": "iris"})
    run(root, "apply", "models/iris-half", uri=mlflow_server.uri)
    client = MlflowClient(tracking_uri=mlflow_server.uri, registry_uri=mlflow_server.uri)
    client.delete_model_version_tag("iris-half", "2", "modelops.complete")  # as if apply died before its last write

    plan = run(root, "plan", "models/iris-half", uri=mlflow_server.uri).stdout
    assert "  + finish half-registered iris-half 1.1.0 (MLflow version 2)" in plan
    run(root, "apply", "models/iris-half", uri=mlflow_server.uri)
    versions = client.search_model_versions("name = 'iris-half'")
    assert sorted(v.tags["modelops.version"] for v in versions) == ["1.0.0", "1.1.0", "1.2.0"]
    assert all(v.tags["modelops.complete"] == "true" for v in versions)


def test_concurrent_applies_register_each_version_once(make_repo, mlflow_server) -> None:
    root = make_repo(**{"iris-race": "iris"})
    both = [popen(root, "apply", "models/iris-race", uri=mlflow_server.uri) for _ in range(2)]
    outputs = [process.communicate(timeout=600) for process in both]
    assert [process.returncode for process in both] == [0, 0], outputs
    registered = sum(out.count("  + register ") for out, _ in outputs)
    assert registered == 3
    client = MlflowClient(tracking_uri=mlflow_server.uri, registry_uri=mlflow_server.uri)
    versions = client.search_model_versions("name = 'iris-race'")
    assert sorted(v.tags["modelops.version"] for v in versions) == ["1.0.0", "1.1.0", "1.2.0"]
    assert lock_models(mlflow_server.uri) == []
    run(root, "plan", "--detailed-exitcode", "models/iris-race", uri=mlflow_server.uri, check=0)


@pytest.mark.parametrize("fmt", ["text", "markdown", "json"])
def test_plan_of_a_new_model_lists_what_apply_will_do(make_repo, mlflow_server, fmt: str) -> None:
    root = make_repo(**{f"iris-new-{fmt}": "iris"})
    folder = f"models/iris-new-{fmt}"
    out = run(root, "plan", "--format", fmt, "--detailed-exitcode", folder, uri=mlflow_server.uri, check=2).stdout
    if fmt == "json":
        assert [a["kind"] for a in json.loads(out)["actions"]] == ["create-model"] + ["register"] * 3 + \
            ["set-alias"] * 4 + ["update-model"]
    else:
        assert "register" in out and "9 action(s), 0 drift" in out
    assert snapshot(mlflow_server.uri, f"iris-new-{fmt}") == {f"iris-new-{fmt}": None}


def test_unreachable_registry_is_a_clear_error(make_repo) -> None:
    root = make_repo(**{"iris-down": "iris"})
    done = run(root, "plan", uri=f"http://127.0.0.1:{free_port()}", check=1,
               env={"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "5"})
    assert done.stderr.startswith("error: cannot reach the registry at http://127.0.0.1:")
    assert "Connection refused\n  hint: is the MLflow server running?" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(("uri", "message", "hint"), [
    ("foo://x", "'foo://x' is not a tracking URI modelops can use", "set the http(s):// URL"),
    ("file:///tmp/mlruns", "is not a tracking URI modelops can use", "set the http(s):// URL"),
    ("not a uri", "'not a uri' is not a tracking URI", "set the http(s):// URL"),
    ("sqlite:///:memory:", "is an in-memory database", "set the http(s):// URL"),
    ("mysql://x", "needs the Python module MySQLdb, which is not installed", "pip install mysqlclient"),
    ("postgresql://u@127.0.0.1:1/db", "needs the Python module psycopg,", "pip install 'psycopg[binary]'"),
])
def test_unusable_tracking_uri_names_the_setting_and_its_source(make_repo, uri: str, message: str,
                                                                hint: str) -> None:
    root = make_repo(**{"iris-bad-uri": "iris"})
    for verb in ("plan", "apply"):
        done = run(root, verb, uri=uri, check=1)
        assert done.stderr.startswith("MLFLOW_TRACKING_URI: tool.modelops.tracking_uri: "), done.stderr
        assert message in done.stderr and f"hint: {hint}" in done.stderr
        assert "Traceback" not in done.stderr
    (root / "pyproject.toml").write_text(f"[tool.modelops]\ntracking_uri = {json.dumps(uri)}\n")
    done = run(root, "plan", check=1)
    assert done.stderr.startswith("pyproject.toml: tool.modelops.tracking_uri: ") and message in done.stderr


def test_unopenable_database_and_non_string_uri_name_the_setting(make_repo) -> None:
    root = make_repo(**{"iris-no-db": "iris"})
    (root / "not-a-dir").write_text("")
    done = run(root, "plan", uri=f"sqlite:///{root}/not-a-dir/mlflow.db", check=1)
    assert done.stderr.startswith("MLFLOW_TRACKING_URI: tool.modelops.tracking_uri: cannot open the registry at ")
    assert "Traceback" not in done.stderr
    (root / "pyproject.toml").write_text("[tool.modelops]\ntracking_uri = 5\n")
    done = run(root, "plan", check=1)
    assert done.stderr.startswith("pyproject.toml: tool.modelops.tracking_uri: '5' is not a tracking URI")


def _workspace(root, uri: str, lock_timeout: float, lock_lease: float = 30) -> Workspace:
    """A workspace whose settings name `uri`, `lock_timeout` and `lock_lease`."""
    ws = Workspace(root)
    ws.settings = replace(modelops_settings.load(root), tracking_uri=uri, lock_timeout=lock_timeout,
                          lock_lease=lock_lease)
    return ws


def test_lock_is_exclusive_while_holders_release_it_under_contention(tmp_path, mlflow_server) -> None:
    """Eight holders take one model's lock 25 times each: the store often sees the lock, then loses it."""
    settings = _workspace(tmp_path, mlflow_server.uri, lock_timeout=120)
    inside, most, failures = [0], [0], []
    guard = threading.Lock()

    def hold() -> None:
        registry = Registry(settings)
        try:
            for _ in range(25):
                with registry.lock("contended"):
                    with guard:
                        inside[0] += 1
                        most[0] = max(most[0], inside[0])
                    with guard:
                        inside[0] -= 1
        except Exception as exc:  # reported by the assertion below
            failures.append(repr(exc))

    holders = [threading.Thread(target=hold) for _ in range(8)]
    for holder in holders:
        holder.start()
    for holder in holders:
        holder.join(timeout=300)
    assert failures == [] and most[0] == 1
    assert lock_models(mlflow_server.uri) == []


def test_a_held_lock_is_renewed_so_a_long_apply_is_never_taken_over(tmp_path, mlflow_server) -> None:
    settings = _workspace(tmp_path, mlflow_server.uri, lock_timeout=6, lock_lease=3)
    taken, released = threading.Event(), threading.Event()

    def long_apply() -> None:
        with Registry(settings).lock("long"):
            taken.set()
            time.sleep(14)  # well past the lease: only the renewals (every second) keep the lock
        released.set()

    holder = threading.Thread(target=long_apply)
    holder.start()
    assert taken.wait(60)
    waiter = Registry(settings)
    with pytest.raises(ModelopsError, match="another apply has been changing long for over 6s"), waiter.lock("long"):
        pass
    assert not released.is_set()
    holder.join(60)
    with Registry(settings).lock("long"):  # free again once released
        pass
    assert lock_models(mlflow_server.uri) == []
