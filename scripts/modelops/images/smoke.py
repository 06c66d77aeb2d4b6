"""Smoke-test a runner image: run it, wait for /ready, score its own example, check, always remove it.

The container uses the host's network (engines here may have no bridge) on a free port of 127.0.0.1,
set through the image's own settings (PORT, MODELOPS_HOST), so the image's command runs unchanged.
"""

from __future__ import annotations

import contextlib
import io
import json
import secrets
import signal
import socket
import tarfile
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

from modelops.errors import ModelopsError
from modelops.images.context import MODEL_DIR
from modelops.manifest.loading import LoadedManifest
from modelops.manifest.loading import load as load_manifest
from modelops.manifest.model import MANIFEST
from modelops.reporter import Reporter
from modelops.signature.compare import differences
from modelops.signature.compiled import CompiledSignature

ROOT_USERS = ("", "0", "root", "0:0", "root:root")


@dataclass
class SmokeResult:
    """What a passing smoke test saw."""

    ref: str
    served_by: str
    rows: int
    seconds_to_ready: float
    user: str

    def to_json(self) -> dict:
        return asdict(self)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _read_model(container, into: Path) -> LoadedManifest:
    """Copy /model/model.yaml and the example out of the container and load the manifest."""
    stream, _ = container.get_archive(MODEL_DIR)
    with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as archive:
        for member in archive.getmembers():
            if member.isfile() and member.name.count("/") == 1 and member.name.endswith((".yaml", ".json")):
                (into / Path(member.name).name).write_bytes(archive.extractfile(member).read())
    if not (into / MANIFEST).is_file():
        raise ModelopsError(f"the image has no {MODEL_DIR}/{MANIFEST}", hint="build it with modelops build")
    return load_manifest(into, into)


def _request(url: str, body: bytes | None = None, timeout: float = 10) -> tuple[int, dict, bytes]:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"} if body else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def _wait_ready(container, base: str, deadline: float) -> None:
    while time.monotonic() < deadline:
        container.reload()
        if container.status in ("exited", "dead"):
            raise ModelopsError(f"the container stopped before it was ready:\n{_logs(container)}",
                                hint="the runner could not start; its log is above")
        try:
            if _request(f"{base}/ready", timeout=2)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.25)
    raise ModelopsError(f"not ready in time:\n{_logs(container)}", hint="raise --timeout, or read the log above")


def _logs(container) -> str:
    text = container.logs(tail=20).decode(errors="replace").rstrip()
    return "\n".join(f"    {line}" for line in text.splitlines()) or "    (no output)"


def _columns(predictions: list, names: list[str]) -> list:
    """Predictions as rows of values in signature order (records, rows or scalars)."""
    if predictions and isinstance(predictions[0], dict):
        return [[row.get(name) for name in names] for row in predictions]
    return predictions


def _check(loaded: LoadedManifest, status: int, headers: dict, body: bytes) -> str:
    """Check the answer to the example against the signature and its outputs; the version that served it."""
    if status != 200:
        raise ModelopsError(f"scoring the example answered {status}: {body[:500].decode(errors='replace')}")
    signature = CompiledSignature(loaded.manifest.signature.inputs, loaded.manifest.signature.outputs)
    predictions = json.loads(body).get("predictions")
    example = json.loads((loaded.folder / loaded.manifest.example).read_text())
    outputs = signature.outputs or []
    rows = _columns(predictions, [c.name for c in outputs]) if isinstance(predictions, list) else predictions
    problems = signature.check_outputs(rows, len(example["inputs"]))
    if problems:
        raise ModelopsError("the answer does not fit the signature: " + "; ".join(problems))
    if mismatches := differences(rows, example.get("outputs") or [], outputs):
        i, name, got, want = mismatches[0]
        raise ModelopsError(f"row {i}: {name} is {got!r}, the example expects {want!r}",
                            hint="the image serves an artifact that disagrees with example.json")
    return headers.get("X-Model-Version") or headers.get("x-model-version") or "?"


def smoke(engine, ref: str, reporter: Reporter, timeout: float = 120) -> SmokeResult:
    """Run `ref`, score its example and check the answer; the container is removed in every case."""
    import docker.errors

    try:
        config = engine.api.inspect_image(ref)["Config"]
    except docker.errors.ImageNotFound:
        raise ModelopsError(f"no image {ref} in the Docker engine", hint="build it first: modelops build") from None
    user = config.get("User") or ""
    if user in ROOT_USERS:
        raise ModelopsError(f"{ref} runs as root", hint="the template must set a non-root USER")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    main = threading.current_thread() is threading.main_thread()
    # SIGTERM and SIGINT clean up as Ctrl-C does, even when started with SIGINT ignored (in the background,
    # as CI runs it); signal handlers can only be set from the main thread
    stops = (signal.SIGTERM, signal.SIGINT)
    previous = {s: signal.signal(s, signal.default_int_handler) for s in stops} if main else {}
    name = f"modelops-smoke-{secrets.token_hex(6)}"  # removed by name: even if interrupted mid-start
    try:
        reporter.progress(f"smoke {ref}: starting on {base}")
        started = time.monotonic()
        container = engine.containers.run(ref, detach=True, network_mode="host", name=name,
                                          environment={"PORT": str(port), "MODELOPS_HOST": "127.0.0.1"})
        with tempfile.TemporaryDirectory(prefix="modelops-smoke-") as tmp:
            loaded = _read_model(container, Path(tmp))
            if not loaded.manifest.example:
                raise ModelopsError(f"{ref} has no example to score", hint="add example.json to the model")
            _wait_ready(container, base, started + timeout)
            ready = time.monotonic() - started
            rows = json.loads((loaded.folder / loaded.manifest.example).read_text())["inputs"]
            answer = _request(f"{base}/invocations", json.dumps({"dataframe_records": rows}).encode())
            served_by = _check(loaded, *answer)
        uid = container.exec_run(["python", "-c", "import os; print(os.getuid())"]).output.decode().strip()
        if uid in ("", "0"):
            raise ModelopsError(f"the runner in {ref} runs as uid {uid or '?'}", hint="set a non-root USER")
        health = config.get("Healthcheck", {}).get("Test") or []
        if health[:1] == ["CMD"] and container.exec_run(health[1:]).exit_code != 0:
            raise ModelopsError(f"the HEALTHCHECK of {ref} fails while the runner is ready")
        reporter.progress(f"smoke {ref}: ready in {ready:.1f}s, {len(rows)} rows scored by {served_by}, uid {uid}: ok")
        return SmokeResult(ref=ref, served_by=served_by, rows=len(rows), seconds_to_ready=round(ready, 2), user=uid)
    finally:
        with contextlib.suppress(docker.errors.NotFound):
            engine.api.remove_container(name, force=True)
        for number, handler in previous.items():
            signal.signal(number, handler)
