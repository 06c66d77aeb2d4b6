"""Time `modelops render --target kubernetes` over many models: a first render, and a second that changes nothing.

usage: python benchmarks/render_kubernetes.py [--models 200]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def make_repo(folder: Path, count: int) -> None:
    """`count` models, copies of the examples (artifacts hard-linked), named <example>-<n>."""
    shutil.copytree(ROOT / "templates", folder / "templates")
    shutil.copy(ROOT / "pyproject.toml", folder / "pyproject.toml")
    examples = sorted(p for p in (ROOT / "models").iterdir() if (p / "model.yaml").is_file())
    for n in range(count):
        example = examples[n % len(examples)]
        name = f"{example.name}-{n:03d}"
        target = folder / "models" / name
        shutil.copytree(example, target, copy_function=os.link)
        manifest = target / "model.yaml"
        text = manifest.read_text().replace(f"name: {example.name}\n", f"name: {name}\n", 1)
        manifest.unlink()  # a hard link: write a new file, not through the link
        manifest.write_text(text)


def timed(folder: Path) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "modelops", "render", "--target", "kubernetes", "--out", "deploy"],
                   cwd=folder, check=True, capture_output=True, env={**os.environ, "MODELOPS_ROOT": str(folder)})
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", type=int, default=200)
    count = parser.parse_args().models
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        make_repo(folder, count)
        first, again = timed(folder), timed(folder)
        files = sum(1 for _ in (folder / "deploy").rglob("*.yaml"))
    print(f"render --target kubernetes, {count} models, {files} files (validate --offline included)")
    print(f"  first render      {first:6.2f} s")
    print(f"  render unchanged  {again:6.2f} s")


if __name__ == "__main__":
    main()
