"""The layer around the runner's ASGI app (inside only the request-id layer): every response names a
version, and is counted.

Each response carries `X-Model-Version`: the version that scored the request (the route sets it), or
the deployment's primary version for every other answer (refused before the model predicted, not
found, not ready, over a limit, crashed). The answers of the scoring and metadata routes are counted
in `/metrics` (`modelops_requests_total` by status, `modelops_request_duration_seconds`) under that
same version, whichever layer answered: the error handlers and every middleware sit inside this one.
"""

from __future__ import annotations

import time

from starlette.applications import Starlette
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from modelops.runner.metrics import Metrics

_HEADER = b"x-model-version"
GONE = 499  # the client went away before an answer started (nginx's code for it)


def endpoint(path: str) -> str | None:
    """The `endpoint` label of a path; None for paths that are not counted (health, metrics, docs)."""
    if path == "/invocations":
        return "invocations"
    if path == "/predict":
        return "predict"
    if path.startswith("/v2/models/"):
        return "v2" if path.endswith("/infer") else "metadata"
    if path in ("/v2", "/version"):
        return "metadata"
    return None


def install(app: Starlette, metrics: Metrics, primary: str) -> None:
    """Put `Counting` around the whole of `app`, outside its error handlers and middleware; answers given
    before the app (`count_early`) are counted in `metrics` too (a server process serves one app)."""
    build = app.build_middleware_stack
    app.build_middleware_stack = lambda: Counting(build(), metrics, primary)  # type: ignore[method-assign]
    _early[:] = [metrics, primary]


_early: list = []  # [metrics, primary] of this process's app


def count_early(path: str, status: int) -> None:
    """Count an answer the connection gave before the app saw the request (a 431, a 408 for a slow head)."""
    if _early and (name := endpoint(path.split("?", 1)[0])) is not None:
        _early[0].observe(_early[1], name, status, 0.0)


class Counting:
    """Add `X-Model-Version: <primary>` where a response names none; count the counted endpoints' responses."""

    def __init__(self, app: ASGIApp, metrics: Metrics, primary: str) -> None:
        self.app = app
        self.metrics = metrics
        self.primary = primary
        self.header = (_HEADER, primary.encode())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        answered: list = [GONE, self.primary]  # status, version

        async def send_named(message: Message) -> None:
            if message["type"] == "http.response.start":
                answered[0] = message["status"]
                headers = message.setdefault("headers", [])
                for key, value in headers:
                    if key.lower() == _HEADER:
                        answered[1] = value.decode("latin-1")
                        break
                else:
                    message["headers"] = [*headers, self.header]
            await send(message)

        try:
            await self.app(scope, receive, send_named)
        except Exception:
            if answered[0] == GONE:  # no answer started: the client gets a 500 from the server
                answered[0] = 500
            raise
        finally:
            if (name := endpoint(scope["path"])) is not None:
                self.metrics.observe(answered[1], name, answered[0], time.perf_counter() - start)
