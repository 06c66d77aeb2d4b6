"""A/B routing (weighted, sticky per request key) and shadow mirroring (off the request path)."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random

import numpy as np

from modelops.runner.batching import Batcher
from modelops.runner.metrics import Metrics
from modelops.signature.compare import same
from modelops.signature.probabilities import agreeing_probabilities

_BUCKETS = 10_000
log = logging.getLogger("modelops.runner")


def bucket(key: str) -> int:
    """A stable bucket in [0, 10000) for a request key: the same key always lands in the same bucket."""
    digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % _BUCKETS


class Router:
    """Choose the version of a request: the canary for `weight` % of keys (or of requests without one)."""

    def __init__(self, primary: str, canary: str | None = None, weight: int = 0) -> None:
        self.primary = primary
        self.canary = canary
        self._threshold = weight * _BUCKETS // 100 if canary else 0

    def choose(self, key: str | None) -> str:
        if not self._threshold:
            return self.primary
        spot = bucket(key) if key else random.randrange(_BUCKETS)
        return self.canary if spot < self._threshold else self.primary  # type: ignore[return-value]


class Shadow:
    """Mirror scored requests to shadow versions; count drops, errors and agreement, never raise."""

    def __init__(self, batchers: dict[str, Batcher], metrics: Metrics, tolerance: float | None = None) -> None:
        self._batchers = batchers
        self._metrics = metrics
        self._tolerance = tolerance  # probabilities: how far each may differ (see agreeing_rows)

    def mirror(self, inputs: np.ndarray, served: np.ndarray) -> None:
        for version, batcher in self._batchers.items():
            future = batcher.offer(inputs)
            if future is None:
                self._metrics.shadow_requests.labels(version, "dropped").inc()
                continue
            future.add_done_callback(lambda f, v=version: self._compare(v, served, f))

    def _compare(self, version: str, served: np.ndarray, future: asyncio.Future) -> None:
        if future.cancelled():
            return
        if (exc := future.exception()) is not None:
            self._metrics.shadow_requests.labels(version, "error").inc()
            log.debug("shadow %s failed: %s: %s", version, type(exc).__name__, exc)
            return
        self._metrics.shadow_requests.labels(version, "scored").inc()
        agree = agreeing_rows(served, future.result(), self._tolerance)
        self._metrics.shadow_rows.labels(version, "agree").inc(agree)
        self._metrics.shadow_rows.labels(version, "disagree").inc(len(served) - agree)


def agreeing_rows(served: np.ndarray, shadow: np.ndarray, tolerance: float | None = None) -> int:
    """How many rows the shadow predicted the same as the served version (`signature.compare.same`); with
    a `tolerance`, rows of class probabilities (`signature.probabilities.agreeing_probabilities`)."""
    if tolerance is not None:
        return agreeing_probabilities(served, shadow, tolerance)
    shadow = np.asarray(shadow)
    if served.shape != shadow.shape:
        return 0
    return int(same(served, shadow).reshape(len(served), -1).all(axis=1).sum())
