"""Rebuild time: a new version of an existing model (same requirements) on a warm cache. Goal: < 15 s.

Run: .venv/bin/python benchmarks/rebuild_time.py   (needs root or a Docker engine; builds the local base)
Works on a temporary copy of models/diabetes: builds 1.0.0 (warming the cache), adds version 1.1.0 (its
artifact a copy of 1.0.0's, at its own path), then times `build` of 1.1.0 from start (render, context
upload, build) to the tagged image.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from tests.images import harness  # noqa: E402

from modelops import artifacts  # noqa: E402
from modelops.images import build  # noqa: E402
from modelops.images.targets import targets  # noqa: E402
from modelops.reporter import LineRecorder  # noqa: E402
from modelops.workspace import Workspace  # noqa: E402


def measure() -> None:
    os.environ["MODELOPS_BASE_IMAGE"] = harness.base_image()
    os.environ.setdefault("MODELOPS_IMAGE_REGISTRY", "modelops-bench/models")
    with tempfile.TemporaryDirectory(prefix="modelops-rebuild-") as tmp:
        root = Path(tmp)
        shutil.copytree(ROOT / "models" / "diabetes", root / "models" / "diabetes")
        shutil.copytree(ROOT / "templates", root / "templates")
        folder = root / "models" / "diabetes"

        def built(version: str) -> tuple[float, list[str]]:
            recorder = LineRecorder()
            ws = Workspace(root, recorder)
            loaded = ws.manifest(folder)
            started = time.perf_counter()
            build.build(ws, loaded, targets(loaded.manifest, (version,)))
            return time.perf_counter() - started, recorder.lines

        warm, _ = built("1.0.0")
        new = folder / "artifacts" / "1.1.0" / "model.skops"
        new.parent.mkdir(parents=True)
        shutil.copyfile(folder / "artifacts" / "1.0.0" / "model.skops", new)
        data = yaml.safe_load((folder / "model.yaml").read_text())
        data["versions"].append({"version": "1.1.0", "artifact": {"uri": "artifacts/1.1.0/model.skops",
                                                                  "sha256": artifacts.digest(new)}})
        (folder / "model.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
        seconds, lines = built("1.1.0")
    cached = sum(" cached " in line for line in lines)
    steps = sum(line.startswith("  ") and " from " not in line for line in lines)
    print(f"first build of 1.0.0 (cache warm from earlier runs or not): {warm:.1f} s")
    print(f"new version 1.1.0, same requirements: {seconds:.1f} s  ({cached}/{steps} steps cached; goal < 15 s)")
    print("\n".join(lines))


if __name__ == "__main__":
    harness.with_engine(measure)
