"""Servers under load, for the speed benchmarks: start one and wait until it is ready, POST a JSON body, drive
it with wrk through a Lua script, and count the CPU time its process tree spends meanwhile (from /proc)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.processes import stop_group  # noqa: E402

_TICK = os.sysconf("SC_CLK_TCK")
_LUA = """wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = [==[{body}]==]
done = function(summary, latency, requests)
  io.write(string.format("RESULT %d %d %d %f %f\\n", summary.requests, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


@contextlib.contextmanager
def server(command: list[str], port: int, log: Path, env: dict[str, str] | None = None,
           ready: str = "/ping") -> Iterator[subprocess.Popen]:
    """Start a server (`env` added to ours), wait until `ready` answers 200, stop it (and its workers) afterwards."""
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"  # mlflow execs uvicorn
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "PATH": path, **(env or {})}
    with log.open("w") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            with contextlib.suppress(OSError), urllib.request.urlopen(f"http://127.0.0.1:{port}{ready}",
                                                                      timeout=2) as response:
                if response.status == 200:
                    break
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"{command[0]} did not start; see {log}:\n{log.read_text()[-2000:]}")
            time.sleep(0.3)
        yield process
    finally:
        stop_group(process)


def post(port: int, path: str, body: str) -> Any:
    """POST a JSON body to 127.0.0.1:`port`, the parsed JSON answer."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body.encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def cpu_seconds(pid: int) -> float:
    """CPU time (user and system) of a process and all its descendants, with the children they reaped."""
    ticks = sum(int(f) for fields in _process_tree(pid).values() for f in fields[11:15])  # u s cu cs time
    return ticks / _TICK


def pss_mib(pid: int) -> float:
    """The proportional set size of a process and all its descendants (shared pages counted once), in MiB."""
    total = 0
    for process in _process_tree(pid):
        with contextlib.suppress(OSError):
            rollup = Path(f"/proc/{process}/smaps_rollup").read_text()
            total += int(re.search(r"^Pss:\s+(\d+) kB", rollup, re.M).group(1))
    return total / 1024


def _process_tree(pid: int) -> dict[int, list[str]]:
    """The /proc stat fields (after the name) of a process and all its descendants, by pid."""
    stats: dict[int, list[str]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            stats[int(entry.name)] = (entry / "stat").read_text().rsplit(")", 1)[1].split()  # the name may hold spaces
    tree, grew = {pid}, True
    while grew:
        more = {child for child, fields in stats.items() if int(fields[1]) in tree} - tree
        tree |= more
        grew = bool(more)
    return {p: stats[p] for p in tree if p in stats}


def drive(port: int, body: str, duration: int, connections: int, folder: Path, path: str = "/invocations",
          pid: int | None = None, warm: int = 2) -> dict:
    """wrk POSTing `body` to `path` (after `warm` seconds of the same load): requests/s, p50 and p99 in ms, the
    failures, and with `pid` the CPU milliseconds per request of that server's process tree."""
    script = folder / "post.lua"
    script.write_text(_LUA.replace("{body}", body))
    url = f"http://127.0.0.1:{port}{path}"
    subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{warm}s", "-s", str(script), url],
                   capture_output=True, check=True)
    before = cpu_seconds(pid) if pid else 0.0
    out = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "-s", str(script), url],
                         capture_output=True, text=True, check=True).stdout
    spent = cpu_seconds(pid) - before if pid else None
    requests, bad_status, socket_errors, p50, p99 = re.search(r"^RESULT (.*)$", out, re.M).group(1).split()
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    result = {"rps": rate, "p50": float(p50) / 1000, "p99": float(p99) / 1000, "requests": int(requests),
              "errors": int(bad_status) + int(socket_errors)}
    if spent is not None:
        result["cpu_ms"] = 1000 * spent / max(int(requests), 1)
    return result
