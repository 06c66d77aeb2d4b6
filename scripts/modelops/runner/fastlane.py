"""The scoring routes called without FastAPI's routing: the hot path of every protocol.

FastAPI builds the OpenAPI document and serves every route; for a scoring request (`POST` on a route the
protocols declare) this layer, innermost of the runner's own (inside the admission, the keys, the request
id and the counting), matches the path itself and awaits the route's endpoint with the request and the
path's parameters, as FastAPI would, skipping its exception, exit-stack and routing layers, the request
object it builds per route, and its dependency solving: about half of what a small request costs. Only
coroutines that take nothing but the request and plain string path parameters are served so (checked when
the app is built: FastAPI would call any other endpoint otherwise); a refusal is answered by the app's own
handler of `RequestError`; anything else unexpected goes up to the app's error middleware, as from a route.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request
from fastapi.routing import APIRoute, APIRouter
from starlette.middleware import Middleware
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from modelops.runner.http import RequestError

Endpoint = Callable[..., Awaitable[Response]]
Handler = Callable[[Request, Exception], Awaitable[Response]]


def install(app: FastAPI, routers: list[APIRouter]) -> None:
    """Serve the POST routes of `routers` (the protocols' scoring routes) through the fast lane, innermost of
    the app's layers: call it once every other layer is in place."""
    routes = [_lane(route) for api in routers for route in api.routes
              if isinstance(route, APIRoute) and route.methods == {"POST"}]
    app.user_middleware.append(Middleware(FastLane, routes=routes, refused=app.exception_handlers[RequestError]))


def _lane(route: APIRoute) -> tuple[re.Pattern, Endpoint]:
    """The route's path pattern and endpoint, when FastAPI would await it with the request and the path alone."""
    dependant = route.dependant
    path = {p.name for p in dependant.path_params}
    taken = [dependant.dependencies, dependant.query_params, dependant.header_params, dependant.cookie_params,
             dependant.body_params]
    if (any(taken) or not inspect.iscoroutinefunction(route.endpoint) or dependant.request_param_name != "request"
            or set(inspect.signature(route.endpoint).parameters) != {"request", *path}  # e.g. a Response, tasks
            or set(route.path_regex.groupindex) != path  # an aliased path parameter
            or any(p.field_info.annotation is not str or p.field_info.metadata for p in dependant.path_params)):
        raise RuntimeError(f"{route.path}: the fast lane awaits only a coroutine that takes the request and "
                           "unconstrained string path parameters")
    return route.path_regex, route.endpoint


class FastLane:
    """Await a scoring route's endpoint directly; pass everything else on to the app."""

    def __init__(self, app: ASGIApp, routes: list[tuple[re.Pattern, Endpoint]], refused: Handler) -> None:
        self.app = app
        self.routes = routes
        self.refused = refused

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            path = scope["path"]
            root = scope.get("root_path", "")
            if root and path.startswith(root):
                path = path[len(root):]
            for pattern, endpoint in self.routes:
                if match := pattern.match(path):
                    request = Request(scope, receive, send)
                    try:
                        response = await endpoint(request, **match.groupdict())
                    except RequestError as exc:
                        response = await self.refused(request, exc)
                    await response(scope, receive, send)
                    return
        await self.app(scope, receive, send)
