"""plan and apply on the embedded default (SQLite under .modelops/): nothing to start, as the README runs it."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request

from mlflow import MlflowClient

from modelops.artifacts import digest
from tests.processes import free_port, wait_for_port
from tests.registry.helpers import popen, run, score, snapshot, snapshot_in_child


def embedded_uri(root) -> str:
    return f"sqlite:///{root / '.modelops' / 'mlflow.db'}"


def test_apply_plan_and_disaster_recovery(make_repo, monkeypatch) -> None:
    root = make_repo()
    uri = embedded_uri(root)
    assert json.loads(run(root, "plan", "--format", "json").stdout)["actions"][0] == {
        "kind": "create-model", "model": "diabetes", "tags": {"modelops.managed": "true",
                                                              "modelops.owners": "@ml-team, @health/analytics"},
        "description": "One-year disease progression from ten baseline measurements (scaled)"}
    applied = run(root, "apply")
    assert applied.stdout.endswith(f"applied 14 action(s) to {uri}\n")
    assert run(root, "apply").stdout == f"nothing to do: the registry at {uri} matches git\n"
    assert run(root, "plan").stdout == "no changes: the registry matches git\n"
    assert (root / ".modelops/artifacts").is_dir()
    before = snapshot_in_child(uri, "iris", "diabetes")

    (root / ".modelops/mlflow.db").unlink()  # the registry's database is lost
    shutil.rmtree(root / ".modelops/artifacts")
    lost = run(root, "plan", "--format", "json", "--detailed-exitcode", check=2)
    assert len(json.loads(lost.stdout)["actions"]) == 14
    run(root, "apply")
    run(root, "plan", "--detailed-exitcode", check=0)
    assert json.loads(json.dumps(snapshot(uri, "iris", "diabetes"))) == before
    assert score(uri, "iris", root / "models/iris", monkeypatch) == [0, 1, 2]


def test_model_removed_from_git_is_reported_and_kept(make_repo) -> None:
    root = make_repo()
    run(root, "apply")
    shutil.rmtree(root / "models/diabetes")
    plan = json.loads(run(root, "plan", "--format", "json", "--detailed-exitcode", check=2).stdout)
    assert plan == {"actions": [], "drift": [{
        "kind": "not-in-git", "model": "diabetes", "subject": "diabetes", "blocking": False,
        "message": "registered model diabetes has no folder in git (kept; delete it in MLflow if it is retired)"}],
        "notes": []}
    applied = run(root, "apply").stdout
    assert "  ! registered model diabetes has no folder in git" in applied
    assert snapshot(embedded_uri(root), "diabetes")["diabetes"] is not None


def test_version_removed_from_git_is_kept_and_a_note_not_drift(make_repo) -> None:
    root = make_repo(iris="iris")
    run(root, "apply")
    manifest = root / "models/iris/model.yaml"
    text = manifest.read_text()
    entry = text[text.index("  - version: 1.2.0"):text.index("deployments:")]
    manifest.write_text(text.replace(entry, "").replace("    shadow: [1.2.0]\n", "")
                        .replace("  staging:\n    version: 1.2.0", "  staging:\n    version: 1.1.0"))
    note = "iris 1.2.0 (MLflow version 3) is not in the manifest (kept, never deleted)"
    plan = json.loads(run(root, "plan", "--format", "json", "--detailed-exitcode", check=2).stdout)
    assert plan["drift"] == [] and plan["notes"] == [note]
    assert f"  i {note}" in run(root, "apply").stdout
    in_sync = run(root, "plan", "--detailed-exitcode", check=0).stdout
    assert in_sync == f"  i {note}\nno changes: the registry matches git\n"
    assert "1.2.0" in [v for v, *_ in snapshot(embedded_uri(root), "iris")["iris"]["versions"]]


def test_sha256_tag_edited_in_the_registry_is_reported_once_as_the_registry_s(make_repo) -> None:
    root = make_repo(iris="iris")
    run(root, "apply")
    uri = embedded_uri(root)
    MlflowClient(tracking_uri=uri, registry_uri=uri).set_model_version_tag("iris", "1", "modelops.sha256", "0" * 64)
    before = snapshot_in_child(uri, "iris")
    for verb in ("plan", "apply"):
        refused = run(root, verb, check=1)
        output = refused.stdout + refused.stderr
        assert output.count("changed outside git") == 1 and "Traceback" not in output
        assert refused.stderr.startswith("models/iris/model.yaml:21: sha256: iris 1.0.0 (MLflow version 1): the "
                                         "registry's tag modelops.sha256 was changed outside git")
        assert "hint: restore the tag modelops.sha256 of MLflow version 1 to 839faf83e5f7" in refused.stderr
    assert snapshot_in_child(uri, "iris") == before


def test_invalid_manifest_is_refused_before_any_write(make_repo) -> None:
    root = make_repo(iris="iris")
    manifest = root / "models/iris/model.yaml"
    manifest.write_text(manifest.read_text().replace("staging:\n    version: 1.2.0", "staging:\n    version: 2.0.0"))
    done = run(root, "apply", check=1)
    assert done.stderr.startswith("models/iris/model.yaml:")
    assert "deployments.staging.version: version 2.0.0 is not in versions" in done.stderr
    assert snapshot(embedded_uri(root), "iris") == {"iris": None}


def test_single_pickle_file_is_wrapped_into_a_loadable_mlflow_model(make_repo, monkeypatch) -> None:
    root = make_repo(**{"iris-pickle": "iris"})
    folder = root / "models/iris-pickle"
    pickle_file = folder / "artifacts/1.0.0/model.pkl"
    text = (folder / "model.yaml").read_text().replace("uri: artifacts/1.0.0/", "uri: artifacts/1.0.0/model.pkl")
    (folder / "model.yaml").write_text(text.replace(
        "839faf83e5f76f9c34d714d7cbf4c8ac5c8d2ef9e9e3a33c9ebcfbacb34ae18a", digest(pickle_file)))
    run(root, "apply")
    assert score(embedded_uri(root), "iris-pickle", folder, monkeypatch) == [0, 1, 2]


def test_unreachable_artifact_half_way_then_the_next_apply_converges(make_repo, tmp_path) -> None:
    root = make_repo(diabetes="diabetes")
    folder = root / "models/diabetes"
    served = tmp_path / "served"
    served.mkdir()
    port = free_port()
    sha = digest(folder / "artifacts/1.0.0/model.skops")
    text = (folder / "model.yaml").read_text().replace("deployments:\n", f"  - version: 1.1.0\n    artifact:\n"
                                                       f"      uri: http://127.0.0.1:{port}/model.skops\n"
                                                       f"      sha256: {sha}\ndeployments:\n")
    (folder / "model.yaml").write_text(text.replace("production: {version: 1.0.0}", "production: {version: 1.1.0}"))
    server = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"], cwd=served,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port)
        failed = run(root, "apply", check=1)  # the artifact is not there yet: 404
        assert "  + register diabetes 1.0.0" in failed.stdout and "1.1.0" not in failed.stdout
        assert failed.stderr.startswith(f"error: cannot fetch 'http://127.0.0.1:{port}/model.skops'")
        assert "Traceback" not in failed.stderr
        half = snapshot_in_child(embedded_uri(root), "diabetes")["diabetes"]
        assert [v[0] for v in half["versions"]] == ["1.0.0"] and half["aliases"] == {}

        shutil.copyfile(folder / "artifacts/1.0.0/model.skops", served / "model.skops")
        converged = run(root, "apply").stdout
        assert "  + register diabetes 1.1.0" in converged and "register diabetes 1.0.0" not in converged
    finally:
        server.terminate()
        server.wait(timeout=10)
    run(root, "plan", "--detailed-exitcode", check=0)


def test_a_held_lock_is_waited_for_and_a_stale_one_taken_over(make_repo) -> None:
    root = make_repo(iris="iris")
    uri = embedded_uri(root)
    run(root, "plan")  # creates the database
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    lock = "iris.modelops-lock"
    now = f"{time.time():.3f}"
    client.create_registered_model(lock, tags={"modelops.lock.holder": "another apply", "modelops.lock.since": now,
                                               "modelops.lock.renewed": now, "modelops.lock.lease": "3600"})
    plan = run(root, "plan", "--detailed-exitcode", check=2).stdout  # the lock is information, not drift
    assert re.search(r"  i iris is locked by another apply: another apply, for \d+ s, renewed \d+ s ago \(apply "
                     r"waits for it; `modelops unlock iris` releases a lock whose apply is gone\)", plan)
    assert "0 drift" in plan
    assert json.loads(run(root, "plan", "--format", "json").stdout)["notes"][0].startswith("iris is locked")
    waited = run(root, "apply", check=1, env={"MODELOPS_LOCK_TIMEOUT": "2"})
    assert waited.stderr.startswith(f"waiting for the lock {lock} held by another apply, for ")
    assert "(taken over if it is not renewed for 3600 s; giving up after 2s)\n" in waited.stderr
    assert "error: another apply has been changing iris for over 2s: another apply, for " in waited.stderr
    assert waited.stderr.endswith("  hint: retry later; if that apply is gone, `modelops unlock iris` releases "
                                  "the lock\n")
    assert snapshot(uri, "iris") == {"iris": None}

    # A lock an earlier version left (an expiry instead of a lease): taken over once it expires.
    client.delete_registered_model(lock)
    client.create_registered_model(lock, tags={"modelops.lock.holder": "an older apply",
                                               "modelops.lock.expires": str(int(time.time()) + 5)})
    took_over = run(root, "apply")
    assert took_over.stderr.splitlines()[-1] == f"taking over the lock {lock} from an older apply: its expiry passed"
    assert "  + register iris 1.2.0" in took_over.stdout
    assert [m.name for m in client.search_registered_models()] == ["iris"]


def test_pyproject_mistakes_are_one_error_for_every_verb(make_repo) -> None:
    root = make_repo(**{"iris-typo": "iris"})
    (root / "pyproject.toml").write_text('[tool.modelops]\ntrackng_uri = "http://127.0.0.1:9"\n')
    done = run(root, "plan", check=1)
    assert done.stderr.startswith("pyproject.toml: tool.modelops.trackng_uri: unknown setting 'trackng_uri' "
                                  "(did you mean 'tracking_uri'?)")
    assert not (root / ".modelops").exists()
    (root / "pyproject.toml").write_text('[tool]\nmodelops = "x"\n')
    for verb in ("plan", "apply", "scan"):
        done = run(root, verb, check=1)
        assert done.stderr.startswith("pyproject.toml: tool.modelops: is not a table"), done.stderr
        assert "Traceback" not in done.stderr


def test_serve_of_a_registered_alias_reads_the_registry_apply_wrote(make_repo) -> None:
    root = make_repo(iris="iris")
    run(root, "apply")
    port = free_port()
    server = popen(root, "serve", "models:/iris@production", "--port", str(port))  # no MLFLOW_TRACKING_URI
    try:
        wait_for_port(port, timeout=120)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # /ready is 503 until the model is loaded
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=5).close()
                break
            except urllib.error.HTTPError:
                time.sleep(0.3)
        rows = json.loads((root / "models/iris/example.json").read_text())["inputs"]
        request = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", method="POST",
                                         data=json.dumps({"dataframe_records": rows}).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as answer:
            assert len(json.loads(answer.read())["predictions"]) == len(rows)
    finally:
        server.terminate()
        _, err = server.communicate(timeout=30)
    assert "not found" not in err
    assert not (root / "mlflow.db").exists()
