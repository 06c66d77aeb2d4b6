"""JSON log lines, the request id and the access log.

Every log line of the runner, uvicorn's included (`config` is uvicorn's `log_config`), is one JSON object:
time, level, logger, message, and the request id when the line is written while a request is answered.
`RequestContext` gives each request its id (`X-Request-ID`, else the trace id of `traceparent`, else a
new one), returns it in `X-Request-ID`, and writes one access line per request when the access log is on.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import time
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from modelops.runner import counting

ACCESS = logging.getLogger("modelops.access")
_ID = re.compile(rb"^[\x21-\x7e]{1,128}$")  # visible ASCII: safe in a header, a log line and a CloudEvent id
_TRACEPARENT = re.compile(rb"^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$")
_NO_TRACE = b"0" * 32


@dataclass(slots=True)
class Observed:
    """What the runner learns of one request while answering it (read by the access log and the span)."""

    id: str
    rows: int | None = None


_current: ContextVar[Observed | None] = ContextVar("modelops_request", default=None)


def current() -> Observed | None:
    """The request being answered in this context, if any."""
    return _current.get()


def request_id(headers: list[tuple[bytes, bytes]]) -> str:
    """`X-Request-ID` if usable, else the trace id of a valid `traceparent`, else 32 new random hex digits."""
    traced = b""
    for name, value in headers:
        if name == b"x-request-id" and _ID.match(value):
            return value.decode()
        if name == b"traceparent" and (match := _TRACEPARENT.match(value.strip())) and match[1] != _NO_TRACE:
            traced = match[1]
    return traced.decode() if traced else os.urandom(16).hex()


def install(app: Starlette, primary: str) -> None:
    """Put `RequestContext` around the whole of `app` (outside even Starlette's handler of crashes, so that
    a 500 carries its request id and gets its access line)."""
    build = app.build_middleware_stack
    app.build_middleware_stack = lambda: RequestContext(build(), primary)  # type: ignore[method-assign]


class RequestContext:
    """Give every HTTP request its id (in the context and in `X-Request-ID`); write the access line (its
    version: the response's `X-Model-Version`, else `primary`, which the counting layer outside adds)."""

    def __init__(self, app: ASGIApp, primary: str = "") -> None:
        self.app = app
        self.primary = primary

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        observed = Observed(request_id(scope["headers"]))
        token = _current.set(observed)
        header = (b"x-request-id", observed.id.encode())
        answered: dict[str, Any] = {"status": counting.GONE, "headers": ()}  # as /metrics counts it

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = answered["headers"] = [*message.get("headers", []), header]
                answered["status"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            if ACCESS.isEnabledFor(logging.INFO):
                version = next((v.decode() for k, v in answered["headers"] if k == b"x-model-version"),
                               self.primary)
                ACCESS.info("%s %s %s", scope["method"], scope["path"], answered["status"], extra={"fields": {
                    "method": scope["method"], "path": scope["path"], "status": answered["status"],
                    "version": version, "duration_ms": round((time.perf_counter() - start) * 1000, 3),
                    "rows": observed.rows}})
            _current.reset(token)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC), level, logger, message, request_id, fields, exception."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname, "logger": record.name, "message": record.getMessage()}
        if (observed := _current.get()) is not None:
            line["request_id"] = observed.id
        line.update(getattr(record, "fields", {}))
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()


def stderr_handler() -> logging.Handler:
    """The handler of every log line; Python's warnings (a model's library warning at load or predict)
    become log lines too (`py.warnings`), in each worker process that applies the config."""
    logging.captureWarnings(True)
    return logging.StreamHandler(sys.stderr)


def config(access_log: bool) -> dict[str, Any]:
    """uvicorn's `log_config`: every logger (uvicorn's, the runner's, the root) writes JSON lines to stderr;
    the access lines are the runner's own (`modelops.access`, with the request id and the version)."""
    return {
        "version": 1, "disable_existing_loggers": False,
        "formatters": {"json": {"()": f"{__name__}.JsonFormatter"}},
        "handlers": {"json": {"()": f"{__name__}.stderr_handler", "formatter": "json"}},
        "loggers": {"uvicorn": {"handlers": ["json"], "level": "INFO", "propagate": False},
                    "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
                    "modelops": {"handlers": ["json"], "level": "INFO", "propagate": False},
                    ACCESS.name: {"level": "INFO" if access_log else "WARNING"}},
        "root": {"handlers": ["json"], "level": "WARNING"},
    }
