"""Ports and child processes for tests and benchmarks that start real servers."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def local_address() -> str:
    """A non-loopback IPv4 address of this machine (`hostname -I`), else 127.0.0.2 (Linux routes 127/8 to
    loopback): either way not 127.0.0.1, for a server that must be reached where it binds."""
    hostname = shutil.which("hostname")
    found = subprocess.run([hostname, "-I"], capture_output=True, text=True).stdout.split() if hostname else []
    return next((a for a in found if "." in a and not a.startswith("127.")), "127.0.0.2")


def stop_group(process: subprocess.Popen, timeout: float = 20) -> None:
    """Stop a process started with `start_new_session=True`, and its children, by its own group id."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def answers(url: str, process: subprocess.Popen, timeout: float) -> bool:
    """Poll `url` until it answers (a 2xx), `process` exits or `timeout` seconds pass: whether it answered."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return True
        except OSError:
            time.sleep(0.2)
    return False


def wait_for_port(port: int, timeout: float = 30) -> None:
    """Wait until something accepts connections on 127.0.0.1:`port`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")
