"""OpenTelemetry tracing, on when the standard `OTEL_EXPORTER_OTLP_ENDPOINT` (or `..._TRACES_ENDPOINT`) is set.

One server span per request (probes and /metrics aside), continuing an incoming `traceparent`, with the
model, the version that answered, the rows scored and the outcome; exported in batches over OTLP/HTTP
(the SDK reads the other `OTEL_*` variables: headers, timeout, service name, batch delays). When neither
variable is set nothing is imported nor installed: tracing off costs nothing.
"""

from __future__ import annotations

import os

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from modelops.runner import counting, logs
from modelops.runner.loading import ServedModel

ENDPOINTS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
UNTRACED = frozenset({"/health", "/ready", "/ping", "/metrics", "/v2/health/live", "/v2/health/ready"})


def install(app: FastAPI, served: ServedModel) -> None:
    """Trace `app`'s requests when an OTLP endpoint is configured; otherwise do nothing."""
    if any(os.environ.get(name) for name in ENDPOINTS):
        app.add_middleware(Traced, served=served)


class Traced:
    """A server span around each request, its attributes set once the answer is known."""

    def __init__(self, app: ASGIApp, served: ServedModel) -> None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from opentelemetry.trace import SpanKind, StatusCode
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        self.app = app
        attributes = {"service.version": served.primary, "deployment.environment.name": served.environment}
        if not os.environ.get("OTEL_SERVICE_NAME"):
            attributes["service.name"] = f"modelops-{served.model}"
        provider = TracerProvider(resource=Resource.create(attributes))  # flushed at exit
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        self.tracer = provider.get_tracer("modelops.runner")
        self.propagator = TraceContextTextMapPropagator()
        self.model, self.primary = served.model, served.primary
        self.server, self.error = SpanKind.SERVER, StatusCode.ERROR

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in UNTRACED:
            await self.app(scope, receive, send)
            return
        carrier = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]
                   if k in (b"traceparent", b"tracestate")}
        answered = {"status": counting.GONE, "version": self.primary}  # as /metrics counts them

        async def send_observed(message: Message) -> None:
            if message["type"] == "http.response.start":
                answered["status"] = message["status"]
                answered["version"] = next((v.decode() for k, v in message.get("headers", [])
                                            if k == b"x-model-version"), self.primary)
            await send(message)

        with self.tracer.start_as_current_span(f"{scope['method']} {scope['path']}", kind=self.server,
                                               context=self.propagator.extract(carrier)) as span:
            try:
                await self.app(scope, receive, send_observed)
            finally:
                status = answered["status"]
                observed = logs.current()
                span.set_attributes({
                    "http.request.method": scope["method"], "url.path": scope["path"],
                    "http.response.status_code": status, "modelops.model": self.model,
                    "modelops.version": answered["version"], "modelops.rows": (observed and observed.rows) or 0,
                    "modelops.outcome": "ok" if status < 400 else "refused" if status < 500 else "error",
                    "modelops.request_id": observed.id if observed else ""})
                if status >= 500:
                    span.set_status(self.error)
