"""`apply --build --push` over the example models reads each fact once: the settings, each manifest, each
artifact's digest (counted by wrapping the readers, on a real Docker engine, registry and embedded MLflow)."""

from __future__ import annotations

import shutil
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from modelops import artifacts, settings
from modelops.cli import cli
from modelops.manifest import safe_yaml

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"


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
        for tag in subprocess.run(["docker", "images", "--format", "{{.Repository}}:{{.Tag}}", f"{registry}/*"],
                                  capture_output=True, text=True, check=False).stdout.split():
            subprocess.run(["docker", "rmi", tag], capture_output=True, check=False)

    assert parses == {"models/diabetes/model.yaml": 1, "models/iris/model.yaml": 1}
    assert tables == {"pyproject.toml": 1} and loads == {"settings": 1}
    local = {(root / "models" / model / "artifacts" / version).resolve()
             for model, version in (("diabetes", "1.0.0/model.skops"), ("iris", "1.0.0"), ("iris", "1.1.0"),
                                    ("iris", "1.2.0"))}
    assert set(digests) == local and set(digests.values()) == {1}
