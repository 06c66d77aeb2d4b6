"""Overload and slow clients, against real `modelops serve` processes on loopback.

The toy model scores 20 ms per row (1.0.0) and its shadow 2 s per call (1.1.0, reached pinned on v2):
so its capacity is known, and one request can outlast the request timeout on purpose.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import socket
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.runner.conftest import Servers, make_model, request_counts
from tests.runner.fakes import Slow
from tests.runner.load import TOY_ROW, Answer, Connection, crowd, p99

ROW_S = 0.02  # the model's cost of one row
BODY = json.dumps(TOY_ROW).encode()
LIMITS = {"MODELOPS_MAX_IN_FLIGHT": "2", "MODELOPS_REQUEST_TIMEOUT_S": "1", "MODELOPS_HEADER_TIMEOUT_S": "1",
          "MODELOPS_IDLE_TIMEOUT_S": "1"}


@pytest.fixture(scope="module")
def toy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_model(tmp_path_factory.mktemp("overload") / "toy",
                      {"1.0.0": Slow(per_row=ROW_S), "1.1.0": Slow(per_call=2.0)},
                      {"production": {"version": "1.0.0", "shadow": ["1.1.0"]}})


@pytest.fixture(scope="module")
def servers(toy: Path) -> Iterator[Servers]:
    started = Servers(toy.parent)
    yield started
    started.stop_all()


@pytest.fixture(scope="module")
def bounded(servers: Servers, toy: Path) -> httpx.Client:
    """The toy model with at most 2 scoring requests in flight, and 1 s timeouts."""
    return servers.start(str(toy), env=LIMITS)


def _log(servers: Servers, client: httpx.Client) -> str:
    return (servers.folder / f"serve-{client.base_url.port}.log").read_text()


def _unloaded(port: int) -> list[Answer]:
    async def one_by_one() -> list[Answer]:
        connection = Connection(port)
        answers = [await connection.request("POST", "/invocations", BODY) for _ in range(40)]
        connection.close()
        return answers

    answers = asyncio.run(one_by_one())
    assert {a.status for a in answers} == {200}
    return answers


def test_far_past_capacity_it_sheds_429s_and_the_accepted_keep_their_latency(servers: Servers,
                                                                             bounded: httpx.Client, toy: Path) -> None:
    port = bounded.base_url.port
    alone = p99(_unloaded(port))
    seconds = 3.0
    before = request_counts(bounded, "modelops_requests_total")
    answers = asyncio.run(crowd(port, clients=32, seconds=seconds, body=BODY))  # about 20x the capacity
    statuses = Counter(a.status for a in answers)
    counted = request_counts(bounded, "modelops_requests_total")
    for code in (200, 429):  # every answer is counted, the refusals under the deployment's version
        key = ("1.0.0", "invocations", str(code))
        assert counted[key] - before.get(key, 0) == statuses[code], (code, counted, statuses)
    assert set(statuses) == {200, 429}, statuses
    assert statuses[429] > statuses[200], statuses
    assert statuses[200] >= 0.5 * seconds / ROW_S, statuses  # the model kept scoring at its capacity
    refused = next(a for a in answers if a.status == 429)
    assert refused.headers["retry-after"] == "1"
    assert refused.headers["x-model-version"] == "1.0.0"
    assert refused.json()["error_code"] == "TOO_MANY_REQUESTS"
    assert "max_in_flight, MODELOPS_MAX_IN_FLIGHT" in refused.json()["message"]
    accepted = [a for a in answers if a.status == 200]
    assert p99(accepted) < 5 * alone, (p99(accepted), alone)

    # The same crowd without the bound: every caller waits for the whole queue.
    unbounded = servers.start(str(toy), env={**LIMITS, "MODELOPS_MAX_IN_FLIGHT": "0"})
    queued = asyncio.run(crowd(unbounded.base_url.port, clients=32, seconds=seconds, body=BODY))
    assert {a.status for a in queued} == {200}
    assert p99(queued) > 3 * p99(accepted), (p99(queued), p99(accepted))


def test_a_refusal_does_not_read_the_body_and_keeps_the_connection(bounded: httpx.Client) -> None:
    async def run() -> list[Answer]:
        slow = [Connection(bounded.base_url.port) for _ in range(2)]
        busy = [asyncio.create_task(c.request("POST", "/invocations", json.dumps(
            {"dataframe_split": {"columns": ["x", "y"], "data": [[1.0, 2.0]] * 20}}).encode())) for c in slow]
        await asyncio.sleep(0.1)  # both admitted: 20 rows take 0.4 s each
        third = Connection(bounded.base_url.port)
        big = json.dumps({"dataframe_split": {"columns": ["x", "y"], "data": [[1.0, 2.0]] * 50_000}}).encode()
        refused = [await third.request("POST", "/invocations", big), await third.request("GET", "/health")]
        await asyncio.gather(*busy)
        third.close()
        return refused

    refused, health = asyncio.run(run())
    assert refused.status == 429 and refused.took < 0.3
    assert health.status == 200  # the same connection, past the unread body


def test_an_answer_slower_than_the_timeout_is_a_504_naming_the_limit(bounded: httpx.Client) -> None:
    before = request_counts(bounded, "modelops_requests_total")
    started = time.monotonic()
    v2 = bounded.post("/v2/models/toy/versions/1.1.0/infer", json={"inputs": [
        {"name": "x", "datatype": "FP64", "shape": [1], "data": [1.0]},
        {"name": "y", "datatype": "FP64", "shape": [1], "data": [2.0]}]})
    assert v2.status_code == 504 and 0.9 < time.monotonic() - started < 1.8
    assert v2.headers["x-model-version"] == "1.0.0"
    assert v2.json() == {"error": "no answer within 1 s (request_timeout_s, MODELOPS_REQUEST_TIMEOUT_S)",
                         "field": ""}
    many = {"dataframe_split": {"columns": ["x", "y"], "data": [[1.0, 2.0]] * 80}}  # 1.6 s of scoring
    mlflow = bounded.post("/invocations", json=many)
    assert mlflow.status_code == 504
    assert mlflow.json()["error_code"] == "TIMEOUT"
    counted = request_counts(bounded, "modelops_requests_total")
    for endpoint in ("v2", "invocations"):  # counted under the version the answer names
        key = ("1.0.0", endpoint, "504")
        assert counted[key] - before.get(key, 0) == 1, counted
    time.sleep(0.8)  # the model finishes what it was given
    assert bounded.post("/invocations", json=TOY_ROW).json() == {"predictions": [1]}


def _closed_after(sock: socket.socket, limit: float) -> tuple[bytes, float]:
    """Everything the server sends until it closes `sock`, and how long that took."""
    started, received = time.monotonic(), b""
    sock.settimeout(limit)
    while chunk := sock.recv(65536):
        received += chunk
    return received, time.monotonic() - started


def test_a_body_that_does_not_arrive_in_time_is_a_408_and_closed(bounded: httpx.Client) -> None:
    with socket.create_connection(("127.0.0.1", bounded.base_url.port)) as sock:
        sock.sendall(b"POST /invocations HTTP/1.1\r\nHost: runner\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 100\r\n\r\n{\"dataframe_split\":")
        received, took = _closed_after(sock, 5)
    assert received.startswith(b"HTTP/1.1 408 ") and b"request_timeout_s" in received
    assert took < 2.5


def test_headers_sent_slowly_are_cut_off(bounded: httpx.Client) -> None:
    with socket.create_connection(("127.0.0.1", bounded.base_url.port)) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\n")
        started, received = time.monotonic(), b""
        sock.settimeout(0.2)
        for i in range(40):  # a header line every 0.2 s, until the server answers
            sock.sendall(b"X-Slow-%d: 1\r\n" % i)
            with contextlib.suppress(TimeoutError):
                received = sock.recv(65536)
                break
        took = time.monotonic() - started
        rest, _ = _closed_after(sock, 5)
    assert 0.9 < took < 2, took
    assert (received + rest).startswith(b"HTTP/1.1 408 ")
    assert json.loads((received + rest).split(b"\r\n\r\n", 1)[1])["message"] == (
        "the request's head did not arrive within 1 s (header_timeout_s, MODELOPS_HEADER_TIMEOUT_S)")


def test_idle_connections_are_closed(bounded: httpx.Client) -> None:
    port = bounded.base_url.port
    with socket.create_connection(("127.0.0.1", port)) as silent:
        assert _closed_after(silent, 5) == (b"", pytest.approx(1, abs=0.5))
    with socket.create_connection(("127.0.0.1", port)) as used:
        used.sendall(b"GET /health HTTP/1.1\r\nHost: runner\r\n\r\n")
        received, took = _closed_after(used, 5)
    assert received.startswith(b"HTTP/1.1 200 ") and took == pytest.approx(1, abs=0.5)


def test_a_32_mib_header_and_too_many_headers_are_431(bounded: httpx.Client) -> None:
    huge = bounded.get("/v2/health/ready", headers={"X-Huge": "a" * (32 * 1024 * 1024)})
    assert huge.status_code == 431
    assert huge.headers["x-model-version"] == "1.0.0"
    assert huge.json() == {"error": "the request's head is over 65536 bytes (max_header_bytes, "
                                    "MODELOPS_MAX_HEADER_BYTES)", "field": "headers"}
    many = bounded.get("/health", headers={f"X-Header-{i}": "1" for i in range(101)})
    assert many.status_code == 431 and many.json()["error_code"] == "HEADERS_TOO_LARGE"
    assert "max_header_count, MODELOPS_MAX_HEADER_COUNT" in many.json()["message"]
    within = bounded.get("/health", headers={"X-Large": "a" * 60_000, **{f"X-{i}": "1" for i in range(90)}})
    assert within.status_code == 200
    key = ("1.0.0", "invocations", "431")  # refused by the connection, before the app, and still counted
    before = request_counts(bounded, "modelops_requests_total").get(key, 0)
    scoring = bounded.post("/invocations?format=split", json=TOY_ROW, headers={"X-Huge": "a" * 100_000})
    assert scoring.status_code == 431
    assert request_counts(bounded, "modelops_requests_total")[key] == before + 1


def test_a_client_gone_mid_request_is_one_log_line(servers: Servers, bounded: httpx.Client) -> None:
    port = bounded.base_url.port
    with socket.create_connection(("127.0.0.1", port)) as sock:  # gone while its body arrives
        sock.sendall(b"POST /invocations HTTP/1.1\r\nHost: runner\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 1000\r\n\r\n{\"dataframe_split\":")
        time.sleep(0.2)
    with socket.create_connection(("127.0.0.1", port)) as sock:  # gone while it is scored
        sock.sendall(b"POST /invocations HTTP/1.1\r\nHost: runner\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n%s" % (len(BODY), BODY))
        time.sleep(0.005)
    time.sleep(1.2)
    assert bounded.get("/ready").status_code == 200
    log = _log(servers, bounded)
    messages = [json.loads(line)["message"] for line in log.splitlines() if line.startswith("{")]
    pattern = re.compile(r"client 127\.0\.0\.1:\d+ went away while (.*)")
    gone = [m.group(1) for text in messages if (m := pattern.fullmatch(text))]
    assert gone == ["its body was arriving: POST /invocations", "it was being answered: POST /invocations"]
    assert "Traceback" not in log and "Exception in ASGI application" not in log
