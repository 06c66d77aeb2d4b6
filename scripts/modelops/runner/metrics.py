"""Prometheus metrics of one runner: requests, errors and latency per version, batches, shadow traffic.

With several workers (`serve --workers N`), each worker writes its values to files in
PROMETHEUS_MULTIPROC_DIR and /metrics, whichever worker answers, adds up all of them.
"""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

CONTENT_TYPE = CONTENT_TYPE_LATEST
MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"
_LATENCY = (0.001, 0.0025, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
disable_created_metrics()  # no *_created series: they double the output and nobody graphs them
_SIZES = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096, 16384)


class Metrics:
    """The runner's collectors, in a registry of their own (one per app)."""

    def __init__(self, model: str) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter("modelops_requests", "Requests answered (scoring and metadata), by version, "
                                "endpoint and HTTP status", ["version", "endpoint", "code"], registry=r)
        self.latency = Histogram("modelops_request_duration_seconds", "Time to answer a request (scoring and metadata)",
                                 ["version", "endpoint"], buckets=_LATENCY, registry=r)
        self.batch_rows = Histogram("modelops_batch_rows", "Rows per predict call", ["version"],
                                    buckets=_SIZES, registry=r)
        self.batch_requests = Histogram("modelops_batch_requests", "Requests per predict call", ["version"],
                                        buckets=_SIZES[:10], registry=r)
        self.shadow_requests = Counter("modelops_shadow_requests", "Requests mirrored to a shadow version, "
                                       "by outcome (scored, error, dropped: queue full)",
                                       ["version", "outcome"], registry=r)
        self.shadow_rows = Counter("modelops_shadow_rows", "Rows a shadow version scored, by agreement "
                                   "with the version that answered", ["version", "outcome"], registry=r)
        self.ready = Gauge("modelops_ready", "1 when every routed version is loaded (in every worker)", ["model"],
                           multiprocess_mode="min", registry=r)
        self.ready_model = self.ready.labels(model)
        self._answers: dict[tuple[str, str, int], tuple] = {}

    def observe(self, version: str, endpoint: str, code: int, seconds: float) -> None:
        """Count one answer and its latency (the labelled children are looked up once, then kept)."""
        key = (version, endpoint, code)
        children = self._answers.get(key)
        if children is None:
            children = self._answers[key] = (self.requests.labels(version, endpoint, str(code)),
                                             self.latency.labels(version, endpoint))
        children[0].inc()
        children[1].observe(seconds)

    def render(self) -> bytes:
        """The exposition text: this process's collectors, or every worker's when there are several."""
        if not os.environ.get(MULTIPROCESS_DIR):
            return generate_latest(self.registry)
        from prometheus_client import multiprocess

        workers = CollectorRegistry()
        multiprocess.MultiProcessCollector(workers)
        return generate_latest(workers)
