"""Apply under faults, with real processes and a real `mlflow server`: SIGKILL at several points, SIGTERM,
a registry that goes away and comes back, a lock left by another host. After each, the next apply finishes
within a minute and the registry matches git exactly (each version once and complete, aliases, no lock)."""

from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow import MlflowClient

from modelops.artifacts import digest
from tests.registry.helpers import Server, popen, run, snapshot

VERSIONS = ["1.0.0", "1.1.0", "1.2.0"]
ALIASES = {"production": "1.0.0", "production-canary": "1.1.0", "production-shadow-0": "1.2.0", "staging": "1.2.0"}


def _matches_git(root: Path, uri: str, name: str) -> None:
    """The registry holds each version once and complete, the aliases git says, and no lock; plan is empty."""
    state = snapshot(uri, name)[name]
    assert [semver for semver, _, _ in state["versions"]] == VERSIONS
    assert all(dict(tags).get("modelops.complete") == "true" for _, _, tags in state["versions"])
    assert state["aliases"] == ALIASES
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    assert client.search_registered_models(f"name = '{name}.modelops-lock'") == []
    run(root, "plan", "--detailed-exitcode", f"models/{name}", uri=uri, check=0)


def _recovers(root: Path, uri: str, name: str) -> str:
    """Run the next apply: it finishes in under a minute; returns its stderr."""
    started = time.monotonic()
    done = run(root, "apply", f"models/{name}", uri=uri)
    assert time.monotonic() - started < 60, done.stderr
    _matches_git(root, uri, name)
    return done.stderr


def _stopped_at(process: subprocess.Popen, line: str, signum: int = signal.SIGKILL) -> tuple[str, str]:
    """Send `signum` to the apply once it printed `line`; returns what it printed (stdout, stderr)."""
    seen = []
    for out in process.stdout:
        seen.append(out)
        if line in out:
            process.send_signal(signum)
            break
    rest, err = process.communicate(timeout=120)
    assert any(line in out for out in seen), "".join(seen) + err
    return "".join(seen) + rest, err


def _big_artifact(root: Path, name: str) -> None:
    """Give version 1.0.0 of `name` a 64 MB file, so that its upload lasts long enough to be cut."""
    folder = root / "models" / name
    (folder / "artifacts" / "1.0.0" / "padding.bin").write_bytes(os.urandom(64 << 20))
    manifest = folder / "model.yaml"
    text = manifest.read_text()
    old = next(line.split("sha256:")[1].strip() for line in text.splitlines()
               if "sha256:" in line)  # the first version's digest comes first
    manifest.write_text(text.replace(old, digest(folder / "artifacts" / "1.0.0"), 1))


@pytest.mark.parametrize("point", ["before the lock", "during an upload", "between versions", "before aliases"])
def test_a_killed_apply_is_finished_by_the_next_within_a_minute(make_repo, mlflow_server, point: str) -> None:
    name = f"iris-killed-{hashlib.sha256(point.encode()).hexdigest()[:6]}"
    root = make_repo(**{name: "iris"})
    uri = mlflow_server.uri
    if point == "during an upload":
        _big_artifact(root, name)
    process = popen(root, "apply", f"models/{name}", uri=uri)
    if point == "before the lock":
        time.sleep(0.3)  # still starting: no request sent yet
        process.kill()
    elif point == "during an upload":
        uploads = mlflow_server.work / "artifacts"
        deadline = time.monotonic() + 120
        while not any(uploads.rglob("padding.bin")) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert any(uploads.rglob("padding.bin")), "the upload never started"
        process.kill()
    else:
        last = "1.0.0" if point == "between versions" else "1.2.0"
        printed, _ = _stopped_at(process, f"+ register {name} {last}")
        assert "set alias" not in printed
    process.communicate(timeout=60)
    _recovers(root, uri, name)


def test_a_sigterm_stops_apply_between_steps_and_releases_its_lock(make_repo, mlflow_server) -> None:
    name = "iris-sigterm"
    root = make_repo(**{name: "iris"})
    process = popen(root, "apply", f"models/{name}", uri=mlflow_server.uri)
    printed, err = _stopped_at(process, f"+ register {name} 1.0.0", signal.SIGTERM)
    assert process.returncode == 1, printed + err
    assert "apply stopped by SIGTERM once the step under way was done" in err and "Traceback" not in err
    client = MlflowClient(tracking_uri=mlflow_server.uri, registry_uri=mlflow_server.uri)
    assert client.search_registered_models(f"name = '{name}.modelops-lock'") == []
    versions = client.search_model_versions(f"name = '{name}'")
    assert versions and all(v.tags.get("modelops.complete") == "true" for v in versions), err
    _recovers(root, mlflow_server.uri, name)


def test_an_apply_whose_registry_went_away_is_finished_after_it_comes_back(make_repo, tmp_path_factory) -> None:
    work = tmp_path_factory.mktemp("outage")
    backend = f"sqlite:///{work / 'mlflow.db'}"
    server = Server(backend, work)
    name = "iris-outage"
    root = make_repo(**{name: "iris"})
    try:
        # each request to the stopped server fails at once, not after MLflow's 14 s of retries
        process = popen(root, "apply", f"models/{name}", uri=server.uri, env={"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"})
        for out in process.stdout:
            if f"+ register {name} 1.0.0" in out:
                server.stop()
                break
        _, err = process.communicate(timeout=180)
        assert process.returncode == 1 and "Traceback" not in err, err
        assert f"cannot reach the registry at {server.uri}" in err
        server = Server(backend, work)  # the same database and artifacts, served again
        _recovers(root, server.uri, name)
    finally:
        server.stop()


def _plant_lock(uri: str, name: str, *, renewed_ago: float, lease: float) -> None:
    """A lock as an apply on another machine holds it, last renewed `renewed_ago` seconds ago."""
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    now = time.time()
    client.create_registered_model(f"{name}.modelops-lock", tags={
        "modelops.lock.holder": "ci-runner-7 pid 4242 (0123456789ab)",
        "modelops.lock.process": "other-boot/pid:[1]:4242:99",
        "modelops.lock.ci_run": "https://ci.example.com/runs/17", "modelops.lock.since": f"{now - 100:.3f}",
        "modelops.lock.renewed": f"{now - renewed_ago:.3f}", "modelops.lock.lease": f"{lease:g}"})


@pytest.mark.parametrize("lease", [3, 30], ids=["short lease", "the default lease"])
def test_a_lock_another_host_stopped_renewing_is_taken_over_after_its_lease(make_repo, mlflow_server,
                                                                           lease: int) -> None:
    name = f"iris-stale-{lease}"
    root = make_repo(**{name: "iris"})
    _plant_lock(mlflow_server.uri, name, renewed_ago=50, lease=lease)
    err = _recovers(root, mlflow_server.uri, name)
    assert re.search(rf"taking over the lock {name}\.modelops-lock from ci-runner-7 pid 4242 \(0123456789ab\), CI "
                     r"run https://ci\.example\.com/runs/17, for 1\d\d s, renewed \d+ s ago: "
                     rf"it was not renewed for {lease} s", err), err


def test_unlock_refuses_a_live_lock_unless_forced_and_plan_shows_it(make_repo, mlflow_server) -> None:
    name = "iris-unlock"
    root = make_repo(**{name: "iris"})
    uri = mlflow_server.uri
    run(root, "apply", f"models/{name}", uri=uri)
    planted = time.monotonic()
    _plant_lock(uri, name, renewed_ago=1, lease=30)
    try:
        note = run(root, "plan", f"models/{name}", uri=uri).stdout
        waited = time.monotonic() - planted  # a loaded machine may take seconds to plan
        assert f"  i {name} is locked by another apply: ci-runner-7 pid 4242 (0123456789ab), CI run " in note
        held = re.search(r"for (\d+) s, renewed (\d+) s ago", note)
        assert held and f"`modelops unlock {name}`" in note, note
        assert 100 <= int(held[1]) <= 101 + waited and 1 <= int(held[2]) <= 2 + waited, note
        refused = run(root, "unlock", name, uri=uri, check=1)
        assert refused.stderr.startswith(f"error: the lock of {name} is held by ci-runner-7 pid 4242")
        assert "looks alive" in refused.stderr and "--force" in refused.stderr
    finally:  # whatever failed above, later tests on this server must not find the planted lock
        forced = run(root, "unlock", name, "--force", uri=uri)
    assert forced.stdout.startswith(f"released the lock of {name} (held by ci-runner-7 pid 4242")
    assert run(root, "unlock", name, uri=uri).stdout == f"{name} is not locked: nothing to do\n"
    assert "is not a model name" in run(root, "unlock", "Not/A-Name", uri=uri, check=1).stderr
    _matches_git(root, uri, name)


def test_unlock_releases_a_lock_whose_process_on_this_machine_is_gone(make_repo, mlflow_server) -> None:
    name = "iris-orphan"
    root = make_repo(**{name: "iris"})
    process = popen(root, "apply", f"models/{name}", uri=mlflow_server.uri)
    _stopped_at(process, f"+ register {name} 1.0.0")
    process.wait(timeout=60)
    done = run(root, "unlock", name, uri=mlflow_server.uri)  # no --force: its holder is known to be gone
    assert done.stdout.startswith(f"released the lock of {name} (held by ")
    _recovers(root, mlflow_server.uri, name)


if sys.platform != "linux":  # the process checks read /proc
    pytestmark = pytest.mark.skip(reason="Linux only")
