"""Optional API keys: when configured, every route but the probes, /metrics and the docs needs a bearer key.

Keys come from `MODELOPS_API_KEYS` (comma-separated) and the file `MODELOPS_API_KEYS_FILE` names (one per
line, e.g. a mounted Kubernetes Secret), never from the manifest. A missing or wrong key is a 401 JSON
body with `WWW-Authenticate: Bearer`; keys are compared as SHA-256 digests in constant time.

The file is looked at again at most every `RELOAD_S`: when it changed (a Secret's new version, a file
rewritten), its keys replace the old ones without a restart. A changed file that cannot be read or holds
no key keeps the keys in force, with a warning.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import time
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from modelops.errors import ModelopsError
from modelops.runner.http import JSON, dumps

KEYS_VAR, FILE_VAR = "MODELOPS_API_KEYS", "MODELOPS_API_KEYS_FILE"
OPEN = frozenset({"/health", "/ready", "/ping", "/metrics", "/v2/health/live", "/v2/health/ready",
                  "/docs", "/openapi.json"})
OPEN_PREFIX = "/docs/"  # the Swagger UI's assets
SCHEME = "bearerAuth"
RELOAD_S = 1.0
log = logging.getLogger("modelops.runner")


def configured(keys_file: str) -> list[bytes]:
    """The SHA-256 digests of the configured keys; empty when none are (keys off)."""
    keys = [k.strip() for k in os.environ.get(KEYS_VAR, "").split(",")]
    if keys_file:
        try:
            mounted = [line.strip() for line in Path(keys_file).read_text().splitlines()]
        except (OSError, UnicodeDecodeError) as exc:
            raise ModelopsError(f"{FILE_VAR}={keys_file}: cannot read the API keys ({type(exc).__name__})",
                                hint="mount the file (one key per line) or unset the variable") from None
        keys += mounted
        if not any(mounted):
            raise ModelopsError(f"{FILE_VAR}={keys_file}: the file holds no key",
                                hint="write one key per line, or unset the variable to turn keys off")
    return [hashlib.sha256(k.encode()).digest() for k in keys if k]


def install(app: FastAPI, keys_file: str, version: str) -> None:
    """Require a key on `app`'s protected routes and declare the bearer scheme, when keys are configured."""
    digests = configured(keys_file)
    if not digests:
        return
    app.add_middleware(RequireKey, digests=digests, version=version, keys_file=keys_file)
    document = app.openapi

    def secured() -> dict[str, Any]:
        schema = document()
        if SCHEME not in schema.get("components", {}).get("securitySchemes", {}):
            schema.setdefault("components", {}).setdefault("securitySchemes", {})[SCHEME] = {
                "type": "http", "scheme": "bearer", "description": f"An API key ({KEYS_VAR}, {FILE_VAR})"}
            for path, operations in schema["paths"].items():
                if not _open(path):
                    for operation in operations.values():
                        operation["security"] = [{SCHEME: []}]
                        operation["responses"]["401"] = {"description": "Missing or wrong API key"}
        return schema

    app.openapi = secured  # type: ignore[method-assign]


def _stamp(path: str) -> tuple[int, int, int] | None:
    """What tells a changed file (its inode, size and modification time); None when there is none."""
    try:
        status = os.stat(path) if path else None
    except OSError:
        return None
    return (status.st_ino, status.st_size, status.st_mtime_ns) if status else None


def _open(path: str) -> bool:
    return path in OPEN or path.startswith(OPEN_PREFIX)


class RequireKey:
    """Answer 401 to a request of a protected route without `Authorization: Bearer <a configured key>`."""

    def __init__(self, app: ASGIApp, digests: list[bytes], version: str, keys_file: str = "") -> None:
        self.app = app
        self.digests = digests
        self.version = version.encode()
        self.keys_file = keys_file
        self._seen = _stamp(keys_file)
        self._next_look = time.monotonic() + RELOAD_S

    def _reload(self) -> None:
        """Take the keys file's keys again when the file changed since it was last read."""
        self._next_look = time.monotonic() + RELOAD_S
        stamp = _stamp(self.keys_file)
        if stamp == self._seen:
            return
        self._seen = stamp
        try:
            self.digests = configured(self.keys_file)
        except ModelopsError as exc:
            log.warning("the API keys are unchanged: %s", exc)
            return
        log.warning("the API keys were read again from %s: %d key(s)", self.keys_file, len(self.digests))

    def allowed(self, headers: list[tuple[bytes, bytes]]) -> bool:
        if self.keys_file and time.monotonic() >= self._next_look:
            self._reload()
        sent = next((v for k, v in headers if k == b"authorization"), b"")
        scheme, _, key = sent.partition(b" ")
        digest = hashlib.sha256(key.strip()).digest()
        found = False
        for known in self.digests:  # every key compared, whichever matches
            found |= hmac.compare_digest(digest, known)
        return found and scheme.lower() == b"bearer"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or _open(scope["path"]) or self.allowed(scope["headers"]):
            await self.app(scope, receive, send)
            return
        message = "a valid API key is required: send Authorization: Bearer <key>"
        if scope["path"].startswith("/v2/"):
            body = dumps({"error": message, "field": "Authorization"})
        else:
            body = dumps({"error_code": "UNAUTHORIZED", "message": message, "field": "Authorization"})
        await send({"type": "http.response.start", "status": 401, "headers": [
            (b"content-type", JSON.encode()), (b"content-length", str(len(body)).encode()),
            (b"www-authenticate", b"Bearer"), (b"x-model-version", self.version)]})
        await send({"type": "http.response.body", "body": body})
