"""Adaptive micro-batching: requests to one version that overlap in time are scored in one `predict`.

Each version has one `Batcher` and `threads` predict threads (the frameworks served natively release
the GIL while they score, so batches on several threads use several cores). While every thread is busy,
new requests queue; a thread that frees takes all of them (up to `max_rows`). After taking what is queued,
the batcher waits (at most `max_wait` seconds, and no longer than the fitted fixed cost of a call, which
is what a request joining the batch saves) while requests routed to it are still reading or parsing
their body (`arriving()`), or while the batch holds fewer requests than its share of the callers
outstanding at once lately (those not being scored on another thread, shared among the free threads: the
callers just answered are likely to come straight back): a lone caller never waits, and a steady crowd
of callers is scored in one call per thread instead of splitting into groups that take turns.

A batch is bounded by what it costs: the batcher learns the cost of a call from the calls it made (a
fixed part and a part per row, fitted over the recent calls), and stops adding requests to a batch
once its predicted cost passes `budget` seconds (`max_rows` stays as a cap). A slow model thus scores
smaller batches, and a cheap one large ones, with the same latency.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import math
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

_WINDOW = 8  # batches over which the recent crowd of callers is remembered
_DECAY = 0.9  # of the weight of a past call in the fitted cost, per call since


class Cost:
    """The cost of a predict call as `fixed + per_row * rows` seconds, fitted by least squares over the recent
    calls (older ones weigh less); 0 until calls of two different sizes were seen."""

    def __init__(self) -> None:
        self._sums = [0.0] * 5  # weight, rows, seconds, rows^2, rows*seconds

    def observe(self, rows: int, seconds: float) -> None:
        n, x, y, xx, xy = (s * _DECAY for s in self._sums)
        self._sums = [n + 1, x + rows, y + seconds, xx + rows * rows, xy + rows * seconds]

    def call(self) -> float | None:
        """What a request saves by joining another's call: the fixed part of a call; while there is no fit
        (calls of one size only), the mean call, which holds it; None before any call."""
        n, _, y, _, _ = self._sums
        fit = self._fit()
        return fit[0] if fit else y / n if n else None

    def of(self, rows: int) -> float:
        fit = self._fit()
        return fit[0] + fit[1] * rows if fit else 0.0

    def _fit(self) -> tuple[float, float] | None:
        """(fixed, per_row) seconds, once calls of two different sizes were seen."""
        n, x, y, xx, xy = self._sums
        spread = n * xx - x * x
        if n < 2 or spread <= 1e-9 * max(n * xx, 1.0):
            return None
        per_row = max((n * xy - x * y) / spread, 0.0)
        return max((y - per_row * x) / n, 0.0), per_row


@dataclass(slots=True)
class _Item:
    array: np.ndarray
    future: asyncio.Future


class Batcher:
    """Score arrays for one version, concatenating the requests that overlap into one predict call."""

    def __init__(self, predict: Callable[[np.ndarray], Any], name: str, *, max_wait: float, max_rows: int,
                 limit: int = 0, threads: int = 1, budget: float = 0.0,
                 on_batch: Callable[[int, int], None] | None = None) -> None:
        self._predict = predict
        self._max_wait = max_wait
        self._max_rows = max_rows
        self._limit = limit
        self._on_batch = on_batch
        self._queue: deque[_Item] = deque()
        self._coming = 0
        self._outstanding = 0  # offered and not yet answered
        self._peak = 0  # most outstanding at once since the last batch was collected
        self._peaks: deque[int] = deque(maxlen=_WINDOW)
        self._wake = asyncio.Event()
        self._threads = threads
        self._budget = budget
        self.cost = Cost()
        self._scoring: set[asyncio.Task] = set()  # the batches being predicted
        self._scored = 0  # requests in those batches
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix=f"predict-{name}")
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for task in list(self._scoring):
            task.cancel()
        for item in self._queue:
            item.future.cancel()
        self._executor.shutdown(wait=False, cancel_futures=True)

    @contextlib.contextmanager
    def arriving(self) -> Iterator[None]:
        """Mark a request routed here whose body is still being read and parsed."""
        self._coming += 1
        try:
            yield
        finally:
            self._coming -= 1
            self._wake.set()

    def offer(self, array: np.ndarray) -> asyncio.Future | None:
        """Queue `array` unless `limit` requests already wait (then None: the caller counts a drop)."""
        if self._limit and len(self._queue) >= self._limit:
            return None
        future = asyncio.get_running_loop().create_future()
        self._queue.append(_Item(array, future))
        self._outstanding += 1
        self._peak = max(self._peak, self._outstanding)
        future.add_done_callback(self._answered)
        self._wake.set()
        return future

    def _answered(self, _: asyncio.Future) -> None:
        self._outstanding -= 1

    async def predict(self, array: np.ndarray) -> np.ndarray:
        """The model's predictions for the rows of `array`."""
        future = self.offer(array)
        if future is None:
            raise OverflowError("the queue is full")
        return await future

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            while len(self._scoring) >= self._threads or not self._drop_abandoned():
                self._wake.clear()
                await self._wake.wait()
            batch = await self._collect(loop)
            self._scored += len(batch)
            task = loop.create_task(self._score(loop, batch))
            self._scoring.add(task)
            task.add_done_callback(functools.partial(self._freed, size=len(batch)))

    def _freed(self, task: asyncio.Task, size: int) -> None:
        """A thread is free again: the batch on it is answered."""
        self._scoring.discard(task)
        self._scored -= size
        self._wake.set()

    def _drop_abandoned(self) -> bool:
        """Drop the queued requests whose caller stopped waiting (timed out, went away); True if any remain."""
        while self._queue and self._queue[0].future.done():
            self._queue.popleft()
        return bool(self._queue)

    async def _collect(self, loop: asyncio.AbstractEventLoop) -> list[_Item]:
        self._peaks.append(self._peak)
        self._peak = self._outstanding
        # the callers not being scored on another thread, shared among the free threads
        crowd = math.ceil((max(self._peaks) - self._scored) / (self._threads - len(self._scoring)))
        batch = [self._queue.popleft()]
        rows = len(batch[0].array)
        # waiting for another request is worth at most the call it saves: a cheap model never waits
        saved = self.cost.call()
        deadline = loop.time() + (self._max_wait if saved is None else min(self._max_wait, saved))
        while rows < self._max_rows:
            if self._drop_abandoned():
                more = rows + len(self._queue[0].array)
                if more > self._max_rows or (self._budget and self.cost.of(more) > self._budget):
                    break
                batch.append(self._queue.popleft())
                rows += len(batch[-1].array)
                continue
            remaining = deadline - loop.time()
            if remaining <= 0 or (self._coming <= 0 and len(batch) >= crowd):
                break
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), remaining)
            except TimeoutError:
                break
        return batch

    async def _score(self, loop: asyncio.AbstractEventLoop, batch: list[_Item]) -> None:
        arrays = [item.array for item in batch]
        joined = arrays[0] if len(arrays) == 1 else np.concatenate(arrays)
        if self._on_batch:
            self._on_batch(len(joined), len(batch))
        try:
            outputs = await loop.run_in_executor(self._executor, self._call, joined)
        except Exception as exc:
            if len(batch) == 1:
                _settle(batch[0].future, exception=exc)
                return
            for item in batch:  # score alone, so one bad request fails alone
                await self._score(loop, [item])
            return
        start = 0
        for item in batch:
            end = start + len(item.array)
            _settle(item.future, result=outputs[start:end])
            start = end

    def _call(self, array: np.ndarray) -> np.ndarray:
        start = time.perf_counter()
        outputs = predict_rows(self._predict, array)
        self.cost.observe(len(array), time.perf_counter() - start)
        return outputs


def predict_rows(predict: Callable[[np.ndarray], Any], array: np.ndarray) -> np.ndarray:
    """`predict(array)` as an array of one prediction per row (RuntimeError when the model answers otherwise)."""
    outputs = np.asarray(predict(array))
    if outputs.ndim == 0 or len(outputs) != len(array):
        raise RuntimeError(f"the model returned {outputs.shape} for {len(array)} row(s)")
    return outputs


def _settle(future: asyncio.Future, *, result: Any = None, exception: BaseException | None = None) -> None:
    if future.done():  # the caller went away
        return
    if exception is not None:
        future.set_exception(exception)
    else:
        future.set_result(result)
