"""Provenance against a real engine, registry and MLflow: apply --build --push attaches it, verify checks it,
and tampering (another provenance, a re-tagged image, a relabelled image) is refused, located."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelops.images import oci, provenance
from tests.conftest import ROOT, run_cli
from tests.images import harness
from tests.scan.conftest import SAFETY_DB

MODEL = "iris-proba"


@pytest.fixture(scope="module")
def pushed(tmp_path_factory: pytest.TempPathFactory, registries: dict, base_image: str) -> Iterator[dict]:
    """iris-proba (1.0.0 and 1.1.0, production serving 1.0.0 alone) applied, built and pushed once."""
    repo = tmp_path_factory.mktemp("provenance") / "repo"
    shutil.copytree(ROOT / "models" / MODEL, repo / "models" / MODEL)
    for name in ("templates", "keys"):
        shutil.copytree(ROOT / name, repo / name)
    shutil.copyfile(ROOT / "pyproject.toml", repo / "pyproject.toml")
    manifest = repo / "models" / MODEL / "model.yaml"
    manifest.write_text(manifest.read_text().replace("    shadow: [1.1.0]\n", ""))
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "models"]):
        subprocess.run(git + args, check=True)
    registry = registries["plain"]
    env = {"MODELOPS_IMAGE_REGISTRY": f"{registry.address}/models", "MODELOPS_BASE_IMAGE": base_image,
           "MODELOPS_CACHE": str(repo.parent / "cache"), "MODELOPS_SIGNING_REQUIRE": "off"}
    applied = run_cli("apply", "--build", "--push", "--images-out", "images.json", cwd=repo, env=env, timeout=900)
    assert applied.code == 0, applied.err
    images = {i["version"]: i for i in json.loads((repo / "images.json").read_text())["images"]}
    yield {"repo": repo, "env": env, "images": images, "registry": oci.Distribution(registry.address),
           "repository": f"models/{MODEL}", "address": registry.address}
    for image in images.values():
        subprocess.run(["docker", "rmi", "--force", "--no-prune", *image["tags"]], capture_output=True, check=False)


def _verify(pushed: dict, *refs: str):
    return run_cli("verify", *refs, "--format", "json", cwd=pushed["repo"], env=pushed["env"], timeout=300)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_each_pushed_image_has_a_provenance_that_verify_accepts(pushed: dict) -> None:
    repo, images, registry = pushed["repo"], pushed["images"], pushed["registry"]
    assert set(images) == {"1.0.0", "1.1.0"}
    commit = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True,
                            check=True).stdout.strip()
    image = images["1.0.0"]
    written = json.loads((repo / "build" / "images" / f"{MODEL}-1.0.0.provenance.json").read_text())
    assert written["_type"] == provenance.STATEMENT and written["predicateType"] == provenance.PREDICATE
    assert written["subject"] == [{"name": image["ref"].rsplit(":", 1)[0],
                                   "digest": {"sha256": image["digest"].removeprefix("sha256:")}}]
    definition = written["predicate"]["buildDefinition"]
    assert definition["externalParameters"] == {"model": MODEL, "version": "1.0.0", "versions": ["1.0.0"],
                                                "environments": [], "tags": image["tags"]}
    by_name = {d["name"]: d for d in definition["resolvedDependencies"]}
    assert by_name["repository"]["digest"] == {"gitCommit": commit}
    assert by_name["manifest"]["digest"]["sha256"] == _sha256(repo / "models" / MODEL / "model.yaml")
    assert by_name["artifact 1.0.0"]["digest"]["sha256"] == \
        "e5b117a8086fb776cc72cd7f59f0280aa055182077e3000a765c2f0b035a37c1"
    assert by_name["base image"]["uri"] == f"docker-image://{pushed['env']['MODELOPS_BASE_IMAGE']}"
    wheels = sorted((repo / "build" / "images" / f"{MODEL}-1.0.0" / "wheels").glob("*.whl"))
    assert {w.name: by_name[w.name]["digest"]["sha256"] for w in wheels} == {w.name: _sha256(w) for w in wheels}
    assert any(w.name.startswith("scikit_learn-") for w in wheels)

    # in the registry: an artifact referring to the image, listed by the referrers tag schema
    (listed,) = registry.referrers(pushed["repository"], image["digest"])
    assert listed["digest"] == image["provenance"] and listed["artifactType"] == provenance.ARTIFACT_TYPE
    held = provenance.read(registry, pushed["repository"], listed)
    assert held.pop("_manifest")["subject"]["digest"] == image["digest"]
    assert held == written
    index = registry.manifest(pushed["repository"], oci.fallback_tag(image["digest"]))
    assert index is not None and index[1] == oci.INDEX

    # MLflow records it next to the image
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{repo / '.modelops' / 'mlflow.db'}")
    (version,) = [v for v in client.search_model_versions(f"name='{MODEL}'") if v.tags["modelops.version"] == "1.0.0"]
    assert version.tags["modelops.provenance"] == f"{image['ref'].rsplit(':', 1)[0]}@{image['provenance']}"
    assert version.tags["modelops.image"] == f"{image['ref']}@{image['digest']}"

    verified = _verify(pushed, images["1.0.0"]["ref"], images["1.1.0"]["tags"][1])
    assert verified.code == 0, verified.err
    results = json.loads(verified.out)["verified"]
    assert [(r["digest"], r["provenance"]) for r in results] == \
        [(images[v]["digest"], [images[v]["provenance"]]) for v in ("1.0.0", "1.1.0")]
    assert results[0]["packages"] >= 30


def test_the_image_sbom_gives_each_package_the_sha256_of_its_wheel(pushed: dict) -> None:
    image, repo = pushed["images"]["1.0.0"], pushed["repo"]
    out = subprocess.run(["docker", "run", "--rm", "--network", "none", "--entrypoint", "cat", image["ref"],
                          "/opt/venv/sbom.cdx.json"], capture_output=True, check=True).stdout
    components = {c["name"].lower(): c for c in json.loads(out)["components"]}
    (wheel,) = (repo / "build" / "images" / f"{MODEL}-1.0.0" / "wheels").glob("scikit_learn-*.whl")
    assert components["scikit-learn"]["hashes"] == [{"alg": "SHA-256", "content": _sha256(wheel)}]
    assert all(c.get("hashes") for c in components.values())


def test_apply_again_attaches_nothing_new(pushed: dict) -> None:
    again = run_cli("apply", "--build", "--push", cwd=pushed["repo"], env=pushed["env"], timeout=600)
    assert again.code == 0, again.err
    assert "(unchanged)" in again.err and "nothing new" in again.out, again.err
    image = pushed["images"]["1.0.0"]
    assert [d["digest"] for d in pushed["registry"].referrers(pushed["repository"], image["digest"])] == \
        [image["provenance"]]


def test_scan_reads_the_sboms_of_the_built_images(pushed: dict) -> None:
    scanned = run_cli("scan", "--db", str(SAFETY_DB), "--images", "images.json", "--format", "json",
                      cwd=pushed["repo"], env=pushed["env"])
    assert scanned.code == 0, scanned.err
    report = json.loads(scanned.out)
    assert sorted(report["targets"]) == sorted(f"image {i['ref'].rsplit(':', 1)[0]}@{i['digest']}"
                                               for i in pushed["images"].values())


def test_an_unknown_image_or_reference_is_one_clear_error(pushed: dict) -> None:
    missing = _verify(pushed, f"{pushed['address']}/models/{MODEL}:9.9.9")
    assert missing.code == 1 and "the registry has no image" in missing.err and "Traceback" not in missing.err
    bad = _verify(pushed, "iris-proba:1.0.0")
    assert bad.code == 1 and "is not an image reference of a registry" in bad.err


def _retag(docker_client, source: str, ref: str) -> None:
    repository, tag = ref.rsplit(":", 1)
    docker_client.images.get(source).tag(repository, tag)
    for event in docker_client.api.push(repository, tag=tag, stream=True, decode=True):
        assert "error" not in event, event


def test_a_retagged_image_is_refused(pushed: dict, docker_client) -> None:
    images = pushed["images"]
    try:
        _retag(docker_client, images["1.1.0"]["ref"], images["1.0.0"]["ref"])
        refused = _verify(pushed, images["1.0.0"]["ref"])
        assert refused.code == 1, refused.out
        assert f"{images['1.0.0']['ref']}: tag: the tag 1.0.0 names the image of {MODEL} 1.1.0" in refused.err
        assert f"mlflow.image: MLflow records {images['1.0.0']['ref']}@{images['1.0.0']['digest']}" in refused.err
        assert "Traceback" not in refused.err
    finally:
        _retag(docker_client, images["1.0.0"]["id"], images["1.0.0"]["ref"])


def test_a_relabelled_image_disagrees_with_its_provenance(pushed: dict, docker_client) -> None:
    image, registry, repository = pushed["images"]["1.0.0"], pushed["registry"], pushed["repository"]
    forged = "0" * 64
    dockerfile = f"FROM {image['id']}\nLABEL io.modelops.model.artifact.sha256={forged}\n".encode()
    relabelled, _ = docker_client.images.build(fileobj=io.BytesIO(dockerfile), network_mode="none", rm=True)
    try:
        _retag(docker_client, relabelled.id, image["ref"])
        digest = registry.resolve(oci.parse(image["ref"])).digest
        # the original provenance, copied onto the relabelled image
        statement = json.loads((pushed["repo"] / "build" / "images" / f"{MODEL}-1.0.0.provenance.json").read_text())
        statement["subject"][0]["digest"]["sha256"] = digest.removeprefix("sha256:")
        subject = registry.resolve(oci.Reference(registry.host, repository, digest=digest))
        registry.attach(repository, subject, json.dumps(statement).encode(), provenance.ARTIFACT_TYPE, {})
        refused = _verify(pushed, image["ref"])
        assert refused.code == 1
        assert f"labels.io.modelops.model.artifact.sha256: the image's label is '{forged}'" in refused.err
        assert "resolvedDependencies[artifact 1.0.0]: the provenance says 'e5b117a8" in refused.err
        assert "mlflow.image" in refused.err and "mlflow.sha256" in refused.err
    finally:
        _retag(docker_client, image["id"], image["ref"])
        harness.remove_image(docker_client, relabelled.id)


def test_another_provenance_of_the_image_is_refused(pushed: dict) -> None:
    image, registry, repository = pushed["images"]["1.0.0"], pushed["registry"], pushed["repository"]
    statement = json.loads((pushed["repo"] / "build" / "images" / f"{MODEL}-1.0.0.provenance.json").read_text())
    for entry in statement["predicate"]["buildDefinition"]["resolvedDependencies"]:
        if entry["uri"].startswith("pkg:pypi/scikit-learn@"):
            entry["digest"]["sha256"] = "f" * 64
    subject = registry.resolve(oci.Reference(registry.host, repository, digest=image["digest"]))
    other = registry.attach(repository, subject, json.dumps(statement).encode(), provenance.ARTIFACT_TYPE, {})
    assert [d["digest"] for d in registry.referrers(repository, image["digest"])] == [image["provenance"],
                                                                                      other.digest]
    refused = _verify(pushed, image["ref"])
    assert refused.code == 1
    assert "sbom.scikit-learn==1.9.1: the SBOM's wheel sha256 is" in refused.err
    assert f"the provenance's {'f' * 64}" in refused.err and "Traceback" not in refused.err
