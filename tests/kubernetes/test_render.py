"""`modelops render --target kubernetes|kserve`: strictly valid objects, deterministic bytes, a tree following git."""

from __future__ import annotations

import json
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

from modelops import api
from modelops.errors import ModelopsError
from modelops.workspace import Workspace

SCHEMAS = Path(__file__).parent / "schemas"
CORE_KINDS = {"Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget", "Namespace"}
DIGEST = "sha256:" + "ab" * 32


def tree(folder: Path) -> dict[str, bytes]:
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in files}


def documents(folder: Path, kinds: set[str]) -> list[tuple[Path, dict]]:
    found = [(p, yaml.safe_load(p.read_text())) for p in sorted(folder.rglob("*.yaml"))]
    return [(p, d) for p, d in found if d["kind"] in kinds]


@pytest.mark.parametrize("version", ["1.27.0", "1.37.0"])
def test_every_core_object_passes_kubernetes_validate_strict(repo, modelops, version):
    assert modelops("render", "--target", "kubernetes", "--out", "deploy").returncode == 0
    files = [p for p, _ in documents(repo / "deploy", CORE_KINDS)]
    # 2 environments x 2 models x 4 objects, plus one namespace per environment
    assert len(files) == 18
    result = subprocess.run([Path(sys.executable).parent / "kubernetes-validate", "--strict", "-k", version,
                             *map(str, files)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    passed = [line for line in result.stdout.splitlines() if line.startswith("INFO") and " passed " in line]
    assert len(passed) == len(files), result.stdout + result.stderr  # a file without a schema only warns


def test_the_environment_kustomization_lists_what_was_rendered(repo, modelops):
    assert modelops("render", "--target", "kubernetes", "--out", "deploy").returncode == 0
    kustomization = yaml.safe_load((repo / "deploy/production/kustomization.yaml").read_text())
    on_disk = sorted(p.relative_to(repo / "deploy/production").as_posix()
                     for p in (repo / "deploy/production").glob("*/*.yaml"))
    assert kustomization["namespace"] == "models-production"
    assert kustomization["resources"] == ["namespace.yaml", *on_disk]
    argo = yaml.safe_load((repo / "deploy/gitops/argocd/production.yaml").read_text())
    assert argo["spec"]["source"]["path"] == "production"
    assert argo["spec"]["destination"]["namespace"] == "models-production"
    flux = yaml.safe_load((repo / "deploy/gitops/flux/kustomization-production.yaml").read_text())
    assert (flux["spec"]["path"], flux["spec"]["sourceRef"]["name"]) == ("./production", "models")


@pytest.mark.parametrize("target", ["kubernetes", "kserve"])
def test_kustomize_builds_each_environment(repo, modelops, target):
    kubectl = shutil.which("kubectl")
    if not kubectl:  # not a Debian package: an optional tool, never required
        pytest.skip("kubectl (with its built-in kustomize) is not installed")
    assert modelops("render", "--target", "kubernetes", "--out", "deploy", "--target", target).returncode == 0
    for env in ("production", "staging"):
        built = subprocess.run([kubectl, "kustomize", str(repo / "deploy" / env)], capture_output=True,
                               text=True, timeout=120)
        assert built.returncode == 0, built.stderr
        objects = list(yaml.safe_load_all(built.stdout))
        rendered = documents(repo / "deploy" / env, CORE_KINDS | {"InferenceService"})
        assert len(objects) == len(rendered)
        for obj in objects:
            if obj["kind"] != "Namespace":
                assert obj["metadata"]["namespace"] == f"models-{env}"


def test_the_deployment_runs_the_environment_hardened(repo, modelops):
    assert modelops("render", "--target", "kubernetes", "--out", "deploy", "--env", "production").returncode == 0
    deployment = yaml.safe_load((repo / "deploy/production/iris/deployment.yaml").read_text())
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert "replicas" not in deployment["spec"]  # the HorizontalPodAutoscaler owns the count
    assert container["image"] == "127.0.0.1:5000/models/iris:1.0.0_1.1.0_1.2.0"
    assert container["command"] == ["python", "-m", "modelops", "serve", "/model", "--env", "production"]
    assert container["env"] == [{"name": "MODELOPS_ENV", "value": "production"},
                                {"name": "MODELOPS_SHUTDOWN_GRACE_S", "value": "40"}]
    # endpoints drop the pod during the preStop sleep; then the runner drains within its grace, before the kill
    assert container["lifecycle"] == {"preStop": {"exec": {"command": ["sleep", "5"]}}}
    assert pod["terminationGracePeriodSeconds"] > 5 + 40
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["volumeMounts"] == [{"name": "tmp", "mountPath": "/tmp"}]
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert deployment["spec"]["template"]["metadata"]["annotations"]["prometheus.io/scrape"] == "true"
    assert not (repo / "deploy/staging").exists()


def test_a_file_payload_sink_gets_a_folder_in_the_pod(repo, modelops, edit_manifest):
    def log_to_a_file(data: dict) -> None:
        data["deployments"]["production"]["payloads"] = {"sink": "scored/production.jsonl"}

    edit_manifest("iris", log_to_a_file)
    assert modelops("render", "--target", "kubernetes", "--out", "deploy", "--env", "production").returncode == 0
    pod = yaml.safe_load((repo / "deploy/production/iris/deployment.yaml").read_text())["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert {"name": "MODELOPS_PAYLOAD_DIR", "value": "/var/lib/modelops/payloads"} in container["env"]
    assert {"name": "payloads", "mountPath": "/var/lib/modelops/payloads"} in container["volumeMounts"]
    assert {"name": "payloads", "emptyDir": {"sizeLimit": "1Gi"}} in pod["volumes"]
    diabetes = yaml.safe_load((repo / "deploy/production/diabetes/deployment.yaml").read_text())
    assert "MODELOPS_PAYLOAD_DIR" not in str(diabetes)  # no file sink, no folder
    kserve = modelops("render", "--target", "kserve", "--out", "kserve", "--env", "production")
    assert kserve.returncode == 0, kserve.stderr
    assert "deployments.production.payloads.sink: a file sink needs a volume and MODELOPS_PAYLOAD_DIR" in kserve.stderr


def test_the_inference_service_passes_the_kserve_schema(repo, modelops):
    result = modelops("render", "--target", "kubernetes", "--out", "deploy", "--target", "kserve")
    assert result.returncode == 0, result.stderr
    assert "KServe mirrors no traffic, so 1.2.0 is not shadowed" in result.stderr
    schema = json.loads((SCHEMAS / "inferenceservice-v1beta1.json").read_text())
    services = documents(repo / "deploy", {"InferenceService"})
    assert len(services) == 4
    for _, service in services:
        jsonschema.validate(service, schema)
    iris = yaml.safe_load((repo / "deploy/production/iris/inferenceservice.yaml").read_text())
    predictor = iris["spec"]["predictor"]
    assert predictor["canaryTrafficPercent"] == 10  # the canary's revision takes 10 %, the previous one 90 %
    assert predictor["containers"][0]["image"] == "127.0.0.1:5000/models/iris:1.1.0"
    staging = yaml.safe_load((repo / "deploy/staging/iris/inferenceservice.yaml").read_text())
    assert "canaryTrafficPercent" not in staging["spec"]["predictor"]


def test_the_kserve_schema_is_strict_and_kubernetes_validate_has_none(repo, modelops):
    assert modelops("render", "--target", "kubernetes", "--out", "deploy", "--target", "kserve").returncode == 0
    path = repo / "deploy/production/iris/inferenceservice.yaml"
    service = yaml.safe_load(path.read_text())
    service["spec"]["predictor"]["canaryPercent"] = 10
    schema = json.loads((SCHEMAS / "inferenceservice-v1beta1.json").read_text())
    with pytest.raises(jsonschema.ValidationError, match="canaryPercent"):
        jsonschema.validate(service, schema)
    result = subprocess.run([Path(sys.executable).parent / "kubernetes-validate", "--strict", str(path)],
                            capture_output=True, text=True, timeout=120)
    assert " passed " not in result.stdout  # no bundled schema: why the test brings its own


def test_rendering_twice_gives_identical_bytes_and_writes_nothing(repo, modelops):
    assert modelops("render", "--target", "kubernetes", "--out", "first").returncode == 0
    assert modelops("render", "--target", "kubernetes", "--out", "second").returncode == 0
    first = tree(repo / "first")
    assert first == tree(repo / "second")
    times = {p: p.stat().st_mtime_ns for p in (repo / "first").rglob("*.yaml")}
    again = modelops("render", "--target", "kubernetes", "--out", "first")
    assert again.returncode == 0
    assert again.stdout == f"0 file(s) written, {len(times)} unchanged for 2 model(s) in first\n"
    assert {p: p.stat().st_mtime_ns for p in (repo / "first").rglob("*.yaml")} == times


def test_a_new_version_changes_only_the_image_and_labels(repo, modelops, edit_manifest):
    assert modelops("render", "--target", "kubernetes", "--out", "before").returncode == 0

    def promote(data: dict) -> None:
        data["deployments"]["staging"]["version"] = "1.1.0"

    edit_manifest("iris", promote)
    assert modelops("render", "--target", "kubernetes", "--out", "after").returncode == 0
    before, after = tree(repo / "before"), tree(repo / "after")
    assert before.keys() == after.keys()
    changed = {name for name in before if before[name] != after[name]}
    assert changed == {f"staging/iris/{kind}.yaml" for kind in
                       ("deployment", "service", "horizontalpodautoscaler", "poddisruptionbudget")}
    for name in changed:
        old, new = before[name].decode().splitlines(), after[name].decode().splitlines()
        assert len(old) == len(new)
        diff = [(a, b) for a, b in zip(old, new, strict=True) if a != b]
        assert diff
        for a, b in diff:
            assert re.fullmatch(r'\s*(image: "[^"]+/iris:1\.2\.0"|app\.kubernetes\.io/version: "1\.2\.0")',
                                a), a
            assert b == a.replace("1.2.0", "1.1.0")


def test_images_by_digest_from_build_output(repo, modelops):
    images = {"images": [
        {"model": "iris", "version": "1.2.0", "ref": "registry.example.com/models/iris:1.2.0",
         "digest": DIGEST},
        {"model": "diabetes", "version": "1.0.0", "ref": f"registry.example.com/models/diabetes@{DIGEST}"}]}
    (repo / "images.json").write_text(json.dumps(images))
    result = modelops("render", "--target", "kubernetes", "--out", "deploy", "--env", "staging",
                      "--images", "images.json")
    assert result.returncode == 0, result.stderr
    for model in ("iris", "diabetes"):
        deployment = yaml.safe_load((repo / f"deploy/staging/{model}/deployment.yaml").read_text())
        image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
        assert image == f"registry.example.com/models/{model}@{DIGEST}"


def test_the_registry_setting_and_its_environment_override(repo, modelops, monkeypatch):
    monkeypatch.setenv("MODELOPS_IMAGE_REGISTRY", "registry.internal:5443/ml")
    assert modelops("render", "--target", "kubernetes", "--out", "deploy", "--env", "staging").returncode == 0
    deployment = yaml.safe_load((repo / "deploy/staging/diabetes/deployment.yaml").read_text())
    image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == "registry.internal:5443/ml/diabetes:1.0.0"
    monkeypatch.setenv("MODELOPS_IMAGE_REGISTRY", "bad registry\nkind: Secret")
    result = modelops("render", "--target", "kubernetes", "--out", "deploy", "--env", "staging")
    assert result.returncode == 1
    assert result.stderr.startswith(
        "MODELOPS_IMAGE_REGISTRY: tool.modelops.image_registry: 'bad registry\\nkind")
    assert "Traceback" not in result.stderr


def test_the_tree_follows_the_manifests_and_keeps_foreign_files(repo, modelops, edit_manifest):
    assert modelops("render", "--target", "kubernetes", "--out", "deploy").returncode == 0
    (repo / "deploy/README.md").write_text("notes kept by people\n")
    (repo / "deploy/staging/extra.yaml").write_text("kind: ConfigMap\n")

    def drop_staging(data: dict) -> None:
        del data["deployments"]["staging"]

    edit_manifest("diabetes", drop_staging)
    assert modelops("render", "--target", "kubernetes", "--out", "deploy").returncode == 0
    assert not (repo / "deploy/staging/diabetes").exists()
    staging = yaml.safe_load((repo / "deploy/staging/kustomization.yaml").read_text())
    assert not [r for r in staging["resources"] if r.startswith("diabetes/")]
    assert (repo / "deploy/production/diabetes/deployment.yaml").is_file()

    shutil.rmtree(repo / "models/iris")
    assert modelops("render", "--target", "kubernetes", "--out", "deploy").returncode == 0
    assert not (repo / "deploy/staging/kustomization.yaml").exists()  # no model left in staging
    assert not (repo / "deploy/gitops/argocd/staging.yaml").exists()
    assert not list((repo / "deploy").rglob("iris"))
    assert (repo / "deploy/README.md").read_text() == "notes kept by people\n"
    assert (repo / "deploy/staging/extra.yaml").is_file()


def test_a_foreign_file_is_not_replaced_and_rendered_files_are_readable_by_all(repo, modelops):
    mine = repo / "deploy/staging/kustomization.yaml"
    mine.parent.mkdir(parents=True)
    mine.write_text("resources: []  # mine\n")
    result = modelops("render", "--target", "kubernetes", "--out", "deploy")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"{mine}: is not replaced: its first line is not the header" in result.stderr
    assert mine.read_text() == "resources: []  # mine\n"
    assert sorted(p.relative_to(repo / "deploy").as_posix() for p in (repo / "deploy").rglob("*")) == [
        "staging", "staging/kustomization.yaml"]  # nothing written
    mine.unlink()
    assert modelops("render", "--target", "kubernetes", "--out", "deploy").returncode == 0
    assert {stat.S_IMODE(p.stat().st_mode) for p in (repo / "deploy").rglob("*.yaml")} == {0o644}


def test_fixed_replicas_render_no_autoscaler(repo, modelops, edit_manifest):
    def fixed(data: dict) -> None:
        data["deployments"]["staging"]["scale"] = {"replicas": 3}

    edit_manifest("diabetes", fixed)
    result = modelops("render", "--target", "kubernetes", "models/diabetes", "--out", "deploy", "--env", "staging")
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (repo / "deploy/staging/diabetes").iterdir()) == [
        "deployment.yaml", "poddisruptionbudget.yaml", "service.yaml"]
    deployment = yaml.safe_load((repo / "deploy/staging/diabetes/deployment.yaml").read_text())
    assert deployment["spec"]["replicas"] == 3


def test_an_unknown_environment_is_refused(repo, modelops):
    result = modelops("render", "--target", "kubernetes", "--out", "deploy", "--env", "qa")
    assert result.returncode == 1
    assert result.stderr == "error: no model deploys to 'qa'\n  hint: environments are: production, staging\n"
    assert not (repo / "deploy").exists()


def test_an_invalid_manifest_writes_nothing(repo, modelops, edit_manifest):
    def typo(data: dict) -> None:
        data["deployments"]["production"]["scale"] = {"resources": {"requests": {"cpu": "2 cores",
                                                                                 "memory": "1Gi"}}}

    edit_manifest("iris", typo)
    result = modelops("render", "--target", "kubernetes", "--out", "deploy")
    assert result.returncode == 1
    assert "production.scale.resources.requests.cpu: not a Kubernetes CPU quantity" in result.stderr
    assert not (repo / "deploy").exists()


def test_render_one_model_through_the_api(repo):
    ws, folders, out = Workspace(repo), [repo / "models/iris"], repo / "deploy"
    images = repo / "images.json"
    images.write_text(json.dumps({"images": [{"model": "iris", "version": "1.2.0",
                                              "ref": f"registry.example.com/iris@{DIGEST}"}]}))
    paths, _ = api.render_kubernetes(ws, folders, out, env="staging", images=images)
    assert [p.relative_to(out).as_posix() for p in paths] == [
        "gitops/argocd/staging.yaml", "gitops/flux/gitrepository.yaml", "gitops/flux/kustomization-staging.yaml",
        "staging/iris/deployment.yaml", "staging/iris/horizontalpodautoscaler.yaml",
        "staging/iris/poddisruptionbudget.yaml", "staging/iris/service.yaml",
        "staging/kustomization.yaml", "staging/namespace.yaml"]
    deployment = (out / "staging/iris/deployment.yaml").read_text()
    assert f'image: "registry.example.com/iris@{DIGEST}"' in deployment
    before = tree(out)
    bad = "registry.example.com/iris@sha256:x"
    images.write_text(json.dumps({"images": [{"model": "iris", "version": "1.2.0", "ref": bad}]}))
    with pytest.raises(ModelopsError, match=re.escape(f"image reference {bad!r} for iris")):
        api.render_kubernetes(ws, folders, out, env="staging", images=images)
    assert tree(out) == before


def test_the_gitops_folder_name_is_not_an_environment(repo, modelops, edit_manifest):
    def rename(data: dict) -> None:
        data["deployments"]["gitops"] = data["deployments"].pop("staging")

    edit_manifest("diabetes", rename)
    result = modelops("render", "--target", "kubernetes", "--out", "deploy")
    assert result.returncode == 1
    assert result.stderr == ("models/diabetes/model.yaml: deployments.gitops: environment name 'gitops' is reserved "
                             "for the Argo CD and Flux objects\n  hint: name the environment otherwise\n")
    assert not (repo / "deploy").exists()


@pytest.mark.parametrize(("edit", "words"), [
    (lambda text: text.replace("{{ header }}", "{% if header %}", 1), "templates/kubernetes/service.yaml.j2:"),
    (lambda text: text.replace("{{ name", "{{ nam", 1), "'nam' is undefined"),
    (lambda text: text + "{{ ''.__class__.__mro__ }}\n", "__class__"),
], ids=["syntax", "undefined", "sandbox"])
def test_a_broken_template_is_a_clear_error_and_writes_nothing(repo, modelops, edit, words):
    template = repo / "templates/kubernetes/service.yaml.j2"
    template.write_text(edit(template.read_text()))
    done = modelops("render", "--target", "kubernetes", "--out", "deploy")
    assert done.returncode == 1
    assert words in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert not (repo / "deploy").exists()


@pytest.mark.parametrize(("blocker", "words"), [
    ("staging", "deploy/staging: is not a folder, but files go in it"),
    ("gitops/argocd", "deploy/gitops/argocd: is not a folder, but files go in it"),
    ("staging/iris/service.yaml/", "deploy/staging/iris/service.yaml: is a folder where a file goes"),
])
def test_a_file_in_the_way_is_found_before_anything_is_written(repo, modelops, blocker, words):
    path = repo / "deploy" / blocker
    path.parent.mkdir(parents=True)
    path.mkdir() if blocker.endswith("/") else path.write_text("in the way\n")
    before = sorted((repo / "deploy").rglob("*"))
    done = modelops("render", "--target", "kubernetes", "--out", "deploy")
    assert done.returncode == 1
    assert done.stderr.startswith(f"{repo / words}\n  hint: move it away"), done.stderr
    assert sorted((repo / "deploy").rglob("*")) == before


def test_an_output_that_is_not_a_folder_is_refused(repo, modelops):
    done = modelops("render", "--target", "kubernetes", "--out", "/dev/null")
    assert done.returncode == 1
    assert done.stderr.startswith("/dev/null: is not a folder, but files go in it\n"), done.stderr
    (repo / "blocker").write_text("a file\n")
    done = modelops("render", "models/iris", "--env", "staging", "--out", "blocker/context")
    assert done.returncode == 1
    assert done.stderr.startswith("blocker: is not a folder, but files go in it\n"), done.stderr


def test_images_must_hold_every_rendered_image(repo, modelops):
    (repo / "images.json").write_text('{"images": []}')
    done = modelops("render", "--target", "kubernetes", "--out", "deploy", "--images", "images.json")
    assert done.returncode == 1
    assert done.stderr.startswith("error: --images holds no image of diabetes with key 1.0.0\n"
                                  "  hint: build and push the images of every model first"), done.stderr
    assert not (repo / "deploy").exists()


def test_a_malformed_images_file_names_the_entry_and_field(repo, modelops):
    images = {"images": [
        {"model": "iris", "version": "1.2.0", "ref": "registry.example.com/models/iris:1.2.0", "digest": DIGEST},
        {"model": ["x"], "version": {}, "ref": 1, "digest": None},
        {"model": "iris", "version": "1.1.0", "ref": "registry.example.com/models/iris:1.1.0", "digest": "sha256:1"}]}
    (repo / "images.json").write_text(json.dumps(images))
    done = modelops("render", "--target", "kubernetes", "--out", "deploy", "--images", "images.json")
    assert done.returncode == 1
    fields = [line.split(": ")[1] for line in done.stderr.splitlines() if line.startswith("images.json: ")]
    assert fields == ["images[1].model", "images[1].version", "images[1].ref", "images[2].digest"], done.stderr
    assert "images[1].ref: Input should be a valid string (got 1)" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (repo / "deploy").exists()
