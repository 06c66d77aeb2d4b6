"""SIGTERM in the middle of a load, against real `modelops serve` processes (one and two workers).

The toy model answers in 50 ms plus 10 ms a row (1.0.0, batched); its shadow 1.1.0, reached pinned on
v2, takes 5 s: longer than the grace period of 3 s, so it shows what the end of the grace does.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from modelops.images.context import HEALTHCHECK
from tests.runner.conftest import Servers, make_model
from tests.runner.fakes import Slow
from tests.runner.load import TOY_ROW, Answer, Connection, crowd

GRACE = 3.0
BODY = json.dumps(TOY_ROW).encode()
HUNDRED = json.dumps({"dataframe_split": {"columns": ["x", "y"], "data": [[1.0, 2.0]] * 100}}).encode()
TOO_LONG = json.dumps({"inputs": [{"name": "x", "datatype": "FP64", "shape": [1], "data": [1.0]},
                                  {"name": "y", "datatype": "FP64", "shape": [1], "data": [2.0]}]}).encode()


@pytest.fixture(scope="module")
def toy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_model(tmp_path_factory.mktemp("shutdown") / "toy",
                      {"1.0.0": Slow(per_call=0.05, per_row=0.01), "1.1.0": Slow(per_call=5.0)},
                      {"production": {"version": "1.0.0", "shadow": ["1.1.0"]}})


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[Servers]:
    started = Servers(tmp_path)
    yield started
    started.stop_all()


async def _readiness(port: int) -> tuple[float, dict[str, Answer]]:
    """Poll /ready on fresh connections until it answers 503: when, and what the readiness routes say then."""
    while True:
        connection = Connection(port)
        answer = await connection.request("GET", "/ready")
        if answer.status == 503:
            when = time.monotonic()
            others = {path: await connection.request("GET", path) for path in ("/ping", "/v2/health/ready")}
            connection.close()
            return when, {"/ready": answer, **others}
        connection.close()
        await asyncio.sleep(0.02)


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_mid_load_answers_every_accepted_request_and_exits_within_the_grace(
        servers: Servers, toy: Path, workers: int) -> None:
    client = servers.start(str(toy), "--workers", str(workers), env={"MODELOPS_SHUTDOWN_GRACE_S": str(GRACE)})
    process, port = servers.started[-1][0], client.base_url.port

    def healthcheck() -> int:  # the image's HEALTHCHECK command, run against this server
        return subprocess.run([sys.executable, *HEALTHCHECK[1:]], env={**os.environ, "PORT": str(port)},
                              capture_output=True, timeout=10).returncode

    in_a_row, deadline = 0, time.monotonic() + 60
    while in_a_row < 10 and time.monotonic() < deadline:  # every worker ready: a new connection reaches any
        in_a_row = in_a_row + 1 if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=5).status_code == 200 else 0

    async def scenario() -> dict:
        loop = asyncio.get_running_loop()
        healthy = await loop.run_in_executor(None, healthcheck)
        load = asyncio.create_task(crowd(port, clients=16, seconds=6, body=BODY, backoff=0.05))
        too_long = asyncio.create_task(Connection(port).request("POST", "/v2/models/toy/versions/1.1.0/infer",
                                                                TOO_LONG))
        await asyncio.sleep(0.8)
        hundred = asyncio.create_task(Connection(port).request("POST", "/invocations", HUNDRED))
        await asyncio.sleep(0.2)  # admitted: it needs more than a second
        signalled = time.monotonic()
        os.kill(process.pid, signal.SIGTERM)  # as the kubelet does: to the main process only
        not_ready, readiness = await asyncio.wait_for(_readiness(port), 2)
        draining = await loop.run_in_executor(None, healthcheck)
        await loop.run_in_executor(None, process.wait, 3 * GRACE)
        return {"signalled": signalled, "not_ready": not_ready, "readiness": readiness,
                "healthcheck": (healthy, draining),
                "exited": time.monotonic(), "load": await load, "hundred": await hundred,
                "too_long": await too_long}

    seen = asyncio.run(scenario())
    signalled = seen["signalled"]
    assert seen["not_ready"] - signalled < (0.3 if workers == 1 else 1.0)  # the supervisor passes it on
    for path, answer in seen["readiness"].items():
        assert answer.status == 503, path
        assert answer.json()["ready"] is False
    assert seen["readiness"]["/ready"].json()["problem"] == "shutting down"
    assert seen["healthcheck"] == (0, 1)  # the image's HEALTHCHECK follows readiness
    assert seen["exited"] - signalled < GRACE + 0.5, seen["exited"] - signalled

    hundred = seen["hundred"]
    assert hundred.status == 200 and len(hundred.json()["predictions"]) == 100
    assert hundred.sent + hundred.took > signalled + 0.5  # it was still being scored at the signal
    too_long = seen["too_long"]
    assert too_long.status == 503
    assert "did not finish within the grace period (shutdown_grace_s" in too_long.json()["error"]
    assert too_long.sent + too_long.took - signalled == pytest.approx(GRACE - 1, abs=0.6)

    answers: list[Answer] = seen["load"]
    statuses = Counter(a.status for a in answers)
    assert set(statuses) <= {200, 503, 0}, statuses
    before = [a for a in answers if a.sent < signalled - 0.1]
    assert len(before) > 50 and {a.status for a in before} == {200}
    assert all(a.sent > signalled for a in answers if a.status == 0)  # refused connections, after the signal
    drained = [a for a in answers if a.status == 503]
    assert drained, statuses
    for answer in drained:
        assert answer.headers["connection"] == "close" and answer.headers["x-model-version"] == "1.0.0"
        assert answer.json()["message"].startswith("the server is shutting down")

    log = (servers.folder / f"serve-{port}.log").read_text()
    assert len(re.findall(r"SIGTERM: shutting down \(process \d+\)", log)) == workers
    assert log.count("every request admitted was answered; stopping") == workers
    # a grace shorter than the request timeout is said at start, in each worker
    assert log.count("shutdown_grace_s (3 s) is shorter than request_timeout_s (30 s) plus 1 s to close") == workers
    assert "Traceback" not in log
