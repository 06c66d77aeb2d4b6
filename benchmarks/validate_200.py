"""`modelops validate --offline` over 200 generated models (goal: under 5 s).

Copies models/iris 200 times under new names in a temporary repository and times the real CLI.
Run: .venv/bin/python benchmarks/validate_200.py
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COUNT = 200
GOAL_SECONDS = 5.0


def make_repo(target: Path, count: int) -> None:
    source = ROOT / "models" / "iris"
    for i in range(count):
        name = f"iris-{i:03d}"
        folder = target / "models" / name
        shutil.copytree(source, folder)
        manifest = folder / "model.yaml"
        manifest.write_text(manifest.read_text().replace("name: iris", f"name: {name}", 1))


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp)
        make_repo(repo, COUNT)
        env = {**os.environ, "MODELOPS_ROOT": str(repo)}
        timings = []
        for _ in range(3):
            start = time.perf_counter()
            done = subprocess.run([sys.executable, "-m", "modelops", "validate", "--offline"], cwd=repo, env=env,
                                  capture_output=True, text=True, check=False)
            timings.append(time.perf_counter() - start)
            if done.returncode != 0:
                print(done.stderr[-2000:])
                return 1
    best = min(timings)
    verdict = "met" if best < GOAL_SECONDS else "MISSED"
    print(f"validate --offline, {COUNT} models: best {best:.2f} s of {len(timings)} runs "
          f"(median {sorted(timings)[1]:.2f} s); goal < {GOAL_SECONDS:.0f} s: {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
