"""A tiny HTTP server on 127.0.0.1 that answers every GET with the body it is set to (a stand-in for a
Prometheus or a runner that answers something unexpected); /version answers as iris's production runner."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Answering(ThreadingHTTPServer):
    body: bytes = b""
    on_request: Callable[[], None] | None = None  # called before each answer

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: Answering

    def do_GET(self) -> None:
        if self.server.on_request is not None:
            self.server.on_request()
        body = b'{"model": "iris", "environment": "production"}' if self.path == "/version" else self.server.body
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        pass


@contextmanager
def answering() -> Iterator[Answering]:
    server = Answering(("127.0.0.1", 0), _Handler)  # port 0: a free one
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
