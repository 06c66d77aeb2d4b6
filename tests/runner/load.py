"""A small HTTP/1.1 client on asyncio streams (keep-alive, one request at a time), for load on loopback."""

from __future__ import annotations

import asyncio
import gc
import json
import statistics
import time
from dataclasses import dataclass, field

TOY_ROW = {"dataframe_split": {"columns": ["x", "y"], "data": [[1.0, 2.0]]}}


@dataclass
class Answer:
    """What one request got: a status (0: none, the connection failed: `error` says how), and when."""

    sent: float
    took: float
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    error: str = ""

    def json(self) -> dict:
        return json.loads(self.body)


class Connection:
    """One keep-alive connection to 127.0.0.1:`port`, opened again when the server closed it."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def request(self, method: str, path: str, body: bytes = b"",
                      headers: dict[str, str] | None = None) -> Answer:
        sent = time.monotonic()
        try:
            if self.streams is None:
                self.streams = await asyncio.open_connection("127.0.0.1", self.port)
            reader, writer = self.streams
            lines = [f"{method} {path} HTTP/1.1", "Host: runner", f"Content-Length: {len(body)}",
                     *(f"{k}: {v}" for k, v in {"Content-Type": "application/json", **(headers or {})}.items())]
            writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
            found = dict(line.lower().split(": ", 1) for line in head[1:] if ": " in line)
            payload = await reader.readexactly(int(found.get("content-length", 0)))
        except (OSError, asyncio.IncompleteReadError) as exc:
            self.close()
            return Answer(sent, time.monotonic() - sent, error=type(exc).__name__)
        if found.get("connection") == "close":
            self.close()
        return Answer(sent, time.monotonic() - sent, int(head[0].split()[1]), found, payload)

    def close(self) -> None:
        if self.streams is not None:
            self.streams[1].close()
            self.streams = None


async def crowd(port: int, clients: int, seconds: float, body: bytes, path: str = "/invocations",
                backoff: float = 0.02) -> list[Answer]:
    """`clients` connections POSTing `body` back to back for `seconds` (after a 429 or a failure, each
    waits `backoff`, as a client honouring Retry-After would, only sooner); every answer. This process's
    garbage collector waits meanwhile: a full collection of a test session's heap stalls every request in
    flight for as long as it takes (seen: 0.4 s), which the answers' latency would blame on the server."""
    answers: list[Answer] = []
    end = time.monotonic() + seconds

    async def client() -> None:
        connection = Connection(port)
        while time.monotonic() < end:
            answer = await connection.request("POST", path, body)
            answers.append(answer)
            if answer.status != 200:
                await asyncio.sleep(backoff)
        connection.close()

    collecting = gc.isenabled()
    gc.disable()
    try:
        await asyncio.gather(*(client() for _ in range(clients)))
    finally:
        if collecting:
            gc.enable()
    return answers


def p99(answers: list[Answer]) -> float:
    return statistics.quantiles([a.took for a in answers], n=100)[98]
