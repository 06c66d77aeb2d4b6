"""`modelops scan --db` and the CODEOWNERS check over 200 generated models, side by side with validate.

Copies models/iris 200 times (a jinja2==3.1.2 line in every tenth) into a temporary repository and
times the real CLI: validate --offline without and with .github/CODEOWNERS (the cost of the staleness
check), codeowners --check, and scan against the local test database.
Run: .venv/bin/python benchmarks/scan_200.py
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
DB = ROOT / "tests" / "scan" / "safety-db"


def make_repo(target: Path) -> None:
    for i in range(COUNT):
        name = f"iris-{i:03d}"
        folder = target / "models" / name
        shutil.copytree(ROOT / "models" / "iris", folder)
        manifest = folder / "model.yaml"
        manifest.write_text(manifest.read_text().replace("name: iris", f"name: {name}", 1))
        if i % 10 == 0:
            with (folder / "requirements.txt").open("a") as requirements:
                requirements.write("jinja2==3.1.2\n")


def best_of(repo: Path, *args: str, expect: int = 0, runs: int = 3) -> float:
    env = {**os.environ, "MODELOPS_ROOT": str(repo)}
    timings = []
    for _ in range(runs):
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "modelops", *args], cwd=repo, env=env,
                              capture_output=True, text=True, check=False)
        timings.append(time.perf_counter() - start)
        if done.returncode != expect:
            raise SystemExit(f"modelops {' '.join(args)} exited {done.returncode}: {done.stderr[-1000:]}")
    return min(timings)


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp)
        make_repo(repo)
        plain = best_of(repo, "validate", "--offline")
        best_of(repo, "codeowners", runs=1)
        with_file = best_of(repo, "validate", "--offline")
        check = best_of(repo, "codeowners", "--check")
        scan = best_of(repo, "scan", "--db", str(DB), expect=1)
    print(f"{COUNT} models, best of 3 runs (s):")
    print(f"  validate --offline, no CODEOWNERS    {plain:6.2f}")
    print(f"  validate --offline, with CODEOWNERS  {with_file:6.2f}  (+{with_file - plain:.2f} for the check)")
    print(f"  codeowners --check                   {check:6.2f}")
    print(f"  scan --db (20 failing models)        {scan:6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
