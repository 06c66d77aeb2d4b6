"""JSON logs and request ids of a real `modelops serve --access-log`: every stderr line is a JSON object."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from modelops.runner.routing import bucket
from tests.processes import free_port, stop_group
from tests.runner.conftest import PYTHONPATH, make_model, wait_ready
from tests.runner.fakes import Raises, Warns

BODY = {"dataframe_split": {"columns": ["x", "y"], "data": [[1.0, 2.0], [3.0, 4.0]]}}
PRIMARY_KEY = next(f"user-{i}" for i in range(1000) if bucket(f"user-{i}") >= 5000)  # routed to 1.0.0


class Served:
    """A `modelops serve` process whose stdout and stderr are kept apart."""

    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        self.stdout, self.stderr = folder / "stdout", folder / "stderr"
        with self.stdout.open("w") as out, self.stderr.open("w") as err:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "modelops", "serve", str(folder / "toy"), "--access-log", "--port",
                 str(self.port)], stdout=out, stderr=err, start_new_session=True, cwd=folder,
                env={**os.environ, "PYTHONPATH": PYTHONPATH})
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=30)

    def lines(self) -> list[dict]:
        """Every stderr line, parsed (a line that is not one JSON object fails the test)."""
        return [json.loads(line) for line in self.stderr.read_text().splitlines()]

    def access(self, request_id: str, timeout: float = 10) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [line for line in self.lines()
                     if line["logger"] == "modelops.access" and line.get("request_id") == request_id]
            if found:
                assert len(found) == 1, found
                return found[0]
            time.sleep(0.05)
        raise AssertionError(f"no access line for {request_id}:\n{self.stderr.read_text()}")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """toy production: 1.0.0 answers 7 with a Python warning, the canary 1.1.0 (half of the keys) fails."""
    folder = tmp_path_factory.mktemp("logs")
    make_model(folder / "toy", {"1.0.0": Warns(), "1.1.0": Raises()},
               {"production": {"version": "1.0.0", "canary": {"version": "1.1.0", "weight": 50}}})
    server = Served(folder)
    deadline = time.monotonic() + 60
    while True:
        try:
            server.client.get("/health")
            break
        except httpx.TransportError:
            assert server.process.poll() is None and time.monotonic() < deadline, server.stderr.read_text()
            time.sleep(0.1)
    wait_ready(server.client)
    yield server
    server.client.close()
    stop_group(server.process)


def test_the_request_id_the_client_sends_is_returned_and_logged(served: Served) -> None:
    answer = served.client.post("/invocations", json=BODY,
                                headers={"X-Request-ID": "client-id-42", "X-Request-Key": PRIMARY_KEY})
    assert answer.status_code == 200
    assert answer.headers["x-request-id"] == "client-id-42"
    line = served.access("client-id-42")
    assert {k: line[k] for k in ("level", "message", "method", "path", "status", "version", "rows")} == {
        "level": "INFO", "message": "POST /invocations 200", "method": "POST", "path": "/invocations",
        "status": 200, "version": "1.0.0", "rows": 2}
    assert 0 < line["duration_ms"] < 10_000
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", line["time"])


def test_a_traceparent_gives_its_trace_id_else_one_is_generated(served: Served) -> None:
    trace = "0af7651916cd43dd8448eb211c80319c"
    traced = served.client.get("/version", headers={"traceparent": f"00-{trace}-b7ad6b7169203331-01"})
    assert traced.headers["x-request-id"] == trace
    assert served.access(trace)["path"] == "/version"
    first, second = (served.client.get("/health").headers["x-request-id"] for _ in range(2))
    assert re.fullmatch(r"[0-9a-f]{32}", first) and first != second
    for unusable in ("x" * 129, "has space"):  # replaced, not echoed
        replaced = served.client.get("/health", headers={"X-Request-ID": unusable}).headers["x-request-id"]
        assert re.fullmatch(r"[0-9a-f]{32}", replaced)
    zeros = served.client.get("/health", headers={"traceparent": f"00-{'0' * 32}-b7ad6b7169203331-01"})
    assert zeros.headers["x-request-id"] != "0" * 32


def test_refusals_and_crashes_are_logged_with_their_request_id(served: Served) -> None:
    refused = served.client.post("/invocations", json={"dataframe_split": {"columns": ["x"], "data": [[1.0]]}},
                                 headers={"X-Request-ID": "refused-1", "X-Request-Key": PRIMARY_KEY})
    assert refused.status_code == 400 and refused.headers["x-request-id"] == "refused-1"
    line = served.access("refused-1")
    assert (line["status"], line["rows"], line["version"]) == (400, None, "1.0.0")
    crashed = served.client.post("/v2/models/toy/versions/1.1.0/infer", headers={"X-Request-ID": "crash-1"},
                                 json={"inputs": [{"name": "x", "shape": [1], "datatype": "FP64", "data": [1.0]},
                                                  {"name": "y", "shape": [1], "datatype": "FP64", "data": [2.0]}]})
    assert crashed.status_code == 500 and crashed.headers["x-request-id"] == "crash-1"
    assert served.access("crash-1")["status"] == 500
    failure = next(line for line in served.lines() if line.get("request_id") == "crash-1"
                   and line["logger"] == "modelops.runner")
    assert failure["level"] == "ERROR" and failure["message"] == "version 1.1.0 failed to score"
    assert "RuntimeError: this shadow is broken" in failure["exception"]


def test_every_log_line_is_json_uvicorns_included(served: Served) -> None:
    lines = served.lines()  # parses every line
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    loggers = {line["logger"] for line in lines}
    assert {"uvicorn.error", "modelops.runner", "modelops.access", "py.warnings"} <= loggers, loggers
    assert any("RuntimeWarning: 7 is all this model knows" in line["message"] for line in lines)
    assert any(line["message"].startswith("Uvicorn running on") for line in lines)
    # stdout holds only what the command prints before the server starts (what is served, where /docs is)
    assert served.stdout.read_text().splitlines()[0].startswith("serving toy (production): 1.0.0")
