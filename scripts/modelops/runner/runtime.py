"""The serving state of one app: loaded versions, their batchers, routing, shadow, metrics and settings.

`Runtime.score` is the request path shared by every protocol: route, read the body (bounded), let the
protocol parse it into one array (a `SignatureError` is a 400), predict through the version's batcher,
mirror to the shadows, record the payload (when the environment asks for it). Responses are counted by
`counting.py`, around the whole app.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
from starlette.requests import Request

from modelops.errors import ModelopsError
from modelops.runner import logs, payloads
from modelops.runner.batching import Batcher
from modelops.runner.http import RequestError
from modelops.runner.loading import LoadFailed, ServedModel, load_version, warm_up_rows
from modelops.runner.metrics import Metrics
from modelops.runner.routing import Router, Shadow
from modelops.signature.compiled import SignatureError
from modelops.signature.probabilities import DEFAULT_TOLERANCE

log = logging.getLogger("modelops.runner")


@dataclass(frozen=True, slots=True)
class Parsed:
    """A request body as its protocol parsed it: the rows to score, and what its answer needs (v2: id, outputs)."""

    array: np.ndarray
    reply: Any = None


Parser = Callable[[bytes, str | None], Parsed]


# the settings for which 0 means "none" (no wait, no timeout, no bound, exact agreement); others must be positive
_ZERO_ALLOWED = {"batch_wait_ms", "batch_budget_ms", "shadow_tolerance", "request_timeout_s", "max_in_flight",
                 "predict_threads"}


@dataclass(frozen=True)
class RunnerSettings:
    """Runner settings; each can be set by an environment variable MODELOPS_<NAME in upper case>."""

    max_body_bytes: int = 8 * 1024 * 1024
    batch_wait_ms: float = 2.0
    batch_budget_ms: float = 20.0  # the predicted cost of one predict call a batch stays within; 0: no budget
    max_batch_rows: int = 65536  # a cap on a batch's rows (its memory); the budget bounds it first
    predict_threads: int = 0  # per version and worker; 0: a worker's share of the CPUs, less one (at least 1)
    shadow_queue: int = 64
    shadow_tolerance: float = DEFAULT_TOLERANCE  # probabilities: the largest difference a shadow agrees within
    request_key_header: str = "X-Request-Key"
    payload_dir: str = ""  # the folder of file payload sinks (deployments.<env>.payloads.sink)
    api_keys_file: str = ""  # a file of API keys, one per line (keys: runner/keys.py)
    request_timeout_s: float = 30.0  # 0: none
    max_in_flight: int = 100  # scoring requests per worker; 0: no bound
    max_header_bytes: int = 64 * 1024
    max_header_count: int = 100
    header_timeout_s: float = 10.0
    idle_timeout_s: float = 75.0
    shutdown_grace_s: float = 40.0  # more than request_timeout_s and the closing (runner/shutdown.py)

    @classmethod
    def from_env(cls, **overrides: object) -> RunnerSettings:
        """Defaults, then MODELOPS_* variables, then the non-None `overrides`."""
        values: dict[str, object] = {}
        for f in fields(cls):
            raw = os.environ.get(f"MODELOPS_{f.name.upper()}")
            if raw is not None:
                kind = type(f.default)
                try:
                    values[f.name] = value = kind(raw)
                except ValueError:
                    raise ModelopsError(f"MODELOPS_{f.name.upper()}={raw!r} is not a valid {kind.__name__}",
                                        hint=f"the default is {f.default!r}") from None
                least = 0 if f.name in _ZERO_ALLOWED else 1e-9
                if kind in (int, float) and not (math.isfinite(value) and value >= least):
                    raise ModelopsError(f"MODELOPS_{f.name.upper()}={raw!r} is out of range: it must be "
                                        f"{'0 or more' if least == 0 else 'more than 0'}",
                                        hint=f"the default is {f.default!r}") from None
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]


class Runtime:
    """Loads the served model's versions in the background and scores requests once they are all loaded."""

    def __init__(self, served: ServedModel, settings: RunnerSettings) -> None:
        self.served = served
        self.settings = settings
        self.signature = served.signature
        self.metrics = Metrics(served.model)
        self.router = Router(served.primary, served.canary, served.weight)
        self.batchers: dict[str, Batcher] = {}
        self.shadow: Shadow | None = None
        self.payloads = payloads.create(served, settings.payload_dir, self.metrics.registry)
        self.ready = False
        self.problem = "the model is loading"
        self.on_ready: list[Callable[[], None]] = []  # called once every version is loaded, before ready
        self._loading: asyncio.Task | None = None

    @property
    def versions(self) -> list[str]:
        return list(self.served.loaders)

    async def start(self) -> None:
        if self.payloads:
            self.payloads.start()
        self._loading = asyncio.get_running_loop().create_task(self._load())

    async def stop(self) -> None:
        if self._loading and not self._loading.done():
            self._loading.cancel()
        for batcher in self.batchers.values():
            await batcher.stop()
        if self.payloads:
            await asyncio.get_running_loop().run_in_executor(None, self.payloads.stop, payloads.FLUSH_S)

    def shut(self) -> None:
        """Not ready from now on (the process is shutting down), even if loading was still under way."""
        if self._loading:
            self._loading.cancel()
        self.ready, self.problem = False, "shutting down"
        self.metrics.ready_model.set(0)

    async def _load(self) -> None:
        try:
            predictors = await asyncio.get_running_loop().run_in_executor(None, self._load_all)
        except LoadFailed as exc:
            self.problem = str(exc)
            log.error("not ready: %s", self.problem)
            return
        wait = self.settings.batch_wait_ms / 1000
        for version, predictor in predictors.items():
            shadow = version in self.served.shadows
            batcher = Batcher(predictor.predict, version, max_wait=wait, max_rows=self.settings.max_batch_rows,
                              limit=self.settings.shadow_queue if shadow else 0,
                              threads=1 if shadow else max(self.settings.predict_threads, 1),
                              budget=self.settings.batch_budget_ms / 1000,
                              on_batch=self._batch_observer(version))
            batcher.start()
            self.batchers[version] = batcher
        if self.served.shadows:
            tolerance = self.settings.shadow_tolerance if self.signature.probabilities else None
            self.shadow = Shadow({v: self.batchers[v] for v in self.served.shadows}, self.metrics, tolerance)
        for hook in self.on_ready:
            hook()
        self.ready, self.problem = True, ""
        self.metrics.ready_model.set(1)
        log.info("ready: %s", self.served.describe())

    def _batch_observer(self, version: str) -> Callable[[int, int], None]:
        rows, requests = self.metrics.batch_rows.labels(version), self.metrics.batch_requests.labels(version)

        def observe(n_rows: int, n_requests: int) -> None:
            rows.observe(n_rows)
            requests.observe(n_requests)
        return observe

    def _load_all(self) -> dict:
        """Fetch, verify, load and warm up every version (scoring the example); raise LoadFailed."""
        example = warm_up_rows(self.served)
        return {version: load_version(self.served, version, example) for version in self.served.loaders}

    def batcher(self, version: str) -> Batcher:
        """The version's batcher; 503 until the versions are loaded (or when they cannot be). While the process
        shuts down, the requests already admitted are still scored (the admission refuses new ones)."""
        batcher = self.batchers.get(version)
        if batcher is None:
            raise RequestError(f"not ready: {self.problem}", "", 503)
        return batcher

    async def read_body(self, request: Request) -> bytes:
        """The request body, refused with 413 past `max_body_bytes` and 415 when it is compressed."""
        encoding = request.headers.get("content-encoding", "identity").strip().lower()
        if encoding != "identity":
            raise RequestError(f"Content-Encoding {encoding!r} is not supported; send the body uncompressed",
                               "Content-Encoding", 415)
        limit = self.settings.max_body_bytes
        length = request.headers.get("content-length", "")
        if length.isdigit() and int(length) > limit:
            raise RequestError(f"the body has {length} bytes; the limit is {limit} (MODELOPS_MAX_BODY_BYTES)",
                               "body", 413)
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise RequestError(f"the body exceeds the limit of {limit} bytes (MODELOPS_MAX_BODY_BYTES)",
                                   "body", 413)
            chunks.append(chunk)
        return b"".join(chunks)

    async def score(self, request: Request, parse: Parser,
                    version: str | None = None) -> tuple[str, np.ndarray, Parsed]:
        """(version, predictions, the parsed request); RequestError for anything refused.

        A refusal before the model predicts names no version (the answer then carries the primary's):
        the version a request was routed to is charged only with what that version did.
        """
        start = time.perf_counter()
        routed = version is None
        if routed:
            version = self.router.choose(request.headers.get(self.settings.request_key_header))
        batcher = self.batcher(version)
        with batcher.arriving():
            body = await self.read_body(request)
            try:
                parsed = parse(body, request.headers.get("content-type"))
            except SignatureError as exc:
                raise RequestError(exc.message, exc.field) from None
            if observed := logs.current():
                observed.rows = len(parsed.array)
        try:
            outputs = self.signature.cast(await batcher.predict(parsed.array))
        except (ValueError, TypeError) as exc:
            first_line = str(exc).strip().split("\n", 1)[0]
            raise RequestError(f"the model cannot score this input: {first_line[:200]}", "", 422, version) from None
        except Exception as exc:  # its text may quote the request: it goes to the log only
            log.exception("version %s failed to score", version)
            raise RequestError(f"the model failed ({type(exc).__name__}); the server log has the details", "", 500,
                               version) from None
        if routed and self.shadow:
            self.shadow.mirror(parsed.array, outputs)
        if self.payloads:
            self.payloads.offer(version, request.headers.get(self.settings.request_key_header), parsed.array,
                                outputs, time.perf_counter() - start)
        return version, outputs, parsed
