"""One HTTP/1.1 connection: uvicorn's httptools protocol, with bounds on a request's head and on idle time.

httptools parses a request's head before the app sees it (and buffers a header whole until it ends),
so its bounds live here, checked on the bytes as they arrive, before the parser is fed: a head over
`max_header_bytes` or with more than `max_header_count` lines is answered 431 and the connection
closed. A head must arrive within `header_timeout_s` of its first byte (else 408 and closed, so a
client trickling headers cannot hold a connection), and a connection that sends nothing is closed
after `idle_timeout_s` (uvicorn's keep-alive timer, armed from the start, not only after a response).
A client that goes away before its answer is one log line.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import ServerState

from modelops.runner import counting
from modelops.runner.http import JSON, error_body

log = logging.getLogger("modelops.runner")
_END = b"\r\n\r\n"  # the end of a head (httptools wants CRLF line ends)
LINGER_S = 2.0  # after a refusal, what the client still sends is read and dropped this long, so it reads the answer


@dataclass(frozen=True)
class HeadLimits:
    """The bounds of a request's head, and the version the refusals name."""

    max_bytes: int
    max_count: int
    timeout_s: float
    version: str


class BoundedHttpTools(HttpToolsProtocol):
    """uvicorn's httptools protocol with `HeadLimits` (pass it with functools.partial as `http=`)."""

    def __init__(self, config: Config, server_state: ServerState, app_state: dict[str, Any],
                 _loop: asyncio.AbstractEventLoop | None = None, *, limits: HeadLimits) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.limits = limits
        self._in_head = True  # between one request's end (or the connection's start) and the next head's end
        self._head_bytes = self._head_lines = 0
        self._tail = b""  # the last bytes seen of the head, for an end split across two reads
        self._start = b""  # the head's first bytes: its request line names the path
        self._head_timer: asyncio.TimerHandle | None = None
        self._peer_gone = False
        self._lingering = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.timeout_keep_alive_task = self.loop.call_later(self.timeout_keep_alive, self.timeout_keep_alive_handler)

    def data_received(self, data: bytes) -> None:
        if self._lingering or (self._in_head and not self._within_limits(data)):
            return
        super().data_received(data)
        if self._in_head and self._head_bytes and self._head_timer is None and not self.transport.is_closing():
            self._head_timer = self.loop.call_later(self.limits.timeout_s, self._head_too_slow)  # a head in parts

    def _within_limits(self, data: bytes) -> bool:
        """Count `data` into the head being read; False (answered 431) once it is over a bound."""
        if not self._head_bytes:
            self._start = data[:1024]
        tail, keep = self._tail, len(_END) - 1
        across = (tail + data[:keep]).find(_END) if tail else -1  # an end split between two reads
        if across >= 0:
            size = across + len(_END) - len(tail)
        else:
            end = data.find(_END)
            size = len(data) if end < 0 else end + len(_END)
        self._head_bytes += size
        self._head_lines += data.count(b"\n", 0, size)
        self._tail = (tail + data)[-keep:] if len(data) < keep else data[-keep:]
        limits = self.limits
        if self._head_bytes > limits.max_bytes:
            self._refuse(431, f"the request's head is over {limits.max_bytes} bytes (max_header_bytes, "
                              "MODELOPS_MAX_HEADER_BYTES)")
        elif self._head_lines > limits.max_count + 2:  # the request line and the blank line end it
            self._refuse(431, f"the request has more than {limits.max_count} header lines (max_header_count, "
                              "MODELOPS_MAX_HEADER_COUNT)")
        else:
            return True
        return False

    def on_headers_complete(self) -> None:
        self._end_head()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_head, self._head_bytes, self._head_lines, self._tail = True, 0, 0, b""

    def _end_head(self) -> None:
        self._in_head = False
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_too_slow(self) -> None:
        self._head_timer = None
        if not self.transport.is_closing():
            self._refuse(408, f"the request's head did not arrive within {self.limits.timeout_s:g} s "
                              "(header_timeout_s, MODELOPS_HEADER_TIMEOUT_S)")

    def _refuse(self, status: int, message: str) -> None:
        """Answer `status` (JSON, the runner's error shape) before the app; close the connection (lingering)."""
        self._end_head()
        log.warning("refused a request from %s: %s", _address(self.client), message)
        line = self._start.split(b"\r\n", 1)[0].split(b" ")
        path = line[1].decode("latin-1") if len(line) > 1 else "/"
        body = error_body(status, message, "headers", path)
        head = b"".join((STATUS_LINE[status], b"content-type: ", JSON.encode(), b"\r\ncontent-length: ",
                         str(len(body)).encode(), b"\r\nx-model-version: ", self.limits.version.encode(),
                         b"\r\nconnection: close\r\n\r\n"))
        if self.cycle is not None and not self.cycle.response_complete:  # never inside another request's answer
            self.transport.close()
            return
        self.transport.write(head + body)
        counting.count_early(path, status)  # what was answered (not a head cut short inside another answer)
        self._unset_keepalive_if_required()
        self._lingering = True  # closing now, with the client still sending, would reset the connection
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.loop.call_later(LINGER_S, self.transport.close)

    def eof_received(self) -> None:
        self._peer_gone = True
        super().eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete and (exc is not None or self._peer_gone):
            stage = "its body was arriving" if cycle.more_body else "it was being answered"
            log.warning("client %s went away while %s: %s %s", _address(self.client), stage,
                        cycle.scope["method"], cycle.scope["path"])
        if self._head_timer is not None:
            self._head_timer.cancel()
        super().connection_lost(exc)


def _address(client: tuple[str, int] | None) -> str:
    return f"{client[0]}:{client[1]}" if client else "a client"
