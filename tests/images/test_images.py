"""Against a real Docker engine and registries: build -> smoke -> push -> remove -> pull -> smoke, rebuilds."""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from packaging.utils import canonicalize_name

from modelops.errors import ModelopsError
from modelops.git import commit as git_commit
from modelops.images import build, context, smoke, wheelhouse
from modelops.images.targets import targets
from modelops.manifest.loading import load as load_manifest
from modelops.reporter import LineRecorder
from modelops.scan import sbom
from modelops.workspace import Workspace
from tests.conftest import run_cli
from tests.images import harness
from tests.images.conftest import PASSWORD, USER
from tests.scan.conftest import SAFETY_DB, flagging

MB = 1_000_000


def _build(repo: Path, *args: str, env: dict | None = None) -> dict:
    result = run_cli("build", *args, "--format", "json", cwd=repo, env=env, timeout=900)
    assert result.code == 0, result.err
    return json.loads(result.out)


def test_build_smoke_push_pull_smoke(image_repo: Path, registries: dict, docker_client) -> None:
    auth = registries["auth"]
    env = {"MODELOPS_IMAGE_REGISTRY": f"{auth.address}/models"}
    (image,) = _build(image_repo, "models/diabetes", "--version", "1.0.0", env=env)["images"]
    assert image["ref"] == f"{auth.address}/models/diabetes:1.0.0" and image["digest"] is None
    assert image["size"] <= 400 * MB, f"the scikit-learn image is {image['size'] / MB:.0f} MB"
    config = docker_client.api.inspect_image(image["ref"])["Config"]
    assert config["User"] == str(context.UID)
    assert config["Labels"]["io.modelops.model.artifact.sha256"] == \
        load_manifest(image_repo / "models" / "diabetes", image_repo).manifest.versions[0].artifact.sha256

    no_pip = docker_client.containers.run(image["ref"], ["python", "-c", "import importlib.util as u; "
                                          "print(u.find_spec('pip'), u.find_spec('setuptools'))"],
                                          network_mode="none", remove=True)
    assert no_pip.decode().strip() == "None None"  # the runtime stage has no pip

    smoked = run_cli("smoke", image["ref"], "--format", "json", cwd=image_repo, timeout=300)
    assert smoked.code == 0, smoked.err
    assert json.loads(smoked.out)["smoke"][0]["served_by"] == "1.0.0"

    refused = run_cli("build", "models/diabetes", "--version", "1.0.0", "--push", cwd=image_repo, env=env)
    assert refused.code == 1 and "push of" in refused.err and "refused" in refused.err
    assert "MODELOPS_REGISTRY_USERNAME" in refused.err and "Traceback" not in refused.err

    creds = {**env, "MODELOPS_REGISTRY_USERNAME": USER, "MODELOPS_REGISTRY_PASSWORD": PASSWORD}
    (pushed,) = _build(image_repo, "models/diabetes", "--version", "1.0.0", "--push", env=creds)["images"]
    assert pushed["digest"] == auth.manifest_digest("models/diabetes", "1.0.0", (USER, PASSWORD))

    for tag in pushed["tags"]:
        harness.remove_image(docker_client, tag)
    docker_client.images.pull(f"{auth.address}/models/diabetes", tag="1.0.0",
                              auth_config={"username": USER, "password": PASSWORD})
    again = run_cli("smoke", "models/diabetes", "--version", "1.0.0", cwd=image_repo, env=env, timeout=300)
    assert again.code == 0 and "ok" in again.err, again.err
    harness.remove_image(docker_client, pushed["ref"])


def test_push_to_a_plain_registry_prints_the_registry_digest(image_repo: Path, registries: dict,
                                                              docker_client) -> None:
    plain = registries["plain"]
    git = ["git", "-C", str(image_repo), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "models"]):
        subprocess.run(git + args, check=True)
    commit = git_commit(image_repo)
    env = {"MODELOPS_IMAGE_REGISTRY": f"{plain.address}/team/models"}
    (image,) = _build(image_repo, "models/iris", "--version", "1.0.0", "--push", env=env)["images"]
    assert image["tags"] == [f"{plain.address}/team/models/iris:1.0.0",
                             f"{plain.address}/team/models/iris:1.0.0-{commit[:12]}"]
    assert image["digest"] == plain.manifest_digest("team/models/iris", "1.0.0")
    assert image["digest"] == plain.manifest_digest("team/models/iris", f"1.0.0-{commit[:12]}")
    labels = docker_client.api.inspect_image(image["ref"])["Config"]["Labels"]
    assert labels["org.opencontainers.image.revision"] == commit
    for tag in image["tags"]:
        harness.remove_image(docker_client, tag)


def test_a_new_version_rebuilds_only_the_model_layer(image_repo: Path, docker_client, monkeypatch) -> None:
    monkeypatch.setenv("MODELOPS_IMAGE_REGISTRY", "modelops-tests/models")
    folder = image_repo / "models" / "diabetes"
    ws = Workspace(image_repo)
    loaded = ws.manifest(folder)
    (first,) = build.build(ws, loaded, targets(loaded.manifest, ("1.0.0",)))

    shutil.copytree(folder / "artifacts" / "1.0.0", folder / "artifacts" / "1.1.0")
    data = yaml.safe_load((folder / "model.yaml").read_text())
    data["versions"].append({**data["versions"][0], "version": "1.1.0",
                             "artifact": {**data["versions"][0]["artifact"], "uri": "artifacts/1.1.0/model.skops"}})
    data["description"] = 'Progression\nRUN touch /pwned \\\n$HOME "q" $(id)'
    (folder / "model.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    recorder = LineRecorder()
    ws = Workspace(image_repo, recorder)
    loaded = ws.manifest(folder)
    (second,) = build.build(ws, loaded, targets(loaded.manifest, ("1.1.0",)))
    lines = recorder.lines

    layers = [docker_client.api.inspect_image(i.id)["RootFS"]["Layers"] for i in (first, second)]
    assert layers[0][:-1] == layers[1][:-1] and layers[0][-1] != layers[1][-1]
    assert any("cached" in line and "pip install" in line for line in lines)
    labels = docker_client.api.inspect_image(second.id)["Config"]["Labels"]
    assert labels["org.opencontainers.image.description"] == 'Progression RUN touch /pwned \\ $HOME "q" $(id)'
    assert labels["io.modelops.model.version"] == "1.1.0"
    for image in (first, second):
        harness.remove_image(docker_client, image.id)


def test_a_build_error_is_one_clear_message(image_repo: Path, monkeypatch) -> None:
    monkeypatch.setenv("MODELOPS_IMAGE_REGISTRY", "modelops-tests/models")
    (image_repo / "models" / "iris" / "Dockerfile.j2").write_text(
        "FROM {{ base_image }}\nRUN echo 'no wheel for you' && exit 3\n")
    result = run_cli("build", "models/iris", "--version", "1.0.0", cwd=image_repo, timeout=300)
    assert result.code == 1 and "Traceback" not in result.err
    assert "the image build failed at 2/2 : RUN echo" in result.err
    assert "returned a non-zero code: 3" in result.err and "no wheel for you" in result.err


def test_smoke_refuses_an_image_that_is_not_there(docker_client) -> None:
    with pytest.raises(ModelopsError, match="no image modelops-tests/none:0 in the Docker engine"):
        smoke.smoke(docker_client, "modelops-tests/none:0", LineRecorder())


def _containers_of(docker_client, ref: str) -> list:
    return docker_client.containers.list(all=True, filters={"ancestor": ref})


def test_a_wrong_answer_fails_smoke_and_removes_the_container(image_repo: Path, docker_client) -> None:
    example = image_repo / "models" / "iris" / "example.json"
    data = json.loads(example.read_text())
    data["outputs"][0]["species"] = 2
    example.write_text(json.dumps(data))
    env = {"MODELOPS_IMAGE_REGISTRY": "modelops-tests/wrong"}
    (image,) = _build(image_repo, "models/iris", "--version", "1.0.0", env=env)["images"]
    try:
        result = run_cli("smoke", image["ref"], cwd=image_repo, timeout=300)
        assert result.code == 1 and "Traceback" not in result.err
        assert "row 0: species is 0, the example expects 2" in result.err
        assert _containers_of(docker_client, image["ref"]) == []
    finally:
        harness.remove_image(docker_client, image["ref"])


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupted_smoke_removes_its_container(image_repo: Path, docker_client, signum: int) -> None:
    env = {"MODELOPS_IMAGE_REGISTRY": "modelops-tests/interrupted"}
    (image,) = _build(image_repo, "models/iris", "--version", "1.0.0", env=env)["images"]
    # the same image, whose runner never comes up: the smoke test is still waiting when the signal comes
    waiting = f"{image['ref']}-never-ready"
    docker_client.images.build(fileobj=io.BytesIO(f'FROM {image["ref"]}\nCMD ["sleep", "600"]\n'.encode()),
                               tag=waiting, rm=True)
    # started in the background as CI starts it, with SIGINT ignored: smoke must stop on it all the same
    process = subprocess.Popen([sys.executable, "-m", "modelops", "smoke", waiting], cwd=image_repo,
                               env={**os.environ, "MODELOPS_ROOT": str(image_repo)}, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    try:
        deadline = time.monotonic() + 60
        while not _containers_of(docker_client, waiting) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _containers_of(docker_client, waiting), "the smoke test never started its container"
        process.send_signal(signum)
        _, err = process.communicate(timeout=60)
        assert process.returncode == 130, err
        assert _containers_of(docker_client, waiting) == []
    finally:
        process.kill()  # if it did not stop (no-op when it did)
        process.wait()
        for ref in (waiting, image["ref"]):
            harness.remove_image(docker_client, ref)


def test_an_air_gapped_build_uses_the_given_wheelhouse(image_repo: Path, tmp_path: Path, base_image: str,
                                                       docker_client) -> None:
    loaded = load_manifest(image_repo / "models" / "iris", image_repo)
    house = wheelhouse.prepare(context.requirement_texts(loaded), wheelhouse.probe(docker_client, base_image),
                               LineRecorder(), separately=(context.sbom_tool_requirements(),))
    carried = tmp_path / "carried"
    shutil.copytree(house, carried)
    env = {"MODELOPS_IMAGE_REGISTRY": "modelops-tests/airgap", "MODELOPS_CACHE": str(tmp_path / "no-cache")}
    (image,) = _build(image_repo, "models/iris", "--version", "1.0.0", "--wheelhouse", str(carried), env=env)["images"]
    assert not (tmp_path / "no-cache" / "wheelhouse").exists()  # nothing was downloaded
    harness.remove_image(docker_client, image["ref"])

    empty = tmp_path / "wheels"
    empty.mkdir()
    result = run_cli("build", "models/iris", "--version", "1.0.0", "--wheelhouse", str(empty), cwd=image_repo,
                     env=env, timeout=300)
    assert result.code == 1 and "Traceback" not in result.err and "\x1b[" not in result.err
    assert result.err.startswith("error: the wheelhouse holds no wheel\n  hint: ")

    for scipy in carried.glob("scipy-*.whl"):  # a wheel missing: refused on the host, before any build
        scipy.unlink()
    result = run_cli("build", "models/iris", "--version", "1.0.0", "--wheelhouse", str(carried), cwd=image_repo,
                     env=env, timeout=300)
    assert result.code == 1 and "Traceback" not in result.err
    assert "the wheels of the context do not install together" in result.err
    assert "No matching distribution found for scipy==1.17.1" in result.err
    assert "hint: " in result.err

    wheel = next(carried.glob("fastapi-*.whl"))  # a locked wheel whose file changed
    wheel.write_bytes(wheel.read_bytes() + b"\0")
    result = run_cli("build", "models/iris", "--version", "1.0.0", "--wheelhouse", str(carried), cwd=image_repo,
                     env=env, timeout=300)
    assert result.code == 1 and "Traceback" not in result.err
    assert f"{wheel.name} is not the file modelops/runner/requirements.lock locks for fastapi==" in result.err


def test_a_deployment_image_serves_its_canary_and_shadow(image_repo: Path, docker_client) -> None:
    env = {"MODELOPS_IMAGE_REGISTRY": "modelops-tests/deployments"}
    (image,) = _build(image_repo, "models/iris", "--env", "production", env=env)["images"]
    assert (image["version"], image["versions"], image["deployments"]) == \
        ("1.0.0_1.1.0_1.2.0", ["1.0.0", "1.1.0", "1.2.0"], ["production"])
    try:
        smoked = run_cli("smoke", image["ref"], "--format", "json", cwd=image_repo, timeout=300)
        assert smoked.code == 0, smoked.err
        assert json.loads(smoked.out)["smoke"][0]["served_by"] in ("1.0.0", "1.1.0")
    finally:
        harness.remove_image(docker_client, image["ref"])


# In the image: the SBOM's purls, the purls of what the venv really holds, and whether the SBOM tool came along.
_LIST_SBOM = """
import importlib.metadata, json, os, sys
document = json.load(open(sys.argv[1]))
print(json.dumps({"sbom": [c["purl"] for c in document["components"]],
                  "venv": [[d.name, d.version] for d in importlib.metadata.distributions()],
                  "tool": os.path.exists("/opt/sbom-tool")}))
"""


def test_an_image_carries_the_sbom_of_its_venv_and_scan_reads_it(image_repo: Path, tmp_path: Path,
                                                                 docker_client) -> None:
    env = {"MODELOPS_IMAGE_REGISTRY": "modelops-tests/sbom"}
    (image,) = _build(image_repo, "models/iris", "--version", "1.0.0", env=env)["images"]
    try:
        assert docker_client.api.inspect_image(image["ref"])["Config"]["Labels"][sbom.LABEL] == sbom.IMAGE_PATH
        listed = docker_client.containers.run(image["ref"], ["python", "-c", _LIST_SBOM, sbom.IMAGE_PATH],
                                              network_mode="none", remove=True)
        contents = json.loads(listed)
        assert not contents["tool"]  # the tool's venv stays in the builder stage
        listed = {(canonicalize_name(p[len("pkg:pypi/"):].partition("@")[0]), p.partition("@")[2])
                  for p in contents["sbom"]}
        assert listed == {(canonicalize_name(name), version) for name, version in contents["venv"]}
        assert {("scikit-learn", "1.9.1"), ("numpy", "2.4.6")} <= listed
        assert not {name for name, _ in listed} & {"cyclonedx-bom", "watchfiles", "pip", "setuptools"}

        clean = run_cli("scan", "--db", str(SAFETY_DB), "--image", image["ref"], "--format", "json", cwd=image_repo)
        assert clean.code == 0, clean.err
        assert json.loads(clean.out)["findings"] == []
        db = flagging(tmp_path / "db", "scikit-learn", "1.9.1")
        flagged = run_cli("scan", "--db", str(db), "--image", image["ref"], "--format", "json", cwd=image_repo)
        assert flagged.code == 1, flagged.err
        report = json.loads(flagged.out)
        assert report["targets"] == [f"image {image['ref']}"]
        assert [(f["package"], f["version"], f["advisory"]) for f in report["findings"]] == \
            [("scikit-learn", "1.9.1", "99001")]
    finally:
        harness.remove_image(docker_client, image["ref"])
