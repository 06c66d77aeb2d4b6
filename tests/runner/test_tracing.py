"""Tracing against a real `modelops serve` and a local OTLP/HTTP receiver decoding what the SDK exports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from tests.runner.conftest import IRIS, PYTHONPATH, ROOT, Servers

EXAMPLE = json.loads((IRIS / "example.json").read_text())["inputs"]
TRACE, PARENT = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"


def _value(any_value) -> object:  # an OTLP AnyValue
    return getattr(any_value, any_value.WhichOneof("value"))


class Receiver(ThreadingHTTPServer):
    """POST /v1/traces: ExportTraceServiceRequest protobufs, their spans kept as dicts."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.spans: list[dict] = []
        self.resources: list[dict] = []

    def wait_for(self, count: int, timeout: float = 20) -> list[dict]:
        deadline = time.monotonic() + timeout
        while len(self.spans) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.spans


class _Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        exported = ExportTraceServiceRequest.FromString(self.rfile.read(int(self.headers["Content-Length"])))
        for resource_spans in exported.resource_spans:
            self.server.resources.append({a.key: _value(a.value) for a in resource_spans.resource.attributes})
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    self.server.spans.append({
                        "name": span.name, "trace_id": span.trace_id.hex(), "parent": span.parent_span_id.hex(),
                        "kind": span.kind, "status": span.status.code,
                        "attributes": {a.key: _value(a.value) for a in span.attributes}})
        body = ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def traced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[httpx.Client, Receiver]]:
    """iris production (1.0.0, canary 1.1.0) exporting to the receiver every 100 ms."""
    receiver = Receiver()
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    servers = Servers(tmp_path_factory.mktemp("tracing"))
    client = servers.start(str(IRIS), "--env", "production", env={
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{receiver.server_port}", "OTEL_BSP_SCHEDULE_DELAY": "100"})
    yield client, receiver
    servers.stop_all()
    receiver.shutdown()


def test_a_scored_request_is_one_span_continuing_the_callers_trace(traced: tuple[httpx.Client, Receiver]) -> None:
    client, receiver = traced
    client.get("/health")  # probes are not traced
    answer = client.post("/invocations", json={"dataframe_records": EXAMPLE},
                         headers={"traceparent": f"00-{TRACE}-{PARENT}-01", "X-Request-ID": "traced-1"})
    assert answer.status_code == 200
    refused = client.post("/predict", json={"inputs": [{"sepal_length": "wide"}]},
                          headers={"X-Request-ID": "traced-2"})
    assert refused.status_code == 400
    spans = {s["attributes"]["modelops.request_id"]: s for s in receiver.wait_for(2)}
    assert set(spans) == {"traced-1", "traced-2"}, spans
    scored = spans["traced-1"]
    assert (scored["name"], scored["trace_id"], scored["parent"]) == ("POST /invocations", TRACE, PARENT)
    assert scored["kind"] == 2  # SPAN_KIND_SERVER
    assert scored["attributes"] == {
        "http.request.method": "POST", "url.path": "/invocations", "http.response.status_code": 200,
        "modelops.model": "iris", "modelops.version": answer.headers["x-model-version"],
        "modelops.rows": len(EXAMPLE), "modelops.outcome": "ok", "modelops.request_id": "traced-1"}
    other = spans["traced-2"]
    assert other["trace_id"] != TRACE and other["parent"] == ""  # a new trace
    assert other["attributes"]["modelops.outcome"] == "refused"
    assert other["attributes"]["http.response.status_code"] == 400
    assert other["attributes"]["modelops.rows"] == 0
    assert receiver.resources[0]["service.name"] == "modelops-iris"
    assert receiver.resources[0]["deployment.environment.name"] == "production"


def test_without_an_endpoint_the_sdk_is_not_even_imported() -> None:
    """(FastAPI itself imports opentelemetry's API, whose spans are no-ops without a global provider.)"""
    script = ("import sys\nfrom modelops.runner.app import create_app\nfrom modelops.runner.loading import resolve\n"
              "app = create_app(resolve(sys.argv[1], version='1.0.0'))\n"
              "print([m for m in sys.modules if m.startswith(('opentelemetry.sdk', 'opentelemetry.exporter'))],"
              " [m.cls.__name__ for m in app.user_middleware])")
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    done = subprocess.run([sys.executable, "-c", script, str(IRIS)], capture_output=True, text=True, timeout=60,
                          cwd=ROOT, env={**env, "PYTHONPATH": PYTHONPATH}, check=True)
    assert done.stdout.strip() == "[] ['Admission', 'FastLane']"
