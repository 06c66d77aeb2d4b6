"""`modelops plan` over 200 models against a registry already in sync (goal: under 30 s).

Copies models/iris 200 times under new names (600 versions) in a temporary repository, starts a real
`mlflow server -w 1` (SQLite backend, artifacts served) on a free port, applies everything once (in a
few parallel applies over disjoint models), then times the real `modelops plan` CLI three times.
Run: .venv/bin/python benchmarks/plan_200.py
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.processes import free_port, stop_group  # noqa: E402

COUNT = 200
PARALLEL_APPLIES = 4
GOAL_SECONDS = 30.0


def make_repo(target: Path, count: int) -> list[str]:
    source = ROOT / "models" / "iris"
    names = [f"iris-{i:03d}" for i in range(count)]
    for name in names:
        folder = target / "models" / name
        shutil.copytree(source, folder)
        manifest = folder / "model.yaml"
        manifest.write_text(manifest.read_text().replace("name: iris", f"name: {name}", 1))
    return names


def start_server(work: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    mlflow = Path(sys.executable).with_name("mlflow")
    process = subprocess.Popen(
        [str(mlflow), "server", "-w", "1", "--host", "127.0.0.1", "--port", str(port), "--backend-store-uri",
         f"sqlite:///{work / 'mlflow.db'}", "--artifacts-destination", str(work / "artifacts"), "--serve-artifacts"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"})
    uri = f"http://127.0.0.1:{port}"
    for _ in range(240):
        try:
            with urllib.request.urlopen(f"{uri}/health", timeout=2):
                return process, uri
        except OSError:
            time.sleep(0.5)
    stop_group(process)
    raise SystemExit("mlflow server did not start")


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        repo, work = Path(tmp) / "repo", Path(tmp) / "server"
        work.mkdir()
        names = make_repo(repo, COUNT)
        server, uri = start_server(work)
        try:
            env = {**os.environ, "MODELOPS_ROOT": str(repo), "MLFLOW_TRACKING_URI": uri}
            start = time.perf_counter()
            applies = [subprocess.Popen([sys.executable, "-m", "modelops", "apply",
                                         *[f"models/{n}" for n in names[i::PARALLEL_APPLIES]]],
                                        cwd=repo, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                       for i in range(PARALLEL_APPLIES)]
            for process in applies:
                _, err = process.communicate()
                if process.returncode != 0:
                    print(err[-2000:])
                    return 1
            applied = time.perf_counter() - start
            timings = []
            for _ in range(3):
                start = time.perf_counter()
                done = subprocess.run([sys.executable, "-m", "modelops", "plan", "--format", "json"], cwd=repo,
                                      env=env, capture_output=True, text=True, check=False)
                timings.append(time.perf_counter() - start)
                planned = json.loads(done.stdout) if done.returncode == 0 else {}
                if done.returncode != 0 or planned.get("actions") != [] or planned.get("drift") != []:
                    print(done.stdout[-2000:], done.stderr[-2000:])
                    return 1
        finally:
            stop_group(server, timeout=30)
    best = min(timings)
    verdict = "met" if best < GOAL_SECONDS else "MISSED"
    print(f"apply (first, {COUNT} models, {3 * COUNT} versions, {PARALLEL_APPLIES} applies in parallel): "
          f"{applied:.1f} s")
    print(f"plan, {COUNT} models in sync: best {best:.2f} s of {len(timings)} runs "
          f"(median {sorted(timings)[1]:.2f} s); goal < {GOAL_SECONDS:.0f} s: {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
