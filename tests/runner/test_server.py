"""`modelops serve` as a real uvicorn server: MLflow's client, curl, A/B over HTTP, shadow isolation, CLI."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from tests.processes import free_port, stop_group
from tests.runner.conftest import IRIS, ROOT, make_model, wait_ready
from tests.runner.fakes import Constant, Raises, Sleeps

EXAMPLE = json.loads((IRIS / "example.json").read_text())["inputs"]
FRAME = pd.DataFrame(EXAMPLE)


def test_mlflow_client_and_curl_get_the_in_process_predictions(serve: Callable, iris_model: dict) -> None:
    from mlflow.pyfunc.scoring_server.client import ScoringServerClient

    client = serve(str(IRIS), "--version", "1.2.0")
    expected = iris_model["1.2.0"].predict(FRAME.values).tolist()
    port = client.base_url.port
    mlflow_client = ScoringServerClient("127.0.0.1", port)
    mlflow_client.wait_server_ready(timeout=10)
    assert mlflow_client.invoke(FRAME).get_predictions().iloc[:, 0].tolist() == expected
    assert mlflow_client.invoke(FRAME.values).get_predictions().iloc[:, 0].tolist() == expected
    body = json.dumps({"dataframe_records": EXAMPLE})
    curl = subprocess.run(["curl", "-sS", "-i", "-H", "Content-Type: application/json", "-d", body,
                           f"http://127.0.0.1:{port}/invocations"], capture_output=True, text=True, check=True)
    head, _, payload = curl.stdout.partition("\n\n")  # text mode turned CRLF into LF
    assert json.loads(payload) == {"predictions": expected}
    assert "x-model-version: 1.2.0" in head.lower()


async def _versions(port: int, keys: list[str], connections: int = 8) -> list[str]:
    """POST /predict once per key over `connections` keep-alive connections; the X-Model-Version of each."""
    body = json.dumps({"inputs": EXAMPLE[:1]}).encode()
    found: dict[str, str] = {}

    async def connection(mine: list[str]) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for key in mine:
            writer.write(b"POST /predict HTTP/1.1\r\nHost: runner\r\nContent-Type: application/json\r\n"
                         b"X-Request-Key: %s\r\nContent-Length: %d\r\n\r\n%s" % (key.encode(), len(body), body))
            head = (await reader.readuntil(b"\r\n\r\n")).decode().lower().split("\r\n")
            headers = dict(line.split(": ", 1) for line in head[1:] if ": " in line)
            payload = json.loads(await reader.readexactly(int(headers["content-length"])))
            assert head[0].startswith("http/1.1 200"), (head[0], payload)
            assert payload["version"] == headers["x-model-version"]
            found[key] = headers["x-model-version"]
        writer.close()

    await asyncio.gather(*(connection(keys[i::connections]) for i in range(connections)))
    return [found[key] for key in keys]


def test_ten_thousand_requests_split_ten_percent_and_keys_stick(serve: Callable) -> None:
    client = serve(str(IRIS), "--env", "production")
    keys = [f"customer-{i}" for i in range(10_000)]
    first = asyncio.run(_versions(client.base_url.port, keys))
    counts = Counter(first)
    assert set(counts) == {"1.0.0", "1.1.0"}
    assert 850 <= counts["1.1.0"] <= 1150, counts
    assert asyncio.run(_versions(client.base_url.port, keys[:500])) == first[:500]
    metrics = client.get("/metrics").text
    assert 'modelops_requests_total{code="200",endpoint="predict",version="1.1.0"}' in metrics
    assert 'modelops_shadow_rows_total{outcome="agree",version="1.2.0"}' in metrics


def test_shadows_that_raise_or_sleep_change_nothing_for_the_caller(serve: Callable, tmp_path: Path) -> None:
    folder = make_model(tmp_path / "toy", {"1.0.0": Constant(7), "1.1.0": Raises(), "1.2.0": Sleeps()},
                        {"production": {"version": "1.0.0", "shadow": ["1.1.0", "1.2.0"]},
                         "plain": {"version": "1.0.0"}})
    body = {"dataframe_split": {"columns": ["x", "y"], "data": [[1.0, 2.0]]}}

    def latencies(client: httpx.Client) -> list[float]:
        times = []
        for _ in range(40):
            start = time.perf_counter()
            response = client.post("/invocations", json=body)
            times.append(time.perf_counter() - start)
            assert response.status_code == 200
            assert response.json() == {"predictions": [7]}
            assert response.headers["x-model-version"] == "1.0.0"
        return times

    plain = latencies(serve(str(folder), "--env", "plain"))
    shadowed_client = serve(str(folder), "--env", "production", "--shadow-queue", "2")
    shadowed = latencies(shadowed_client)
    # The sleeping shadow needs 2 s per call: had any request waited for it, these would show it.
    assert max(shadowed) < 1.0, max(shadowed)
    assert statistics.median(shadowed) < statistics.median(plain) + 0.05
    deadline = time.monotonic() + 10
    while True:  # the last mirrored requests may still be in the shadows' queues
        counts = _shadow_counts(shadowed_client.get("/metrics").text)
        if sum(counts.get(("1.1.0", o), 0) for o in ("error", "dropped")) == 40 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert counts[("1.1.0", "error")] > 0
    assert ("1.1.0", "scored") not in counts
    assert counts[("1.2.0", "dropped")] > 0


def _shadow_counts(metrics: str) -> dict[tuple[str, str], float]:
    found = re.findall(r'modelops_shadow_requests_total\{outcome="(\w+)",version="([\d.]+)"\} ([\d.]+)', metrics)
    return {(version, outcome): float(value) for outcome, version, value in found}


def test_several_workers_serve(serve: Callable) -> None:
    client = serve(str(IRIS), "--version", "1.0.0", "--workers", "2")
    close = {"Connection": "close"}  # a new connection each time, so both workers answer some
    deadline = time.monotonic() + 60
    for _ in range(20):  # a new connection may reach a worker still loading (503): it is asked again
        while (response := client.post("/predict", json={"inputs": EXAMPLE}, headers=close)).status_code == 503:
            assert time.monotonic() < deadline, response.text
            time.sleep(0.2)
        assert response.json() == {"outputs": [{"species": 0}, {"species": 1}, {"species": 2}], "version": "1.0.0"}
    # Whichever worker answers /metrics counts the requests of both. A request is counted once its answer is
    # sent, so the last one may land a moment after the client has read it: wait for it, then read again.
    served = 'modelops_requests_total{code="200",endpoint="predict",version="1.0.0"} 20.0'
    while served not in (metrics := client.get("/metrics", headers=close).text):
        assert time.monotonic() < deadline, metrics
        time.sleep(0.1)
    assert all(served in client.get("/metrics", headers=close).text for _ in range(6))
    # 1 once every worker is loaded: twenty answers may all have come from one worker while the other loaded
    while 'modelops_ready{model="iris"} 1.0' not in (metrics := client.get("/metrics", headers=close).text):
        assert time.monotonic() < deadline, metrics
        time.sleep(0.2)


@pytest.mark.parametrize(("args", "words"), [
    (["--env", "qa"], "no deployment for environment 'qa'\n  hint: allowed values are: staging, production"),
    (["--version", "9.9.9"], "no version '9.9.9'\n  hint: allowed values are: 1.0.0, 1.1.0, 1.2.0"),
])
def test_serve_refuses_an_unknown_environment_or_version(args: list[str], words: str) -> None:
    done = subprocess.run([sys.executable, "-m", "modelops", "serve", str(IRIS), *args], capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 1
    assert words in done.stderr
    assert "Traceback" not in done.stderr


def test_serve_refuses_port_zero_whose_address_it_could_not_print() -> None:
    done = subprocess.run([sys.executable, "-m", "modelops", "serve", str(IRIS), "--port", "0"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2
    assert "Invalid value for '--port': 0 is not in the range 1<=x<=65535" in done.stderr
    assert "Swagger UI" not in done.stdout


# The platform's own dependencies, which runner images do not install (runner/requirements.txt).
_NOT_IN_IMAGES = ("mlflow", "docker", "jinja2", "safety", "packaging", "pip_audit", "cyclonedx", "sqlalchemy")
_BLOCKER = f"""
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in {_NOT_IN_IMAGES!r}:
            raise ImportError('the runner must not import ' + name)
sys.meta_path.insert(0, Block())
"""


def test_the_serve_command_imports_only_what_runner_images_install(tmp_path: Path) -> None:
    """`modelops serve` as an image runs it (the CLI, then the runner), with every package that images do
    not install blocked: it gets ready and scores the example."""
    port = free_port()
    script = _BLOCKER + ("import runpy\nsys.argv = ['modelops', 'serve', sys.argv[1], '--version', '1.0.0', "
                         "'--port', sys.argv[2]]\nrunpy.run_module('modelops', run_name='__main__')\n")
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        process = subprocess.Popen([sys.executable, "-c", script, str(IRIS), str(port)], cwd=ROOT, stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            deadline = time.monotonic() + 60
            while process.poll() is None and time.monotonic() < deadline:
                try:
                    client.get("/health")
                    break
                except httpx.TransportError:
                    time.sleep(0.1)
            assert process.poll() is None, log.read_text()
            wait_ready(client)
            answer = client.post("/invocations", json={"dataframe_records": EXAMPLE})
            assert answer.status_code == 200, answer.text
            assert len(answer.json()["predictions"]) == len(EXAMPLE)
    finally:
        stop_group(process)


def test_a_model_folder_is_served_without_mlflow_docker_jinja2_or_safety(tmp_path: Path) -> None:
    folder = tmp_path / "diabetes"
    shutil.copytree(ROOT / "models" / "diabetes", folder)
    script = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('mlflow', 'docker', 'jinja2', 'safety'):
            raise ImportError('the runner must not import ' + name)
sys.meta_path.insert(0, Block())
from tests.runner.conftest import asgi
with asgi(sys.argv[1]) as client:
    rows = [[0.01] * 10]
    print(client.post('/invocations', json={'inputs': rows}).json()['predictions'])
"""
    done = subprocess.run([sys.executable, "-c", script, str(folder)], capture_output=True, text=True,
                          timeout=120, cwd=ROOT, check=False)
    assert done.returncode == 0, done.stderr
    assert isinstance(json.loads(done.stdout.strip().splitlines()[-1])[0], float)
    assert np.isfinite(json.loads(done.stdout.strip().splitlines()[-1])[0])
