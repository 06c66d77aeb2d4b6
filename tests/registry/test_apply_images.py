"""`apply --build --push` against a real `mlflow server`, Docker engine and `docker-registry`; `plan --images`."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from mlflow import MlflowClient

from tests.images import harness
from tests.registry.helpers import free_port, run, snapshot

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"


def _image_tags(state: dict) -> dict[str, str]:
    """Every modelops.image* tag of one model: on the model, and per version as `<version> modelops.image`."""
    found = {k: v for k, v in state["tags"].items() if k.startswith("modelops.image")}
    for semver, _, tags in state["versions"]:
        found |= {f"{semver} {k}": v for k, v in tags if k.startswith("modelops.image")}
    return found


def test_plan_lists_images_only_when_asked_or_managed(make_repo) -> None:
    root = make_repo(iris="iris")
    assert "go with --build" in run(root, "apply", "--push", check=2).stderr
    run(root, "apply")
    assert "no changes" in run(root, "plan", "--detailed-exitcode").stdout  # registry-only: still in sync

    env = {"MODELOPS_IMAGE_REGISTRY": "registry.example.com/models"}
    text = run(root, "plan", "--images", "--detailed-exitcode", env=env, check=2).stdout
    assert "build image registry.example.com/models/iris:1.0.0_1.1.0_1.2.0 for production (no image recorded)" \
        in text
    assert "build image registry.example.com/models/iris:1.2.0 for staging (no image recorded)" in text
    actions = json.loads(run(root, "plan", "--images", "--format", "json", env=env).stdout)["actions"]
    assert [(a["kind"], a["version"], a.get("envs", [])) for a in actions] == [
        ("build-image", "1.0.0", []), ("build-image", "1.1.0", []), ("build-image", "1.2.0", ["staging"]),
        ("build-image", "1.0.0_1.1.0_1.2.0", ["production"])]
    markdown = run(root, "plan", "--images", "--format", "markdown", env=env).stdout
    assert "| iris | build-image | 1.0.0_1.1.0_1.2.0 (production) |  | registry.example.com/models/iris:" in markdown

    # Images recorded as an earlier apply --build --push left them, before production gained its canary
    # and shadow: plan now lists images by default, and only production's, which names other versions.
    uri = f"sqlite:///{root / '.modelops' / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    refs = {v: f"registry.example.com/models/iris:{v}@sha256:{str(i) * 64}" for i, v in
            enumerate(("1.0.0", "1.1.0", "1.2.0"), 1)}
    for version in client.search_model_versions("name = 'iris'"):
        client.set_model_version_tag("iris", version.version, "modelops.image", refs[version.tags["modelops.version"]])
    client.set_registered_model_tag("iris", "modelops.image.staging", refs["1.2.0"])
    client.set_registered_model_tag("iris", "modelops.image.production", refs["1.0.0"])
    stale = run(root, "plan", "--detailed-exitcode", env=env, check=2).stdout
    assert stale == ("  + build image registry.example.com/models/iris:1.0.0_1.1.0_1.2.0 for production "
                     f"(recorded: {refs['1.0.0']})\n1 action(s), 0 drift\n")
    assert "no changes" in run(root, "plan", "--no-images", "--detailed-exitcode", env=env).stdout


def test_apply_build_push_records_the_registry_digests(make_repo, mlflow_server, docker_client, base_image,
                                                       image_registry, tmp_path_factory) -> None:
    root = make_repo(**{"iris-images": "iris"})
    shutil.copytree(TEMPLATES, root / "templates")
    name, uri, address = "iris-images", mlflow_server.uri, image_registry.address
    env = {"MODELOPS_BASE_IMAGE": base_image, "MODELOPS_IMAGE_REGISTRY": f"{address}/models",
           "MODELOPS_CACHE": str(tmp_path_factory.mktemp("cache"))}
    closed = {**env, "MODELOPS_IMAGE_REGISTRY": f"127.0.0.1:{free_port()}/models"}
    local: set[str] = set()
    try:
        # A refused push registers the versions but records no image.
        failed = run(root, "apply", "--build", "--push", uri=uri, env=closed, check=1)
        local.add(f"{closed['MODELOPS_IMAGE_REGISTRY']}/{name}:1.0.0")
        assert "push of" in failed.stderr and "Traceback" not in failed.stderr
        assert "register iris-images 1.0.0" in failed.stdout
        assert _image_tags(snapshot(uri, name)[name]) == {}
        planned = run(root, "plan", "--images", "--detailed-exitcode", uri=uri, env=env, check=2).stdout
        assert planned.count("build image") == 4 and "register" not in planned

        out = root / "images.json"
        done = run(root, "apply", "--build", "--push", "--images-out", str(out), uri=uri, env=env)
        images = {i["version"]: i for i in json.loads(out.read_text())["images"]}
        local |= {tag for image in images.values() for tag in image["tags"]}
        assert sorted(images) == ["1.0.0", "1.0.0_1.1.0_1.2.0", "1.1.0", "1.2.0"]
        expected = {}
        for key, image in images.items():
            assert image["digest"] == image_registry.manifest_digest(f"models/{name}", key)
            assert image["ref"] == f"{address}/models/{name}:{key}"
            expected[key] = f"{image['ref']}@{image['digest']}"
        state = snapshot(uri, name)[name]
        assert _image_tags(state) == {
            "1.0.0 modelops.image": expected["1.0.0"], "1.1.0 modelops.image": expected["1.1.0"],
            "1.2.0 modelops.image": expected["1.2.0"], "modelops.image.staging": expected["1.2.0"],
            "modelops.image.production": expected["1.0.0_1.1.0_1.2.0"]}
        assert "recorded their digests" in done.stdout
        assert "nothing to do" in done.stdout  # the failed run registered everything already
        assert "no changes" in run(root, "plan", "--detailed-exitcode", uri=uri, env=env).stdout  # images managed

        again = run(root, "apply", "--build", "--push", "--format", "json", uri=uri, env=env)
        assert "nothing new, the registry already records these digests" in again.stderr
        applied = json.loads(again.stdout)  # what was carried out (nothing), and the images with their digests
        assert (applied["actions"], applied["recorded"], applied["drift"]) == ([], [], [])
        assert {i["version"]: f"{i['ref']}@{i['digest']}" for i in applied["images"]} == expected
        assert snapshot(uri, name)[name] == state
        # each image's provenance is recorded next to it, and verify finds the registries agree
        deployment = images["1.0.0_1.1.0_1.2.0"]
        assert state["tags"]["modelops.provenance.production"] == f"{address}/models/{name}@{deployment['provenance']}"
        verified = run(root, "verify", deployment["ref"], images["1.2.0"]["ref"], "--format", "json", uri=uri, env=env)
        assert [v["provenance"] for v in json.loads(verified.stdout)["verified"]] == \
            [[deployment["provenance"]], [images["1.2.0"]["provenance"]]]

        deploy = root / "deploy"
        run(root, "render", "--target", "kubernetes", f"models/{name}", "--images", str(out), "--out", str(deploy),
            uri=uri, env=env)
        production = (deploy / "production" / name / "deployment.yaml").read_text()
        assert f'image: "{address}/models/{name}@{images["1.0.0_1.1.0_1.2.0"]["digest"]}"' in production

        # The recorded reference pulls by digest and the image it names answers.
        ref = state["tags"]["modelops.image.production"]
        for tag in images["1.0.0_1.1.0_1.2.0"]["tags"]:
            harness.remove_image(docker_client, tag)
        subprocess.run(["docker", "pull", "-q", ref], check=True, capture_output=True, timeout=300)
        local.add(ref)
        smoked = run(root, "smoke", ref, "--format", "json", uri=uri, env=env)
        assert json.loads(smoked.stdout)["smoke"][0]["served_by"] in ("1.0.0", "1.1.0")  # main or its canary
    finally:
        for tag in local:
            subprocess.run(["docker", "rmi", tag], capture_output=True, check=False)
