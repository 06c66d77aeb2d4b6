"""CPU per request of the runner's application itself, in process: no sockets, no HTTP parser, no load generator.

Builds the app (`create_app`) of diabetes-compiled (ONNX Runtime: microseconds a call, so the runner's own
cost shows) in a child process, starts it (lifespan), then sends it scoring requests as ASGI messages, one at
a time and 8 at once, and prints the process's CPU time per request. With `--baseline REV`, the same for
that git revision's runner, side by side (each cell measured on both trees one right after the other, each
in a process of its own). What wrk measures on a 2-core machine mixes in the load generator and the
scheduler; this isolates what the runner's own code costs a request: routing, parsing, batching, answering.

    python benchmarks/runner_app_cpu.py [--baseline 61fd808] [--requests 3000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.runner_vs_mlflow import bodies, compiled_model  # noqa: E402

CHILD = """
import asyncio, json, os, sys, time
import uvloop
from modelops.runner.app import create_app
from modelops.runner.loading import resolve
from modelops.runner.runtime import RunnerSettings

model, version, path, body_file, concurrency, count = sys.argv[1:7]
body = open(body_file, "rb").read()
app = create_app(resolve(model, None, version), RunnerSettings(predict_threads=1))

async def main() -> None:
    started, lifespan = asyncio.Event(), asyncio.Queue()
    await lifespan.put({"type": "lifespan.startup"})
    async def lifespan_send(message):
        if message["type"] == "lifespan.startup.complete":
            started.set()
    asyncio.ensure_future(app({"type": "lifespan", "asgi": {"version": "3.0"}}, lifespan.get, lifespan_send))
    await started.wait()
    while not app.state.runtime.ready:
        await asyncio.sleep(0.05)
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
             "headers": [(b"host", b"bench"), (b"content-type", b"application/json"),
                         (b"content-length", str(len(body)).encode())],
             "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 2)}
    statuses = set()
    async def one() -> None:
        sent = False
        async def receive():
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            await asyncio.sleep(3600)
        async def send(message):
            if message["type"] == "http.response.start":
                statuses.add(message["status"])
        await app(dict(scope), receive, send)
    at_once, n = int(concurrency), int(count)
    for _ in range(300):
        await one()
    cpu = time.process_time()
    for _ in range(n // at_once):
        await asyncio.gather(*(one() for _ in range(at_once)))
    print(json.dumps({"us": (time.process_time() - cpu) / n * 1e6, "statuses": sorted(statuses)}), flush=True)
    os._exit(0)

uvloop.run(main())
"""


def v2_body(split: str) -> str:
    """The v2 request (one FP64 tensor per column) holding the rows of a dataframe_split body."""
    table = json.loads(split)["dataframe_split"]
    return json.dumps({"inputs": [{"name": name, "datatype": "FP64", "shape": [len(table["data"])],
                                   "data": [row[j] for row in table["data"]]}
                                  for j, name in enumerate(table["columns"])]})


def measure(scripts: Path, model: Path, path: str, body: Path, concurrency: int, count: int) -> float:
    """CPU microseconds per request of `scripts`' runner (a child process), answering 200 only."""
    done = subprocess.run([sys.executable, "-c", CHILD, str(model), "1.0.0", path, str(body), str(concurrency),
                           str(count)], capture_output=True, text=True, check=False, cwd=ROOT,
                          env={"PYTHONPATH": str(scripts), "PATH": "/usr/bin:/bin", "MLFLOW_DISABLE_TELEMETRY": "true"})
    if done.returncode != 0:
        raise SystemExit(f"the child failed:\n{done.stderr[-2000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if result["statuses"] != [200]:
        raise SystemExit(f"{path} answered {result['statuses']}")
    return result["us"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", help="a git revision whose runner is measured beside this tree's")
    parser.add_argument("--requests", type=int, default=3000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="runner-cpu-") as tmp:
        folder = Path(tmp)
        model = compiled_model(folder)  # ONNX Runtime: microseconds a call, so the runner's own cost shows
        files = {}
        for rows, split in bodies().items():
            for protocol, text in (("invocations", split), ("v2", v2_body(split))):
                files[protocol, rows] = folder / f"{protocol}-{rows}.json"
                files[protocol, rows].write_text(text)
        sides = {"this tree": ROOT / "scripts"}
        if args.baseline:
            checkout = folder / "baseline"
            subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(checkout),
                            args.baseline], check=True)
            sides = {args.baseline: checkout / "scripts", **sides}
        paths = {"invocations": "/invocations", "v2": "/v2/models/diabetes-compiled/infer"}
        try:
            print(f"\nCPU per request of the runner's app, in process (diabetes-compiled, ONNX Runtime), "
                  f"{args.requests} requests each\n")
            print(f"{'request':<32}" + "".join(f"{name:>16}" for name in sides) + ("   ratio" if args.baseline else ""))
            for (protocol, rows), body in files.items():
                for concurrency in (1, 8):
                    cells = [measure(scripts, model, paths[protocol], body, concurrency, args.requests)
                             for scripts in sides.values()]
                    label = f"{protocol} {rows} row{'s' if rows > 1 else ''}, {concurrency} at once"
                    ratio = f"{cells[0] / cells[-1]:>8.2f}" if args.baseline else ""
                    print(f"{label:<32}" + "".join(f"{us:>13.0f} us" for us in cells) + ratio, flush=True)
        finally:
            if args.baseline:
                subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(checkout)], check=False)


if __name__ == "__main__":
    main()
