"""Payload logging (`deployments.<env>.payloads`): a sampled record of each scored request, off the request path.

The request path only samples and enqueues (a bounded queue; a full queue drops the record); one thread
writes the records to the sink: JSON lines appended to stdout or to a file under `MODELOPS_PAYLOAD_DIR`,
or two CloudEvents per request (binary mode, as KServe's logger posts them: `ce-type`
`org.kubeflow.serving.inference.request` and `.response`, one `ce-id`) to an http(s) URL. Columns the
signature marks `sensitive` are left out. `modelops_payloads_total{outcome}` counts logged, dropped and
failed (the sink refused the record or could not be reached) records.
"""

from __future__ import annotations

import base64
import logging
import os
import queue
import random
import threading
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import orjson
from prometheus_client import CollectorRegistry, Counter

from modelops.errors import ModelopsError
from modelops.manifest.model import Payloads
from modelops.runner import logs
from modelops.runner.loading import ServedModel

log = logging.getLogger("modelops.runner.payloads")
REQUEST_TYPE, RESPONSE_TYPE = "org.kubeflow.serving.inference.request", "org.kubeflow.serving.inference.response"
_TIMEOUT = 5.0  # seconds an HTTP sink may take per event
_STOP = None
FLUSH_S = 3.0  # at shutdown, the time the payload log has to write the records queued


class Sink(Protocol):
    def write(self, record: dict[str, Any]) -> None: ...

    def close(self) -> None: ...


def _default(value: Any) -> Any:
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _json(data: Any) -> bytes:
    return orjson.dumps(data, default=_default, option=orjson.OPT_SERIALIZE_NUMPY)


class Lines:
    """JSON lines appended to a file descriptor, one write per record (several workers may share a file)."""

    def __init__(self, fd: int, owned: bool) -> None:
        self.fd, self.owned = fd, owned

    def write(self, record: dict[str, Any]) -> None:
        data = memoryview(_json(record) + b"\n")
        while data:
            data = data[os.write(self.fd, data):]

    def close(self) -> None:
        if self.owned:
            os.close(self.fd)


class CloudEvents:
    """Each record as a request and a response CloudEvent (binary mode) POSTed to `url`."""

    def __init__(self, url: str, served: ServedModel) -> None:
        self.url = url
        self.served = served
        self.source = f"/modelops/{served.model}/{served.environment}"

    def write(self, record: dict[str, Any]) -> None:
        common = {"ce-specversion": "1.0", "ce-id": record["id"], "ce-source": self.source,
                  "ce-time": record["time"], "content-type": "application/json",
                  "ce-inferenceservicename": self.served.model, "ce-namespace": self.served.environment,
                  "ce-component": "predictor",
                  "ce-endpoint": "canary" if record["version"] == self.served.canary else "default",
                  "ce-modelversion": record["version"], "ce-latencyms": str(record["latency_ms"])}
        if record["request_key"] is not None:
            common["ce-requestkey"] = record["request_key"]
        for kind, body in ((REQUEST_TYPE, {"inputs": record["inputs"]}),
                           (RESPONSE_TYPE, {"outputs": record["outputs"]})):
            request = urllib.request.Request(self.url, data=_json(body), method="POST",
                                             headers={**common, "ce-type": kind})
            with urllib.request.urlopen(request, timeout=_TIMEOUT):  # an http(s) URL (the manifest's pattern)
                pass

    def close(self) -> None:
        pass


def open_sink(sink: str, served: ServedModel, folder: str) -> Sink:
    """The sink a manifest names (already checked against its pattern); a file stays inside `folder`."""
    if sink == "stdout":
        return Lines(1, owned=False)
    if sink.startswith(("http://", "https://")):
        return CloudEvents(sink, served)
    field = f"deployments.{served.environment}.payloads.sink"
    if not folder:
        raise ModelopsError(f"the payload sink {sink!r} is a file, and no payload folder is set", field=field,
                            hint="set MODELOPS_PAYLOAD_DIR to a writable folder (a mounted volume in a pod)")
    base = Path(folder).resolve()
    path = (base / sink).resolve()
    if not path.is_relative_to(base):
        raise ModelopsError(f"the payload sink {sink!r} leaves the payload folder {base}", field=field,
                            hint="name a file inside MODELOPS_PAYLOAD_DIR, with no symbolic link on the way")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o640)
    except OSError as exc:
        raise ModelopsError(f"cannot open the payload file {path}: {exc.strerror}", field=field,
                            hint="set MODELOPS_PAYLOAD_DIR to a writable folder (a mounted volume in a pod)") from None
    return Lines(fd, owned=True)


class PayloadLog:
    """Sample scored requests into a bounded queue; a thread turns them into records for the sink."""

    def __init__(self, served: ServedModel, config: Payloads, sink: Sink, registry: CollectorRegistry) -> None:
        self.served, self.sink, self.rate = served, sink, config.sample_rate
        self.queue: queue.Queue = queue.Queue(config.queue)
        counter = Counter("modelops_payloads", "Payload records by outcome: logged, dropped (queue full), "
                          "failed (the sink did not take it)", ["outcome"], registry=registry)
        self.logged, self.dropped, self.failed = (counter.labels(o) for o in ("logged", "dropped", "failed"))
        signature = served.signature
        self.inputs = [(i, c.name) for i, c in enumerate(signature.inputs) if not getattr(c, "sensitive", False)]
        self.hidden_outputs = {c.name for c in signature.outputs or () if getattr(c, "sensitive", False)}
        self.thread = threading.Thread(target=self._run, name="payloads", daemon=True)
        self._failing = False

    def start(self) -> None:
        self.thread.start()

    def stop(self, wait_s: float) -> None:
        """Let the thread write what is queued, for at most `wait_s` in all, then close the sink."""
        deadline = time.monotonic() + wait_s
        try:
            self.queue.put(_STOP, timeout=wait_s)
        except queue.Full:
            return
        self.thread.join(max(deadline - time.monotonic(), 0))

    def offer(self, version: str, request_key: str | None, inputs: np.ndarray, outputs: np.ndarray,
              seconds: float) -> None:
        """On the request path: sample, then enqueue (never block; a full queue is a counted drop)."""
        if self.rate < 1 and random.random() >= self.rate:
            return
        observed = logs.current()
        request_id = observed.id if observed else os.urandom(16).hex()
        try:
            self.queue.put_nowait((request_id, time.time(), version, request_key, inputs, outputs, seconds))
        except queue.Full:
            self.dropped.inc()

    def record(self, request_id: str, when: float, version: str, request_key: str | None, inputs: np.ndarray,
               outputs: np.ndarray, seconds: float) -> dict[str, Any]:
        """What the sink gets: the request's id, time, version, key, inputs, outputs and latency."""
        rows = inputs.tolist()
        kept = [{name: row[i] for i, name in self.inputs} for row in rows]
        scored = self.served.signature.output_records(outputs)
        if self.hidden_outputs:
            scored = [{k: v for k, v in r.items() if k not in self.hidden_outputs} for r in scored]
        return {"id": request_id, "time": datetime.fromtimestamp(when, UTC).isoformat(timespec="milliseconds"),
                "model": self.served.model, "environment": self.served.environment, "version": version,
                "request_key": request_key, "latency_ms": round(seconds * 1000, 3), "inputs": kept,
                "outputs": scored}

    def _run(self) -> None:
        while (item := self.queue.get()) is not _STOP:
            try:
                self.sink.write(self.record(*item))
            except Exception as exc:  # a sink that fails must never stop the thread
                self.failed.inc()
                if not self._failing:
                    log.warning("payload sink failed: %s: %s", type(exc).__name__, str(exc)[:200])
                self._failing = True
                continue
            self.logged.inc()
            self._failing = False
        self.sink.close()


def create(served: ServedModel, folder: str, registry: CollectorRegistry) -> PayloadLog | None:
    """The payload log of `served`'s environment; None when it declares none."""
    if served.payloads is None:
        return None
    return PayloadLog(served, served.payloads, open_sink(served.payloads.sink, served, folder), registry)
