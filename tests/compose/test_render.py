"""`modelops render --target compose`: files the Compose Specification accepts, what a Docker host needs in them
(image by digest, readiness, limits from scale, the runner's variables, no secret), and a tree that follows git."""

from __future__ import annotations

import json
import re
import shutil
import stat
import subprocess
from pathlib import Path

import jsonschema
import pytest
import yaml

SCHEMA = json.loads((Path(__file__).parent / "schemas" / "compose-spec.json").read_text())
DIGEST = "sha256:" + "ab" * 32
COMPOSE = shutil.which("docker-compose")


def compose_files(folder: Path) -> dict[str, dict]:
    return {p.parent.name: yaml.safe_load(p.read_text()) for p in sorted(folder.glob("*/compose.yaml"))}


def images_json(path: Path, registry: str = "registry.example.com/models") -> Path:
    keys = {"iris": ["1.0.0_1.1.0_1.2.0", "1.2.0"], "diabetes": ["1.0.0"]}
    images = [{"model": model, "version": key, "ref": f"{registry}/{model}:{key}", "digest": DIGEST}
              for model, model_keys in keys.items() for key in model_keys]
    path.write_text(json.dumps({"images": images}))
    return path


@pytest.mark.parametrize("network", ["bridge", "host"])
def test_every_file_passes_the_compose_specification_schema(repo, modelops, monkeypatch, network):
    monkeypatch.setenv("MODELOPS_COMPOSE_NETWORK", network)
    result = modelops("render", "--target", "compose", "--images", str(images_json(repo / "images.json")))
    assert result.returncode == 0, result.stderr
    assert result.stdout == "2 file(s) written, 0 unchanged for 2 model(s) in deploy-compose\n"
    files = compose_files(repo / "deploy-compose")
    assert sorted(files) == ["production", "staging"]
    for env, document in files.items():
        jsonschema.validate(document, SCHEMA, cls=jsonschema.Draft7Validator)
        assert sorted(document["services"]) == ["diabetes", "iris"], env
        for service in document["services"].values():
            if network == "host":
                assert service["network_mode"] == "host" and "ports" not in service
                assert service["environment"]["PORT"].startswith("${MODELOPS_")
            else:
                assert "network_mode" not in service and "PORT" not in service["environment"]


@pytest.mark.skipif(COMPOSE is None, reason="docker-compose is not installed (scripts/setup.sh --system installs it)")
def test_docker_compose_reads_every_file_and_asks_for_the_ports(repo, modelops):
    assert modelops("render", "--target", "compose").returncode == 0
    folder = repo / "deploy-compose" / "production"
    unset = subprocess.run([COMPOSE, "config", "-q"], cwd=folder, capture_output=True, text=True, timeout=60)
    assert unset.returncode == 1 and "set the host port of diabetes in .env" in unset.stderr
    (folder / ".env").write_text("MODELOPS_IRIS_PORT=8081\nMODELOPS_DIABETES_PORT=8082\nMODELOPS_HOST_IP=127.0.0.1\n")
    config = subprocess.run([COMPOSE, "config"], cwd=folder, capture_output=True, text=True, timeout=60)
    assert config.returncode == 0, config.stderr
    iris = yaml.safe_load(config.stdout)["services"]["iris"]
    assert iris["ports"] == ["127.0.0.1:8081:8080/tcp"]
    assert yaml.safe_load(config.stdout)["secrets"]["api-keys"]["file"] == str(folder / "api-keys")


def test_the_service_runs_the_environment_image_by_digest_as_the_kubernetes_deployment_does(repo, modelops):
    images = str(images_json(repo / "images.json"))
    assert modelops("render", "--target", "compose", "--images", images).returncode == 0
    assert modelops("render", "--target", "kubernetes", "--images", images).returncode == 0
    iris = compose_files(repo / "deploy-compose")["production"]["services"]["iris"]
    pod = yaml.safe_load((repo / "deploy/production/iris/deployment.yaml").read_text())["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert iris["image"] == container["image"] == f"registry.example.com/models/iris@{DIGEST}"
    assert iris["command"] == container["command"]
    assert {e["name"]: e["value"] for e in container["env"]}.items() <= iris["environment"].items()
    assert iris["environment"]["MODELOPS_SHUTDOWN_GRACE_S"] == "40" and iris["stop_grace_period"] == "45s"
    assert iris["restart"] == "unless-stopped"
    assert iris["healthcheck"]["test"][0] == "CMD" and "/ready" in iris["healthcheck"]["test"][-1]
    assert iris["ports"] == ["${MODELOPS_HOST_IP:-0.0.0.0}:${MODELOPS_IRIS_PORT:?set the host port of iris in .env}"
                             ":8080"]
    assert (iris["user"], iris["read_only"], iris["cap_drop"]) == ("10001:10001", True, ["ALL"])
    staging = compose_files(repo / "deploy-compose")["staging"]["services"]["iris"]
    assert staging["image"] == f"registry.example.com/models/iris@{DIGEST}"
    assert staging["labels"] == {"io.modelops.model": "iris", "io.modelops.environment": "staging",
                                 "io.modelops.version": "1.2.0"}


def test_scale_gives_the_workers_and_limits(repo, modelops, edit_manifest):
    def scale(data: dict) -> None:
        data["deployments"]["staging"]["scale"] = {
            "replicas": 3, "resources": {"requests": {"cpu": "100m", "memory": "256Mi"},
                                         "limits": {"cpu": "500m", "memory": "300M"}}}

    edit_manifest("iris", scale)
    assert modelops("render", "--target", "compose").returncode == 0
    files = compose_files(repo / "deploy-compose")
    staging = files["staging"]["services"]["iris"]
    assert staging["environment"]["MODELOPS_WORKERS"] == "3"  # a replica on Kubernetes is a worker here
    assert staging["deploy"]["resources"] == {"limits": {"cpus": "1.5", "memory": "900000000b"},
                                              "reservations": {"memory": "768m"}}
    default = files["production"]["services"]["iris"]  # autoscaling from 2 replicas, 1 CPU and 1Gi each
    assert default["environment"]["MODELOPS_WORKERS"] == "2"
    assert default["deploy"]["resources"] == {"limits": {"cpus": "2", "memory": "2g"},
                                              "reservations": {"memory": "1g"}}


def test_a_cpu_limit_below_dockers_smallest_is_rounded_up_with_a_note(repo, modelops, edit_manifest):
    edit_manifest("iris", lambda data: data["deployments"]["staging"].update(
        scale={"replicas": 1, "resources": {"requests": {"cpu": "1m", "memory": "256Mi"},
                                           "limits": {"cpu": "1m", "memory": "256Mi"}}}))
    result = modelops("render", "--target", "compose", "--format", "json")
    assert result.returncode == 0, result.stderr
    assert compose_files(repo / "deploy-compose")["staging"]["services"]["iris"]["deploy"]["resources"]["limits"][
        "cpus"] == "0.01"
    assert "models/iris/model.yaml: deployments.staging.scale.resources.limits.cpu: 1m for 1 worker(s) is below the " \
        "smallest CPU limit Docker takes (0.01), so the Compose service gets 0.01" in json.loads(result.stdout)["notes"]


def test_no_secret_is_in_the_file_only_a_reference_to_the_operators_file(repo, modelops, monkeypatch):
    monkeypatch.setenv("MODELOPS_API_KEYS", "must-not-leak")
    assert modelops("render", "--target", "compose").returncode == 0
    text = (repo / "deploy-compose/production/compose.yaml").read_text()
    assert "must-not-leak" not in text
    document = yaml.safe_load(text)
    assert document["secrets"] == {"api-keys": {"file": "./api-keys"}}
    for service in document["services"].values():
        assert service["secrets"] == ["api-keys"]
        assert service["environment"]["MODELOPS_API_KEYS_FILE"] == "/run/secrets/api-keys"
        assert "MODELOPS_API_KEYS" not in service["environment"] and "env_file" not in service


def test_rendering_again_writes_nothing(repo, modelops):
    images = str(images_json(repo / "images.json"))
    assert modelops("render", "--target", "compose", "--images", images).returncode == 0
    files = sorted((repo / "deploy-compose").rglob("*"))
    before = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in files if p.is_file()}
    again = modelops("render", "--target", "compose", "--images", images)
    assert again.returncode == 0, again.stderr
    assert again.stdout == "0 file(s) written, 2 unchanged for 2 model(s) in deploy-compose\n"
    assert sorted((repo / "deploy-compose").rglob("*")) == files
    assert {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in before} == before


def test_the_tree_follows_the_manifests_and_keeps_the_operators_files(repo, modelops, edit_manifest):
    assert modelops("render", "--target", "compose").returncode == 0
    production = repo / "deploy-compose" / "production"
    mine = {".env": "MODELOPS_IRIS_PORT=8081\n", "api-keys": "k\n", "compose.override.yaml": "services: {}\n"}
    for name, text in mine.items():
        (production / name).write_text(text)

    # Rendering one model replaces its services and keeps the others'.
    edit_manifest("iris", lambda data: data["deployments"]["staging"].update(version="1.1.0"))
    diabetes = (production / "compose.yaml").read_text().split("  # diabetes: ")[1].split("\n\n")[0]
    assert modelops("render", "--target", "compose", "models/iris").returncode == 0
    files = compose_files(repo / "deploy-compose")
    assert files["staging"]["services"]["iris"]["image"].endswith("/iris:1.1.0")
    assert sorted(files["staging"]["services"]) == ["diabetes", "iris"]
    assert diabetes in (production / "compose.yaml").read_text()

    # A model that leaves an environment leaves its file; an environment left empty loses its file.
    edit_manifest("diabetes", lambda data: data["deployments"].pop("staging"))
    assert modelops("render", "--target", "compose", "models/diabetes").returncode == 0
    assert sorted(compose_files(repo / "deploy-compose")["staging"]["services"]) == ["iris"]
    edit_manifest("iris", lambda data: data["deployments"].pop("staging"))
    left = modelops("render", "--target", "compose", "--format", "json")
    assert left.returncode == 0 and not (repo / "deploy-compose" / "staging").exists()
    assert {k: json.loads(left.stdout)[k] for k in ("files", "written", "removed")} == {
        "files": ["deploy-compose/production/compose.yaml"], "written": [],
        "removed": ["deploy-compose/staging/compose.yaml"]}

    # Without PATHS, a model that is gone is pruned; the operator's files stay.
    shutil.rmtree(repo / "models" / "diabetes")
    assert modelops("render", "--target", "compose").returncode == 0
    assert sorted(compose_files(repo / "deploy-compose")["production"]["services"]) == ["iris"]
    assert {name: (production / name).read_text() for name in mine} == mine


def test_one_environment_only(repo, modelops):
    result = modelops("render", "--target", "compose", "--env", "staging", "--out", "out")
    assert result.returncode == 0, result.stderr
    assert sorted(compose_files(repo / "out")) == ["staging"]
    unknown = modelops("render", "--target", "compose", "--env", "qa")
    assert unknown.returncode == 1 and "no model deploys to 'qa'" in unknown.stderr


def test_images_by_tag_are_said_in_a_note_and_a_missing_digest_is_an_error(repo, modelops):
    by_tag = modelops("render", "--target", "compose", "--format", "json")
    assert by_tag.returncode == 0, by_tag.stderr
    (note,) = json.loads(by_tag.stdout)["notes"]
    assert note.startswith("images go by tag (127.0.0.1:5000/models/<model>:<versions>)") and "--images" in note
    assert compose_files(repo / "deploy-compose")["staging"]["services"]["iris"]["image"] == \
        "127.0.0.1:5000/models/iris:1.2.0"
    partial = repo / "partial.json"
    partial.write_text(json.dumps({"images": [{"model": "iris", "version": "1.2.0", "ref": "r.example/m/iris:1.2.0",
                                               "digest": DIGEST}]}))
    before = (repo / "deploy-compose/staging/compose.yaml").read_bytes()
    missing = modelops("render", "--target", "compose", "--images", str(partial))
    assert missing.returncode == 1 and "--images holds no image of diabetes with key 1.0.0" in missing.stderr
    assert (repo / "deploy-compose/staging/compose.yaml").read_bytes() == before  # nothing written


def test_a_file_changed_by_hand_is_not_half_kept(repo, modelops):
    assert modelops("render", "--target", "compose").returncode == 0
    path = repo / "deploy-compose/production/compose.yaml"
    path.write_text(path.read_text().replace("  # iris: ", "  # "))
    changed = path.read_bytes()
    result = modelops("render", "--target", "compose", "models/diabetes")
    assert result.returncode == 1 and "deploy-compose/production/compose.yaml: was changed by hand" in result.stderr
    assert "Traceback" not in result.stderr and path.read_bytes() == changed
    assert modelops("render", "--target", "compose").returncode == 0  # every model: rewritten whole
    assert sorted(compose_files(repo / "deploy-compose")["production"]["services"]) == ["diabetes", "iris"]


def test_a_value_changed_by_hand_in_a_kept_service_stops_render(repo, modelops):
    assert modelops("render", "--target", "compose").returncode == 0
    path = repo / "deploy-compose/production/compose.yaml"
    rendered = path.read_text()
    (line,) = [line for line in rendered.splitlines() if line.startswith("  # diabetes: ")]
    assert re.fullmatch(r"  # diabetes: 1\.0\.0, from models/diabetes/model\.yaml \[sha256 [0-9a-f]{16}\]", line)
    image = compose_files(repo / "deploy-compose")["production"]["services"]["diabetes"]["image"]
    path.write_text(rendered.replace(f'image: "{image}"', 'image: "elsewhere.example/diabetes:latest"'))
    changed = path.read_bytes()
    result = modelops("render", "--target", "compose", "models/iris")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "deploy-compose/production/compose.yaml: was changed by hand: the service diabetes is not as rendered" \
        in result.stderr
    assert path.read_bytes() == changed  # nothing written
    assert modelops("render", "--target", "compose", "models/diabetes").returncode == 0  # its own service: replaced
    assert path.read_text() == rendered
    path.write_text(rendered.replace(f'image: "{image}"', 'image: "elsewhere.example/diabetes:latest"'))
    assert modelops("render", "--target", "compose").returncode == 0  # every model: rewritten
    assert path.read_text() == rendered


def test_files_are_readable_by_all_and_a_changed_mode_is_kept(repo, modelops, edit_manifest):
    assert modelops("render", "--target", "compose").returncode == 0
    production, staging = (repo / "deploy-compose" / e / "compose.yaml" for e in ("production", "staging"))
    assert {stat.S_IMODE(p.stat().st_mode) for p in (production, staging)} == {0o644}  # published, not secret
    staging.chmod(0o640)
    edit_manifest("iris", lambda data: data["deployments"]["staging"].update(version="1.1.0"))
    assert modelops("render", "--target", "compose").returncode == 0
    assert "iris:1.1.0" in staging.read_text() and stat.S_IMODE(staging.stat().st_mode) == 0o640


def test_a_compose_file_it_did_not_write_is_not_replaced(repo, modelops):
    mine = repo / "deploy-compose/production/compose.yaml"
    mine.parent.mkdir(parents=True)
    mine.write_text("services: {}  # mine\n")
    for args in ((), ("models/iris",)):
        result = modelops("render", "--target", "compose", *args)
        assert result.returncode == 1 and "Traceback" not in result.stderr
        assert f"{mine}: is not replaced: its first line is not the header" in result.stderr
        assert mine.read_text() == "services: {}  # mine\n"
        assert not (repo / "deploy-compose/staging").exists()  # nothing written


def test_a_line_break_in_the_folders_path_stays_in_the_comment(repo, modelops):
    folder = repo / "models" / "a\nb: c" / "iris"
    folder.parent.mkdir()
    shutil.move(repo / "models" / "iris", folder)
    result = modelops("render", "--target", "compose", str(folder), "--env", "staging")
    assert result.returncode == 0, result.stderr
    text = (repo / "deploy-compose/staging/compose.yaml").read_text()
    assert re.search(r'\n  # iris: 1\.2\.0, from "models/a\\nb: c/iris/model\.yaml" \[sha256 \w+\]\n  iris:\n', text)
    assert sorted(compose_files(repo / "deploy-compose")["staging"]["services"]) == ["iris"]


def test_a_template_that_renders_no_yaml_is_a_clear_error(repo, modelops):
    template = repo / "templates/compose/service.yaml.j2"
    template.write_text(template.read_text().replace("    restart: unless-stopped", "    restart: [unless"))
    result = modelops("render", "--target", "compose")
    assert result.returncode == 1 and "Traceback" not in result.stderr and "unexpected" not in result.stderr
    assert result.stderr.startswith("error: templates/compose/service.yaml.j2 did not render one service (")
    assert "that YAML reads" in result.stderr and "hint: check the template" in result.stderr
    assert not (repo / "deploy-compose").exists()


def test_a_file_payload_sink_gets_a_volume(repo, modelops, edit_manifest):
    edit_manifest("iris", lambda data: data["deployments"]["staging"].update(payloads={"sink": "scored.jsonl"}))
    assert modelops("render", "--target", "compose").returncode == 0
    files = compose_files(repo / "deploy-compose")
    iris = files["staging"]["services"]["iris"]
    assert iris["environment"]["MODELOPS_PAYLOAD_DIR"] == "/var/lib/modelops/payloads"
    assert iris["volumes"] == [{"type": "volume", "target": "/var/lib/modelops/payloads"}]
    jsonschema.validate(files["staging"], SCHEMA, cls=jsonschema.Draft7Validator)
    assert "volumes" not in files["production"]["services"]["iris"]  # no file sink there


def test_a_bad_network_setting_is_one_clear_error(repo, modelops, monkeypatch):
    monkeypatch.setenv("MODELOPS_COMPOSE_NETWORK", "overlay")
    result = modelops("render", "--target", "compose")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "MODELOPS_COMPOSE_NETWORK: tool.modelops.compose_network: 'overlay' is not valid" in result.stderr
    assert "bridge (ports published) or host" in result.stderr
