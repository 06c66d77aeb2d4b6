"""Helpers for the registry tests: model copies, `mlflow server` processes, running the CLI."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.processes import answers, free_port, stop_group

MODELS = Path(__file__).resolve().parents[2] / "models"
MLFLOW = Path(sys.executable).with_name("mlflow")


def missing_service(reason: str) -> None:
    """Skip, unless the CI asks that every service be there."""
    if os.environ.get("MODELOPS_REQUIRE_SERVICES") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


def copy_model(root: Path, source: str, name: str | None = None) -> Path:
    """Copy example model `source` into `root/models/<name>`, renamed in its manifest."""
    name = name or source
    folder = root / "models" / name
    shutil.copytree(MODELS / source, folder)
    manifest = folder / "model.yaml"
    manifest.write_text(manifest.read_text().replace(f"name: {source}\n", f"name: {name}\n", 1))
    return folder



class Server:
    """A running `mlflow server` we started, stopped by its fixture."""

    def __init__(self, backend: str, work: Path, artifacts: str | None = None,
                 env: dict[str, str] | None = None) -> None:
        """`artifacts`: the --artifacts-destination (default work/artifacts); `env` adds to its environment
        (an object store's endpoint and credentials)."""
        port = free_port()
        self.uri, self.work = f"http://127.0.0.1:{port}", work
        env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", **(env or {})}
        self.log = (work / "mlflow-server.log").open("wb")
        self.process = subprocess.Popen(
            [str(MLFLOW), "server", "-w", "1", "--host", "127.0.0.1", "--port", str(port),
             "--backend-store-uri", backend, "--artifacts-destination", artifacts or str(work / "artifacts"),
             "--serve-artifacts"], stdout=self.log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        if answers(f"{self.uri}/health", self.process, 120):
            return
        self.stop()
        missing_service(f"mlflow server did not start: see {work / 'mlflow-server.log'}")

    def stop(self) -> None:
        if self.process.poll() is None:
            stop_group(self.process)
        self.log.close()



def _env(root: Path, uri: str | None, extra: dict[str, str] | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "MODELOPS_"))}
    env.update(MODELOPS_ROOT=str(root), MODELOPS_LOCK_TIMEOUT="120", MODELOPS_CACHE=str(root.parent / "cache"))
    env.update(extra or {})
    if uri:
        env["MLFLOW_TRACKING_URI"] = uri
    return env


def run(root: Path, *args: str, uri: str | None = None, check: int | None = 0,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """`modelops ARGS` in `root`, as a user runs it; `uri` None means the embedded default."""
    done = subprocess.run([sys.executable, "-m", "modelops", *args], cwd=root, env=_env(root, uri, env),
                          capture_output=True, text=True, timeout=600, check=False)
    if check is not None and done.returncode != check:
        raise AssertionError(f"modelops {' '.join(args)} exited {done.returncode}\n{done.stdout}\n{done.stderr}")
    return done


def popen(root: Path, *args: str, uri: str | None = None, env: dict[str, str] | None = None) -> subprocess.Popen:
    """`modelops ARGS` started in the background (stdout and stderr captured as text)."""
    return subprocess.Popen([sys.executable, "-m", "modelops", *args], cwd=root, env=_env(root, uri, env),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def snapshot(uri: str, *names: str) -> dict:
    """Everything the registry holds about `names`: descriptions, tags, aliases and versions."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    state = {}
    for name in names:
        try:
            model = client.get_registered_model(name)
        except Exception:
            state[name] = None
            continue
        versions = client.search_model_versions(f"name = '{name}'")
        by_number = {v.version: v.tags.get("modelops.version", "?") for v in versions}
        state[name] = {
            "description": model.description, "tags": dict(model.tags),
            "aliases": {alias: by_number.get(number) for alias, number in model.aliases.items()},
            "versions": sorted((v.tags.get("modelops.version", "?"), v.description,
                                sorted(v.tags.items())) for v in versions),
        }
    return state


def score(uri: str, name: str, folder: Path, monkeypatch: pytest.MonkeyPatch) -> list:
    """Predictions of `models:/<name>@production`, loaded with plain MLflow, on the folder's example."""
    import json

    import mlflow
    import pandas as pd

    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    model = mlflow.pyfunc.load_model(f"models:/{name}@production")
    example = json.loads((folder / "example.json").read_text())
    return list(model.predict(pd.DataFrame(example["inputs"])))


def snapshot_in_child(uri: str, *names: str) -> dict:
    """`snapshot` taken by another process: MLflow keeps SQLite connections open, and a test that wipes
    the database file must not read it through one of them."""
    import json

    code = "import json, sys; from tests.registry.helpers import snapshot; print(json.dumps(snapshot(*sys.argv[1:])))"
    done = subprocess.run([sys.executable, "-c", code, uri, *names], capture_output=True, text=True, check=True,
                          cwd=Path(__file__).resolve().parents[2], timeout=300)
    return json.loads(done.stdout.strip().splitlines()[-1])

