"""Image size: our runner images (per-layer) beside MLflow's `generate-dockerfile` image, same model and base;
and the diabetes RandomForest's image served compiled to ONNX (models/diabetes-compiled) beside its scikit-learn one.

Run: .venv/bin/python benchmarks/image_size.py   (needs root or a Docker engine; builds the local base)

MLflow's generated Dockerfile is adapted only where this machine forces it (no image hub, no network
inside builds): FROM becomes the same local base as ours; its nginx apt-get lines are dropped (no Debian
mirror inside a build, so MLflow's image is measured *smaller* than it really is); a venv is created
first (the Debian base has no pip) and pip reads the same kind of wheelhouse as ours, served over HTTP
on 127.0.0.1 (PIP_NO_INDEX/PIP_FIND_LINKS), with the build on the host network. Everything else is as
MLflow wrote it. The wheelhouse holds mlflow, the model's own MLflow requirements and build dependencies,
and `gunicorn[gevent]`, which MLflow's container code installs at build time. That wheelhouse is served as
pip downloaded it: our images' wheels are stripped on the host when a context is rendered
(modelops.images.wheel_strip), MLflow's are not, and nothing is removed from MLflow's image (its Dockerfile does
neither).
"""

from __future__ import annotations

import functools
import http.server
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from tests.images import harness  # noqa: E402

from modelops.commands.output import TerminalReporter as Printer  # noqa: E402
from modelops.images import build, wheelhouse  # noqa: E402
from modelops.images.targets import targets  # noqa: E402
from modelops.workspace import Workspace  # noqa: E402

MB = 1e6


def ours(root: Path, model: str) -> tuple[str, int]:
    ws = Workspace(root)
    loaded = ws.manifest(root / "models" / model)
    target = targets(loaded.manifest, (loaded.manifest.versions[0].version,))[0]
    (image,) = build.build(ws, loaded, [target])
    return image.id, image.size


def layers(engine, image_id: str) -> list[tuple[int, str]]:
    rows = []
    for entry in engine.api.history(image_id):
        if entry["Size"]:
            command = entry["CreatedBy"].replace("/bin/sh -c #(nop) ", "").replace("/bin/sh -c ", "RUN ")
            command = re.sub(r"(dir|file):[0-9a-f]{64}", r"\1", re.sub(r"\s+", " ", command)).strip()
            rows.append((entry["Size"], command[:70] if entry["CreatedBy"] else "(base image)"))
    return rows


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


def mlflow_image(engine, base: str, model_dir: Path) -> int:
    work = Path(tempfile.mkdtemp(prefix="mlflow-dockerfile-"))
    try:
        env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
        subprocess.run([sys.executable, "-m", "mlflow", "models", "generate-dockerfile", "-m", str(model_dir),
                        "-d", str(work / "ctx"), "--env-manager", "local"], check=True, env=env,
                       capture_output=True)
        dockerfile = (work / "ctx" / "Dockerfile").read_text()
        version = re.search(r"pip install (mlflow==\S+)", dockerfile).group(1)
        python_env = yaml.safe_load((model_dir / "python_env.yaml").read_text())
        wanted = [f"{version}\ngunicorn[gevent]\n", "\n".join(python_env["build_dependencies"]) + "\n",
                  (model_dir / "requirements.txt").read_text()]
        house = wheelhouse.prepare(wanted, wheelhouse.probe(engine, base), Printer())
        handler = functools.partial(_QuietHandler, directory=str(house))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        adapted = re.sub(r"^FROM .*$", f"FROM {base}\nRUN python3 -m venv /opt/venv\n"
                         f"ENV PATH=/opt/venv/bin:$PATH PIP_NO_INDEX=1 PIP_FIND_LINKS={url}",
                         dockerfile, count=1, flags=re.M)
        adapted = re.sub(r"^RUN printf[^\n]*(\n\s+[^\n]*)*\n", "", adapted, flags=re.M)
        adapted = re.sub(r"^RUN apt-get[^\n]*\n", "", adapted, flags=re.M)
        (work / "ctx" / "Dockerfile").write_text(adapted)
        print("adapted MLflow Dockerfile:\n" + adapted)
        try:
            events = engine.api.build(path=str(work / "ctx"), tag="modelops-bench/mlflow:latest",
                                      network_mode="host", rm=True, forcerm=True, pull=False, decode=True)
            image_id = build._stream(events, Printer())
        finally:
            server.shutdown()
        return engine.api.inspect_image(image_id)["Size"]
    finally:
        shutil.rmtree(work, ignore_errors=True)


def measure() -> None:
    base = harness.base_image()
    os.environ["MODELOPS_BASE_IMAGE"] = base
    os.environ.setdefault("MODELOPS_IMAGE_REGISTRY", "modelops-bench/models")
    engine = build.client()
    base_size = engine.api.inspect_image(base)["Size"]
    print(f"base image {base}: {base_size / MB:.0f} MB\n")
    results = {}
    for model in ("iris", "diabetes", "diabetes-compiled"):
        image_id, size = ours(ROOT, model)
        results[model] = size
        print(f"{model} runner image: {size / MB:.0f} MB; layers:")
        for layer_size, command in layers(engine, image_id):
            print(f"  {layer_size / MB:8.1f} MB  {command}")
    mlflow_size = mlflow_image(engine, base, ROOT / "models" / "iris" / "artifacts" / "1.0.0")
    print("\nmodel  modelops  mlflow generate-dockerfile  ratio")
    print(f"iris   {results['iris'] / MB:6.0f} MB  {mlflow_size / MB:10.0f} MB"
          f"             {results['iris'] / mlflow_size:.3f} (goal: at most a third, DESIGN 9)")
    print(f"diabetes (RandomForest, scikit-learn + skops): {results['diabetes'] / MB:.0f} MB (goal <= 400 MB)")
    print(f"diabetes-compiled (the same RandomForest compiled to ONNX, ONNX Runtime only): "
          f"{results['diabetes-compiled'] / MB:.0f} MB (goal <= 250 MB)")


if __name__ == "__main__":
    harness.with_engine(measure)
