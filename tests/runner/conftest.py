"""Runner fixtures: model folders made on the fly, and real `modelops serve` processes on free ports."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import joblib
import pytest
import yaml
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from modelops.artifacts import digest
from modelops.runner.app import create_app
from modelops.runner.loading import resolve
from modelops.runner.runtime import RunnerSettings
from tests.processes import free_port, stop_group

ROOT = Path(__file__).resolve().parents[2]
IRIS = ROOT / "models" / "iris"
PYTHONPATH = os.pathsep.join((str(ROOT / "scripts"), str(ROOT)))  # this tree's modelops, before an installed one


def make_model(folder: Path, versions: dict[str, object], deployments: dict, inputs: list[dict] | None = None) -> Path:
    """A model folder `toy` (inputs x, y: double, or `inputs`; output label: long) with pickled `versions`."""
    folder.mkdir(parents=True)
    entries = []
    for number, model in versions.items():
        path = folder / "artifacts" / f"{number}.pkl"
        path.parent.mkdir(exist_ok=True)
        joblib.dump(model, path)
        entries.append({"version": number, "artifact": {"uri": f"artifacts/{number}.pkl", "sha256": digest(path)}})
    manifest = {"name": "toy", "description": "A toy model for the runner's tests", "owners": ["@ml-team"],
                "flavor": "sklearn", "signature": {"inputs": inputs or [{"name": "x", "type": "double"},
                                                                        {"name": "y", "type": "double"}],
                                                   "outputs": [{"name": "label", "type": "long"}]},
                "versions": entries, "deployments": deployments}
    (folder / "model.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    return folder


def wait_ready(client: httpx.Client | TestClient, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.TransportError):
            body = client.get("/ready").json()
            if body["ready"]:
                return
            if body["problem"] != "the model is loading":
                raise AssertionError(f"not ready: {body['problem']}")
        time.sleep(0.1)
    raise AssertionError("the server did not become ready")


@contextlib.contextmanager
def asgi(target: str | Path, environment: str | None = None, version: str | None = None,
         ready: bool = True, **settings: object) -> Iterator[TestClient]:
    """The app in-process (lifespan included), for ASGI-level tests."""
    app = create_app(resolve(str(target), environment, version), RunnerSettings(**settings))
    with TestClient(app, raise_server_exceptions=False) as client:
        if ready:
            wait_ready(client)
        yield client


class Servers:
    """`modelops serve ARGS` processes on free ports, each stopped (by its own PID) in `stop_all`."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.started: list[tuple[subprocess.Popen, httpx.Client]] = []

    def start(self, *args: str, ready: bool = True, env: dict[str, str] | None = None,
              host: str = "127.0.0.1") -> httpx.Client:
        """The server's output goes to `folder/serve-PORT.log`; `env` adds environment variables; it binds
        `host` (an IPv4 address)."""
        port = free_port()
        env = {**os.environ, "PYTHONPATH": PYTHONPATH, "MODELOPS_CACHE": str(self.folder / "cache"), **(env or {})}
        log = self.folder / f"serve-{port}.log"
        with log.open("w") as out:
            process = subprocess.Popen([sys.executable, "-m", "modelops", "serve", *args, "--host", host,
                                        "--port", str(port)],
                                       stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        client = httpx.Client(base_url=f"http://{host}:{port}", timeout=30)
        self.started.append((process, client))
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(httpx.TransportError):
                client.get("/health")
                break
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"the server did not start:\n{log.read_text()}")
            time.sleep(0.1)
        if ready:
            wait_ready(client)
        return client

    def stop_all(self) -> None:
        for process, client in self.started:
            client.close()
            stop_group(process)


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., httpx.Client]]:
    """Start `modelops serve ARGS` on a free port; returns an httpx client for it. Stopped at teardown."""
    servers = Servers(tmp_path)
    yield servers.start
    servers.stop_all()


@pytest.fixture(scope="module")
def iris_production(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    """One server of models/iris, environment production (A/B and shadow), for a whole test module."""
    servers = Servers(tmp_path_factory.mktemp("iris-production"))
    yield servers.start(str(IRIS), "--env", "production")
    servers.stop_all()


@pytest.fixture(scope="module")
def iris_model() -> Callable:
    """The iris versions scored in-process, as the reference: {version: predict(rows)}."""
    from modelops import flavors
    from modelops.manifest.loading import load

    manifest = load(IRIS, ROOT).manifest
    return {v.version: flavors.load("sklearn", IRIS / v.artifact.uri, manifest.signature.inputs)
            for v in manifest.versions}


def request_counts(client: httpx.Client | TestClient, name: str) -> dict[tuple[str, str, str], float]:
    """{(version, endpoint, code or ""): value} of a metric family in /metrics."""
    found = {}
    for family in text_string_to_metric_families(client.get("/metrics").text):
        for sample in family.samples:
            if sample.name == name:
                labels = sample.labels
                found[(labels["version"], labels["endpoint"], labels.get("code", ""))] = sample.value
    return found
