"""The drain on SIGTERM (or a first Ctrl+C), in each worker process.

1. At once: /ready, /ping and /v2/health/ready answer 503 ("shutting down"), and new scoring requests
   503 with `Connection: close` (the caller sends them again elsewhere).
2. The scoring requests already admitted run to their end (each within `request_timeout_s`); those
   still running at the cutoff are answered 503. The cutoff keeps, of `shutdown_grace_s`, 1 s for uvicorn
   to close and `payloads.FLUSH_S` for the payload log to write what is queued (when there is one).
3. Then uvicorn stops: it closes the listening socket and the idle connections, finishes what is being
   written, the payload log is flushed, and the process exits, within `shutdown_grace_s` of the signal.

`watch` chains this in front of uvicorn's own signal handler when the app starts; a second SIGINT
stops at once, as uvicorn does.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
from collections.abc import Callable
from types import FrameType

from modelops.runner import payloads
from modelops.runner.limits import Gate
from modelops.runner.runtime import RunnerSettings, Runtime, log

CLOSING_S = 1.0  # of the grace period, kept for uvicorn to close the connections and stop


def reserved_s(runtime: Runtime) -> float:
    """The part of the grace period kept after the drain: closing, and flushing the payload log if any."""
    return CLOSING_S + (payloads.FLUSH_S if runtime.payloads else 0.0)


def too_short(settings: RunnerSettings, reserved: float) -> str:
    """Why a request admitted just before a shutdown could be cut short by these settings ("" if not)."""
    if settings.request_timeout_s and settings.shutdown_grace_s < settings.request_timeout_s + reserved:
        return (f"shutdown_grace_s ({settings.shutdown_grace_s:g} s) is shorter than request_timeout_s "
                f"({settings.request_timeout_s:g} s) plus {reserved:g} s to close: a request admitted just "
                "before a shutdown may be answered 503 (raise MODELOPS_SHUTDOWN_GRACE_S, and the pod's "
                "terminationGracePeriodSeconds with it)")
    return ""


def watch(runtime: Runtime, gate: Gate) -> None:
    """Drain on SIGTERM/SIGINT before uvicorn's handler stops the server (only in the main thread); warn
    when the grace period cannot hold the request timeout."""
    if why := too_short(runtime.settings, reserved_s(runtime)):
        log.warning("%s", why)
    if threading.current_thread() is not threading.main_thread():
        return  # an app served in-process (tests): no signals to watch
    loop = asyncio.get_running_loop()
    signalled: list[int] = []
    tasks: list[asyncio.Task] = []  # the drain, referenced so that it runs to its end

    def chain(then: Callable[[int, FrameType | None], object]) -> Callable[[int, FrameType | None], None]:
        def handle(number: int, frame: FrameType | None) -> None:
            if signalled:
                if number == signal.SIGINT:  # a second Ctrl+C: stop now
                    then(number, frame)
                return
            signalled.append(number)
            runtime.shut()
            gate.closing = True  # from now on a new scoring request is refused with Connection: close
            coroutine = _drain(runtime, gate, loop, signal.Signals(number).name, lambda: then(number, None))
            loop.call_soon_threadsafe(lambda: tasks.append(loop.create_task(coroutine)))
        return handle

    for number in (signal.SIGTERM, signal.SIGINT):
        then = signal.getsignal(number)
        if callable(then):
            signal.signal(number, chain(then))


async def _drain(runtime: Runtime, gate: Gate, loop: asyncio.AbstractEventLoop, name: str,
                 stop: Callable[[], object]) -> None:
    grace = runtime.settings.shutdown_grace_s
    log.warning("%s: shutting down (process %d); answering the %d request(s) in flight (at most %g s)", name,
                os.getpid(), len(gate.flights), grace)
    gate.drain(loop.time() + max(grace - reserved_s(runtime), 0))
    await gate.drained()
    log.warning("every request admitted was answered; stopping")
    stop()
