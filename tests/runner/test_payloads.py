"""Payload logging: records on a local CloudEvents sink and in a file from real servers, sampled, sensitive
columns left out; drops and failures counted; bad sinks refused before anything is served."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
import yaml

from modelops.errors import ModelopsError
from modelops.manifest.loading import load
from modelops.runner.loading import resolve
from modelops.runner.payloads import open_sink
from tests.processes import free_port
from tests.runner.conftest import PYTHONPATH, Servers, asgi, make_model
from tests.runner.fakes import Constant


class EventSink(ThreadingHTTPServer):
    """Keeps every POSTed event: (path, headers, JSON body); /slow answers after 0.2 s."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.events: list[tuple[str, dict[str, str], dict]] = []
        self.url = f"http://127.0.0.1:{self.server_port}"

    def wait_for(self, path: str, count: int, timeout: float = 20) -> list[tuple[dict[str, str], dict]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [(h, b) for p, h, b in self.events if p == path]
            if len(found) >= count:
                return found
            time.sleep(0.05)
        return found


class _Handler(BaseHTTPRequestHandler):
    server: EventSink

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.path == "/slow":
            time.sleep(0.2)
        self.server.events.append((self.path, {k.lower(): v for k, v in self.headers.items()}, body))
        self.send_response(202)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def toy(folder: Path, deployments: dict) -> Path:
    """The toy model (x, y -> label 7), `y` marked sensitive."""
    make_model(folder, {"1.0.0": Constant(7), "1.1.0": Constant(8)}, deployments)
    manifest = yaml.safe_load((folder / "model.yaml").read_text())
    manifest["signature"]["inputs"][1]["sensitive"] = True
    (folder / "model.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    return folder


def post(client: httpx.Client, i: int, connection: str = "keep-alive") -> None:
    answer = client.post("/invocations", json={"dataframe_split": {"columns": ["x", "y"], "data": [[i, -i]]}},
                         headers={"X-Request-ID": f"req-{i}", "X-Request-Key": f"user-{i}", "Connection": connection})
    assert answer.status_code == 200, answer.text


def counted(metrics: str, outcome: str) -> float:
    prefix = f'modelops_payloads_total{{outcome="{outcome}"}} '
    return next((float(line.removeprefix(prefix)) for line in metrics.splitlines() if line.startswith(prefix)), 0)


@pytest.fixture(scope="module")
def sink() -> Iterator[EventSink]:
    server = EventSink()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory, sink: EventSink) -> Path:
    return toy(tmp_path_factory.mktemp("payloads") / "toy", {
        "sampled": {"version": "1.0.0", "canary": {"version": "1.1.0", "weight": 50},
                    "payloads": {"sink": f"{sink.url}/events", "sample_rate": 0.5}},
        "file": {"version": "1.0.0", "payloads": {"sink": "scored/toy.jsonl"}},
        "slow": {"version": "1.0.0", "payloads": {"sink": f"{sink.url}/slow", "queue": 2}},
        "down": {"version": "1.0.0", "payloads": {"sink": f"http://127.0.0.1:{free_port()}/"}},
        "printed": {"version": "1.0.0", "payloads": {"sink": "stdout"}}})


@pytest.fixture(scope="module")
def servers(folder: Path) -> Iterator[Servers]:
    started = Servers(folder.parent)
    yield started
    started.stop_all()


def test_half_sampled_cloudevents_reach_an_http_sink_in_kserves_shape(folder: Path, servers: Servers,
                                                                      sink: EventSink) -> None:
    client = servers.start(str(folder), "--env", "sampled")
    for i in range(200):
        post(client, i)
    deadline = time.monotonic() + 20
    while counted(metrics := client.get("/metrics").text, "logged") < 1 and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.5)  # the records queued when the first was counted
    logged = counted(client.get("/metrics").text, "logged")
    assert 60 <= logged <= 140, metrics  # binomial(200, 0.5): 100 ± 40 is more than five standard deviations
    events = sink.wait_for("/events", int(2 * logged))
    assert len(events) == 2 * logged
    requests = {h["ce-id"]: (h, b) for h, b in events if h["ce-type"] == "org.kubeflow.serving.inference.request"}
    responses = {h["ce-id"]: (h, b) for h, b in events if h["ce-type"] == "org.kubeflow.serving.inference.response"}
    assert set(requests) == set(responses) and len(requests) == logged
    for request_id, (headers, body) in requests.items():
        i = int(request_id.removeprefix("req-"))
        assert body == {"inputs": [{"x": i}]}  # y is sensitive: absent
        assert {k: headers[k] for k in ("ce-specversion", "ce-source", "ce-inferenceservicename", "ce-namespace",
                                        "ce-component", "ce-requestkey", "content-type")} == {
            "ce-specversion": "1.0", "ce-source": "/modelops/toy/sampled", "ce-inferenceservicename": "toy",
            "ce-namespace": "sampled", "ce-component": "predictor", "ce-requestkey": f"user-{i}",
            "content-type": "application/json"}
        answer_headers, answer = responses[request_id]
        version = answer_headers["ce-modelversion"]
        assert answer == {"outputs": [{"label": 7 if version == "1.0.0" else 8}]}
        assert answer_headers["ce-endpoint"] == ("default" if version == "1.0.0" else "canary")
        assert float(answer_headers["ce-latencyms"]) >= 0 and answer_headers["ce-time"].endswith("+00:00")
    assert {h["ce-modelversion"] for h, _ in responses.values()} == {"1.0.0", "1.1.0"}


def test_every_record_lands_in_the_file_under_the_payload_folder(folder: Path, servers: Servers) -> None:
    """Two workers append to the same file (a connection per request spreads them), one line per record."""
    payload_dir = folder.parent / "payload-dir"
    client = servers.start(str(folder), "--env", "file", "--workers", "2",
                           env={"MODELOPS_PAYLOAD_DIR": str(payload_dir)})
    deadline = time.monotonic() + 60  # /ready answered by one worker: wait for both (the gauge's minimum)
    while 'modelops_ready{model="toy"} 1.0' not in client.get("/metrics").text and time.monotonic() < deadline:
        time.sleep(0.1)
    for i in range(50):
        post(client, i, "close")
    file = payload_dir / "scored" / "toy.jsonl"
    deadline = time.monotonic() + 20
    while counted(client.get("/metrics").text, "logged") < 50 and time.monotonic() < deadline:
        time.sleep(0.1)
    records = [json.loads(line) for line in file.read_text().splitlines()]
    assert len(records) == 50
    for i, record in enumerate(sorted(records, key=lambda r: int(r["id"].removeprefix("req-")))):
        assert set(record) == {"id", "time", "model", "environment", "version", "request_key", "latency_ms",
                               "inputs", "outputs"}
        assert (record["id"], record["request_key"], record["version"]) == (f"req-{i}", f"user-{i}", "1.0.0")
        assert (record["inputs"], record["outputs"]) == ([{"x": i}], [{"label": 7}])
        assert record["latency_ms"] >= 0 and (record["model"], record["environment"]) == ("toy", "file")
    assert counted(client.get("/metrics").text, "dropped") == 0


def test_stdout_gets_one_json_line_per_record(folder: Path, capfd: pytest.CaptureFixture[str]) -> None:
    with asgi(folder, "printed") as client:
        for i in range(3):
            post(client, i)
    records = [json.loads(line) for line in capfd.readouterr().out.splitlines() if line.startswith("{")]
    assert [(r["id"], r["inputs"], r["outputs"]) for r in records] == [
        (f"req-{i}", [{"x": i}], [{"label": 7}]) for i in range(3)]


def test_a_slow_sink_drops_what_its_queue_cannot_hold_and_never_slows_the_caller(folder: Path) -> None:
    with asgi(folder, "slow") as client:
        started = time.perf_counter()
        for i in range(30):
            post(client, i)
        assert time.perf_counter() - started < 3  # the sink takes 0.4 s per record
        metrics = client.get("/metrics").text
        assert counted(metrics, "dropped") >= 20, metrics
        assert counted(metrics, "logged") + counted(metrics, "dropped") <= 30


def test_an_unreachable_sink_counts_failures(folder: Path) -> None:
    with asgi(folder, "down") as client:
        for i in range(5):
            post(client, i)
        deadline = time.monotonic() + 20
        while counted(metrics := client.get("/metrics").text, "failed") < 5 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert counted(metrics, "failed") == 5 and counted(metrics, "logged") == 0


@pytest.mark.parametrize("sink", ["/var/log/payloads.jsonl", "../payloads.jsonl", "a/../../b.jsonl",
                                  "payloads.json", ".hidden.jsonl", "http://user:secret@sink.example/",
                                  "ftp://sink.example/", "file:///etc/passwd", "stderr", "https://",
                                  "payloads.jsonl\n", "http://sink.example/x\n"])
def test_validate_refuses_a_sink_that_is_not_stdout_a_relative_jsonl_file_or_an_http_url(
        tmp_path: Path, sink: str) -> None:
    folder = toy(tmp_path / "toy", {"production": {"version": "1.0.0", "payloads": {"sink": sink}}})
    with pytest.raises(ModelopsError) as raised:
        load(folder, tmp_path)
    problem = raised.value.problems[0]
    assert (problem.file, problem.field) == ("toy/model.yaml", "deployments.production.payloads.sink")
    assert problem.line is not None and problem.message == f"not a payload sink (got {sink!r})"
    assert problem.hint.startswith("use stdout, a .jsonl file relative to the runner's payload folder")


@pytest.mark.parametrize(("sink", "words"), [
    ("../../etc/cron.d/x.jsonl", "toy/model.yaml:29: deployments.production.payloads.sink: not a payload sink "
                                 "(got '../../etc/cron.d/x.jsonl')"),
    ("toy.jsonl", "deployments.production.payloads.sink: the payload sink 'toy.jsonl' is a file, and no payload "
                  "folder is set\n  hint: set MODELOPS_PAYLOAD_DIR")])
def test_serve_stops_on_a_bad_sink_or_a_file_sink_without_a_payload_folder(tmp_path: Path, sink: str,
                                                                            words: str) -> None:
    toy(tmp_path / "toy", {"production": {"version": "1.0.0", "payloads": {"sink": sink}}})
    env = {k: v for k, v in os.environ.items() if k != "MODELOPS_PAYLOAD_DIR"}
    done = subprocess.run([sys.executable, "-m", "modelops", "serve", "toy", "--port", str(free_port())],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path,
                          env={**env, "PYTHONPATH": PYTHONPATH}, check=False)
    assert done.returncode != 0 and words in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


def test_a_file_sink_never_leaves_the_payload_folder_through_a_symbolic_link(tmp_path: Path) -> None:
    folder = toy(tmp_path / "toy", {"production": {"version": "1.0.0", "payloads": {"sink": "link/toy.jsonl"}}})
    (tmp_path / "payloads").mkdir()
    (tmp_path / "payloads" / "link").symlink_to(tmp_path)
    served = resolve(str(folder), "production")
    with pytest.raises(ModelopsError, match="leaves the payload folder"):
        open_sink("link/toy.jsonl", served, str(tmp_path / "payloads"))
    assert not (tmp_path / "toy.jsonl").exists()
