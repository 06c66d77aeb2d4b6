"""Two builds of the same model version, each from a clean cache (a new wheelhouse, no Docker layer reused),
install exactly the same files: their SBOMs are identical, and list the sha256 of every wheel."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name

from modelops import locks
from modelops.images import build, context, wheelhouse
from modelops.images.targets import targets
from modelops.scan import sbom
from modelops.workspace import Workspace


def test_two_builds_from_clean_caches_have_the_same_sbom(image_repo: Path, tmp_path: Path, docker_client,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    ws = Workspace(image_repo)
    loaded = ws.manifest(image_repo / "models" / "iris")
    (target,) = targets(loaded.manifest, ("1.0.0",))
    engine = build.client()
    platform = wheelhouse.probe(engine, ws.settings.base_image)
    documents, image_locks, built = [], [], []
    try:
        for run in ("first", "second"):
            monkeypatch.setenv("MODELOPS_CACHE", str(tmp_path / f"cache-{run}"))  # new downloads, new stripping
            house = wheelhouse.prepare(context.requirement_texts(loaded, target, ws.trust), platform, ws.reporter,
                                       separately=(context.sbom_tool_requirements(),))
            rendered = context.render(ws, loaded, target, tmp_path / f"context-{run}", wheels=house)
            image = build.build_context(engine, rendered, [f"modelops-tests/reproducible:{run}"], ws.reporter,
                                        nocache=True)
            built.append(image.id)
            documents.append(sbom.from_image(image.ref, tmp_path / f"{run}.cdx.json").read_bytes())
            image_locks.append(locks.load(rendered.path / "requirements" / "image.lock"))
        assert built[0] != built[1]  # two builds, not one cached
        assert documents[0] == documents[1]
        assert image_locks[0] == image_locks[1]

        components = {canonicalize_name(c["name"]): c for c in json.loads(documents[0])["components"]}
        assert set(components) == set(image_locks[0])  # nothing installed that is not locked, nothing missing
        for name, pin in image_locks[0].items():
            assert components[name]["version"] == pin.version
            assert {h["content"] for h in components[name]["hashes"]} == pin.hashes
        runner = locks.load(locks.RUNNER)
        assert {name: image_locks[0][name].version for name in runner} == {n: p.version for n, p in runner.items()}
    finally:
        for image_id in built:
            docker_client.images.remove(image_id, force=True)
