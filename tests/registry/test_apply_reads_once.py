"""`apply --build --push` over the example models reads each fact once: the settings, each manifest, each
artifact's digest, local or downloaded (counted by wrapping the readers, on a real Docker engine, registry,
HTTP server and embedded MLflow)."""

from __future__ import annotations

import functools
import http.server
import shutil
import subprocess
import threading
from collections import Counter
from pathlib import Path

import pytest

from modelops import artifacts, settings
from modelops.cli import cli
from modelops.manifest import safe_yaml

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


def _counting(monkeypatch: pytest.MonkeyPatch, module: object, name: str, key) -> Counter:
    """Wrap `module.name` so that each call is counted under `key(*args)`."""
    counts: Counter = Counter()
    original = getattr(module, name)

    def counted(*args, **kwargs):
        counts[key(*args)] += 1
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, counted)
    return counts


def test_apply_build_push_reads_each_manifest_setting_and_digest_once(make_repo, base_image, docker_client,
                                                                     image_registry, tmp_path, monkeypatch) -> None:
    root = make_repo()
    served = root / "models" / "diabetes" / "artifacts" / "1.0.0"  # diabetes's artifact, over HTTP
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(served)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    manifest = root / "models" / "diabetes" / "model.yaml"
    url = f"http://127.0.0.1:{server.server_address[1]}/model.skops"
    manifest.write_text(manifest.read_text().replace("uri: artifacts/1.0.0/model.skops", f"uri: {url}"))
    shutil.copytree(TEMPLATES, root / "templates")
    shutil.copyfile(TEMPLATES.parent / "pyproject.toml", root / "pyproject.toml")
    registry = f"{image_registry.address}/models"
    for name, value in {"MODELOPS_ROOT": str(root), "MODELOPS_BASE_IMAGE": base_image,
                        "MODELOPS_IMAGE_REGISTRY": registry, "MODELOPS_CACHE": str(tmp_path / "cache")}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MODELOPS_TRACKING_URI", raising=False)
    monkeypatch.chdir(root)
    parses = _counting(monkeypatch, safe_yaml, "parse", lambda data, display, *rest: display)
    tables = _counting(monkeypatch, settings, "pyproject_table", lambda root: "pyproject.toml")
    loads = _counting(monkeypatch, settings, "load", lambda root, table=None: "settings")
    digests = _counting(monkeypatch, artifacts, "digest", lambda path: path.resolve())
    try:
        assert cli.main(["apply", "--build", "--push"], standalone_mode=False) == 0
    finally:
        server.shutdown()
        for tag in subprocess.run(["docker", "images", "--format", "{{.Repository}}:{{.Tag}}", f"{registry}/*"],
                                  capture_output=True, text=True, check=False).stdout.split():
            subprocess.run(["docker", "rmi", tag], capture_output=True, check=False)

    assert parses == {"models/diabetes/model.yaml": 1, "models/iris/model.yaml": 1}
    assert tables == {"pyproject.toml": 1} and loads == {"settings": 1}
    local = {(root / "models" / "iris" / "artifacts" / version).resolve() for version in ("1.0.0", "1.1.0", "1.2.0")}
    downloaded = set(digests) - local
    assert local <= set(digests) and len(downloaded) == 1 and downloaded.pop().name == "model.skops"
    assert set(digests.values()) == {1}  # each once: the download too, though it was registered and built
