"""Admission of scoring requests: a bound on those in flight (429), a deadline for each (504), the drain.

`Admission` is an ASGI layer in front of the scoring routes. Past `max_in_flight` requests in this
process, a new one is answered 429 with `Retry-After` at once, its body unread, so a crowd beyond
capacity is told to come back instead of queueing (and every caller waiting longer). Each admitted
request has `request_timeout_s` to be answered: 504 when the model is too slow, 408 when its body did
not arrive in that time. While the process drains (`Gate.drain`) new ones get 503, and those still
running at the cutoff are answered 503 rather than cut off. A client that leaves while its body is
read is no error here (the connection logs it: `runner/connection.py`).

Deadlines are enforced by one sweep of the requests in flight every `SWEEP_S` (a timer per request
costs more than the rest of this layer together), so an answer comes at most that much late.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass

from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from modelops.runner.http import JSON, error_body

SCORING = re.compile(r"/(invocations|predict|v2/models/[^/]+(/versions/[^/]+)?/infer)")
RETRY_AFTER_S = 1
SWEEP_S = 0.1


@dataclass(slots=True)
class Flight:
    """One admitted request: when it must be answered (loop time; None: never), and why its task was
    cancelled, if it was ("timeout", or "cutoff" when the drain's grace ran out). It holds no reference to
    the task: the task's frame holds the flight, and a cycle would leave every request to the garbage
    collector (whose pauses show in the p99)."""

    deadline: float | None
    ended: str = ""


class Gate:
    """The scoring requests in flight in this process, their deadlines and the drain."""

    def __init__(self, max_in_flight: int, request_timeout_s: float) -> None:
        self.max_in_flight = max_in_flight
        self.request_timeout_s = request_timeout_s
        self.flights: dict[asyncio.Task, Flight] = {}
        self.cutoff: float | None = None  # loop time when draining: no request runs past it
        self.closing = False  # set at the signal, before the drain starts in the loop: admit no more
        self._idle: asyncio.Event | None = None
        self._sweeper: asyncio.Task | None = None

    @property
    def draining(self) -> bool:
        return self.closing or self.cutoff is not None

    def start(self) -> None:
        """Sweep the deadlines from now on (in the running loop); `stop` ends it."""
        if self.request_timeout_s > 0 and self._sweeper is None:
            self._sweeper = asyncio.get_running_loop().create_task(self._sweep())

    def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None

    def drain(self, cutoff: float) -> None:
        """Admit no more requests; answer those still running at `cutoff` (loop time) with 503."""
        self.cutoff = cutoff
        self._idle = asyncio.Event()
        if self._sweeper is None:
            self._sweeper = asyncio.get_running_loop().create_task(self._sweep())
        self._check_idle()

    async def drained(self) -> None:
        """Return once no request is in flight (call after `drain`)."""
        assert self._idle is not None
        await self._idle.wait()

    async def _sweep(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(SWEEP_S)
            now, cutoff = loop.time(), self.cutoff
            for task, flight in self.flights.items():
                if flight.ended:
                    continue
                if cutoff is not None and now >= cutoff:
                    flight.ended = "cutoff"
                elif flight.deadline is not None and now >= flight.deadline:
                    flight.ended = "timeout"
                else:
                    continue
                task.cancel()

    def enter(self, now: float) -> Flight:
        """The flight of the current task, admitted `now` (loop time)."""
        flight = Flight(now + self.request_timeout_s if self.request_timeout_s > 0 else None)
        self.flights[asyncio.current_task()] = flight  # type: ignore[index]
        return flight

    def leave(self) -> None:
        """The current task's request is answered."""
        del self.flights[asyncio.current_task()]  # type: ignore[arg-type]
        self._check_idle()

    def _check_idle(self) -> None:
        if self._idle is not None and not self.flights:
            self._idle.set()


class Admission:
    """Admit scoring requests through the `gate`; refusals in the runner's error shape, with the version."""

    def __init__(self, app: ASGIApp, gate: Gate, version: str) -> None:
        self.app = app
        self.gate = gate
        self.version = version.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or not SCORING.fullmatch(scope["path"]):
            await self.app(scope, receive, send)
            return
        gate = self.gate
        if gate.draining:
            await self._refuse(send, scope, 503, "the server is shutting down; send the request again (another "
                               "replica will answer it)", close=True)
            return
        if gate.max_in_flight and len(gate.flights) >= gate.max_in_flight:
            # A client waiting for "100 Continue" sends no body: the connection cannot go on.
            waiting = (b"expect", b"100-continue") in ((k, v.lower()) for k, v in scope["headers"])
            await self._refuse(send, scope, 429, f"{gate.max_in_flight} requests are in flight already "
                               f"(max_in_flight, MODELOPS_MAX_IN_FLIGHT); retry in {RETRY_AFTER_S} s",
                               ("retry-after", str(RETRY_AFTER_S)), close=waiting)
            return
        await self._admitted(scope, receive, send)

    async def _admitted(self, scope: Scope, receive: Receive, send: Send) -> None:
        gate = self.gate
        read, started = False, False

        async def receiving() -> Message:
            nonlocal read
            message = await receive()
            read = read or not message.get("more_body", False)
            return message

        async def sending(message: Message) -> None:
            nonlocal started
            started = True
            await send(message)

        flight = gate.enter(asyncio.get_running_loop().time())
        try:
            await self.app(scope, receiving, sending)
        except ClientDisconnect:
            return
        except asyncio.CancelledError:
            if not flight.ended:
                raise
            asyncio.current_task().uncancel()  # type: ignore[union-attr]
            if not started:  # else the answer was being written: the connection closes, as it must
                await self._expired(scope, send, flight.ended, read)
        finally:
            gate.leave()

    async def _expired(self, scope: Scope, send: Send, why: str, read: bool) -> None:
        timeout = self.gate.request_timeout_s
        if why == "cutoff":
            await self._refuse(send, scope, 503, "the server is shutting down and the request did not finish "
                               "within the grace period (shutdown_grace_s, MODELOPS_SHUTDOWN_GRACE_S)", close=True)
        elif not read:
            await self._refuse(send, scope, 408, f"the body did not arrive within {timeout:g} s "
                               "(request_timeout_s, MODELOPS_REQUEST_TIMEOUT_S)", close=True)
        else:
            await self._refuse(send, scope, 504, f"no answer within {timeout:g} s "
                               "(request_timeout_s, MODELOPS_REQUEST_TIMEOUT_S)")

    async def _refuse(self, send: Send, scope: Scope, status: int, message: str, *extra: tuple[str, str],
                      close: bool = False) -> None:
        body = error_body(status, message, "", scope["path"])
        headers = [(b"content-type", JSON.encode()), (b"content-length", str(len(body)).encode()),
                   (b"x-model-version", self.version), *((k.encode(), v.encode()) for k, v in extra)]
        if close:
            headers.append((b"connection", b"close"))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
