"""`create_app(served)`: the runner's FastAPI application, its state on `app.state.runtime`.

The versions load in the background: /health answers at once, /ready (and scoring) answer 503 with
the reason until every routed version is loaded, and for good when one cannot load.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException

from modelops import __version__
from modelops.runner import counting, docs, fastlane, keys, logs, mlflow_scoring, shutdown, tracing, typed, v2
from modelops.runner.http import JSON, RequestError, dumps, error_body
from modelops.runner.limits import Admission, Gate
from modelops.runner.loading import ServedModel
from modelops.runner.metrics import CONTENT_TYPE
from modelops.runner.runtime import RunnerSettings, Runtime

log = logging.getLogger("modelops.runner")


class Health(BaseModel):
    status: str
    ready: bool
    problem: str = ""


class VersionInfo(BaseModel):
    model: str
    environment: str
    version: str
    canary: str | None
    canary_weight: int
    shadow: list[str]
    runner: str


def create_app(served: ServedModel, settings: RunnerSettings | None = None) -> FastAPI:
    """The runner application for `served`; loading starts with the server (lifespan)."""
    runtime = Runtime(served, settings or RunnerSettings())
    gate = Gate(runtime.settings.max_in_flight, runtime.settings.request_timeout_s)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        gate.start()
        shutdown.watch(runtime, gate)
        yield
        gate.stop()
        await runtime.stop()

    app = FastAPI(title=f"{served.model} model", version=served.primary, lifespan=lifespan,
                  description=f"{served.description}\n\nServing {served.describe()}.",
                  docs_url=None, redoc_url=None,
                  # the runner's own spans (tracing.py), not FastAPI's: no per-request check of the providers
                  telemetry={"tracing": False, "metrics": False, "logs": False})
    app.state.runtime = runtime
    counting.install(app, runtime.metrics, served.primary)
    logs.install(app, served.primary)  # around the counting layer: every answer gets its request id
    app.add_middleware(Admission, gate=gate, version=served.primary)
    _error_handlers(app)
    schemas: dict[str, dict] = {}
    routers = []
    for protocol in (mlflow_scoring, typed, v2):  # first: requests are matched route by route, in this order
        api, protocol_schemas = protocol.router(runtime)
        app.include_router(api)  # as it is (no prefix, no dependencies): the fast lane serves its routes' paths
        routers.append(api)
        schemas.update(protocol_schemas)
    _health_routes(app, runtime)
    _document(app, schemas)
    docs.install(app, f"{served.model} model")
    keys.install(app, runtime.settings.api_keys_file, served.primary)
    tracing.install(app, served)
    fastlane.install(app, routers)  # the scoring routes' hot path, innermost: after every other layer
    return app


def _health_routes(app: FastAPI, runtime: Runtime) -> None:
    served = runtime.served
    version_body = dumps({"model": served.model, "environment": served.environment, "version": served.primary,
                          "canary": served.canary, "canary_weight": served.weight, "shadow": list(served.shadows),
                          "runner": __version__})

    def health_body() -> dict:
        return {"status": "ok", "ready": runtime.ready, "problem": runtime.problem}

    @app.get("/health", response_model=Health, tags=["Health"], summary="Live (the process answers)")
    async def health() -> Response:
        return Response(dumps(health_body()), media_type=JSON)

    not_ready = {503: {"model": Health, "description": "Not ready (problem says why)"}}

    @app.get("/ready", response_model=Health, responses=not_ready, tags=["Health"],
             summary="Ready (every routed version is loaded)")
    async def ready() -> Response:
        return Response(dumps(health_body()), status_code=200 if runtime.ready else 503, media_type=JSON)

    @app.get("/ping", response_model=Health, responses=not_ready, tags=["MLflow scoring"],
             summary="Ready (as MLflow's /ping)")
    async def ping() -> Response:
        return await ready()

    @app.get("/version", response_model=VersionInfo, tags=["Health"], summary="What this server routes")
    async def version() -> Response:
        return Response(version_body, media_type=JSON)

    @app.get("/metrics", tags=["Health"], summary="Prometheus metrics", response_class=PlainTextResponse)
    async def metrics() -> Response:
        return Response(runtime.metrics.render(), media_type=CONTENT_TYPE)


def _error_handlers(app: FastAPI) -> None:
    def error(status: int, message: str, field: str, path: str, version: str = "",
              headers: dict[str, str] | None = None) -> Response:
        headers = {**(headers or {}), **({"X-Model-Version": version} if version else {})}
        return Response(error_body(status, message, field, path), status_code=status, media_type=JSON,
                        headers=headers)

    @app.exception_handler(RequestError)
    async def refused(request: Request, exc: RequestError) -> Response:
        return error(exc.status, exc.message, exc.field, request.url.path, exc.version)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        return error(400, first["msg"], ".".join(str(p) for p in first["loc"]), request.url.path)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        return error(exc.status_code, str(exc.detail), "", request.url.path, headers=exc.headers)

    @app.exception_handler(Exception)
    async def crashed(request: Request, exc: Exception) -> Response:
        log.exception("unexpected error on %s", request.url.path)
        return error(500, "internal error; the server log has the details", "", request.url.path)


def _document(app: FastAPI, schemas: dict[str, dict]) -> None:
    """Build the OpenAPI document once, with the request schemas the routes reference by name."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(title=app.title, version=app.version, description=app.description,
                             routes=app.routes)
        # FastAPI documents a 422 HTTPValidationError wherever a route has parameters; this app answers
        # invalid parameters with a 400 ErrorBody instead (see _error_handlers), so none is ever sent.
        for operation in (op for path in schema["paths"].values() for op in path.values()):
            if "HTTPValidationError" in str(operation["responses"].get("422", "")):
                del operation["responses"]["422"]
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for name in ("HTTPValidationError", "ValidationError"):
            components.pop(name, None)
        components.update(schemas)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
