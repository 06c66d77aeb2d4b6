"""render: hadolint-clean Dockerfiles, values that cannot become instructions, per-model templates."""

from __future__ import annotations

import copy
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from dockerfile_parse import DockerfileParser

from modelops.errors import ModelopsError
from modelops.images import context
from modelops.images.targets import targets
from modelops.workspace import Workspace
from tests.conftest import run_cli

HADOLINT = Path(sys.executable).parent / "hadolint"


def _instructions(dockerfile: Path) -> list[tuple[str, str]]:
    parser = DockerfileParser(path=str(dockerfile))
    return [(i["instruction"], i["value"]) for i in parser.structure if i["instruction"] != "COMMENT"]


def _render(repo: Path, model: str, *args: str) -> list[Path]:
    result = run_cli("render", f"models/{model}", *args, cwd=repo)
    assert result.code == 0, result.err
    return [Path(line) for line in result.out.split()]


def test_environments_routing_to_the_same_versions_share_one_image(repo: Path) -> None:
    path = repo / "models" / "iris" / "model.yaml"
    data = yaml.safe_load(path.read_text())
    data["deployments"]["staging"] = {**copy.deepcopy(data["deployments"]["production"]),
                                      "canary": {"version": "1.1.0", "weight": 50}}
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    (folder,) = _render(repo, "iris", "--env", "staging", "--env", "production")
    served = yaml.safe_load((folder / "model" / "model.yaml").read_text())
    assert served["deployments"]["staging"]["canary"]["weight"] == 50 and "production" in served["deployments"]
    assert " MODELOPS_ENV=staging\n" in (folder / "Dockerfile").read_text()  # the first; MODELOPS_ENV picks


def test_a_version_image_serves_the_environments_that_route_to_it_alone(repo: Path) -> None:
    """Kubernetes runs `serve /model --env staging` on iris 1.2.0's image (staging serves 1.2.0 alone); a KServe
    revision of production's canary runs 1.1.0's image with `--version 1.1.0` and MODELOPS_ENV=production."""
    from modelops.runner.loading import resolve

    manifest = repo / "models" / "iris" / "model.yaml"
    manifest.write_text(manifest.read_text().replace("    shadow: [1.2.0]\n", "    shadow: [1.2.0]\n"
                                                     "    payloads: {sink: stdout}\n"))
    contexts = {c.name: c for c in _render(repo, "iris")}
    staging = yaml.safe_load((contexts["iris-1.2.0"] / "model" / "model.yaml").read_text())
    assert list(staging["deployments"]) == ["staging"]
    canary = yaml.safe_load((contexts["iris-1.1.0"] / "model" / "model.yaml").read_text())
    assert list(canary["deployments"]) == ["production"]  # its canary: a KServe revision of production
    revision = resolve(str(contexts["iris-1.1.0"] / "model"), "production", "1.1.0")
    assert (revision.environment, revision.primary, revision.canary, revision.shadows) == ("production", "1.1.0",
                                                                                           None, ())
    assert revision.payloads is not None and revision.payloads.sink == "stdout"  # production's payload logging
    assert resolve(str(contexts["iris-1.1.0"] / "model"), "staging", "1.1.0").environment == ""
    served = resolve(str(contexts["iris-1.2.0"] / "model"), "staging")
    assert (served.environment, served.primary, served.canary, served.shadows) == ("staging", "1.2.0", None, ())
    dockerfile = (contexts["iris-1.2.0"] / "Dockerfile").read_text()
    assert dockerfile.endswith('"serve", "/model", "--version", "1.2.0"]\n')  # docker run without MODELOPS_ENV


def test_every_rendered_dockerfile_is_hadolint_clean(repo: Path) -> None:
    contexts = _render(repo, "iris") + _render(repo, "diabetes")
    assert [c.name for c in contexts] == ["iris-1.0.0", "iris-1.1.0", "iris-1.2.0", "iris-1.0.0_1.1.0_1.2.0",
                                          "diabetes-1.0.0"]
    for folder in contexts:
        lint = subprocess.run([str(HADOLINT), str(folder / "Dockerfile")], capture_output=True, text=True)
        assert (lint.returncode, lint.stdout) == (0, ""), lint.stdout
        names = [name for name, _ in _instructions(folder / "Dockerfile")]
        assert names.count("FROM") == 2 and names[-1] == "CMD" and "HEALTHCHECK" in names and "USER" in names
        assert "/ready'" in dict(_instructions(folder / "Dockerfile"))["HEALTHCHECK"]  # readiness, not liveness


def test_context_holds_the_model_runner_and_requirements(repo: Path) -> None:
    (folder,) = _render(repo, "iris", "--env", "production")
    served = yaml.safe_load((folder / "model" / "model.yaml").read_text())
    assert [v["version"] for v in served["versions"]] == ["1.0.0", "1.1.0", "1.2.0"]
    assert list(served["deployments"]) == ["production"]
    assert (folder / "model" / "artifacts" / "1.1.0" / "MLmodel").is_file()
    assert (folder / "runner" / "modelops" / "cli.py").is_file()
    assert "scikit-learn==" in (folder / "requirements" / "model.txt").read_text()
    assert folder.name == "iris-1.0.0_1.1.0_1.2.0"
    dockerfile = (folder / "Dockerfile").read_text()
    assert " MODELOPS_ENV=production\n" in dockerfile and dockerfile.endswith('"serve", "/model"]\n')
    # rendering again replaces the context with identical files
    before = {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    _render(repo, "iris", "--env", "production")
    assert before == {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


INJECTIONS = [
    "Classifier\nRUN touch /pwned",
    "ends with a continuation \\\nRUN touch /pwned",
    'quote " then $(touch /pwned) and ${HOME} and `id`',
    "\\",
]


@pytest.mark.parametrize("description", INJECTIONS)
def test_a_description_cannot_add_an_instruction(repo: Path, description: str) -> None:
    clean = _instructions(_render(repo, "diabetes")[0] / "Dockerfile")
    path = repo / "models" / "diabetes" / "model.yaml"
    data = yaml.safe_load(path.read_text())
    data["description"] = description
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    dockerfile = _render(repo, "diabetes")[0] / "Dockerfile"
    attacked = _instructions(dockerfile)
    assert [name for name, _ in attacked] == [name for name, _ in clean]
    assert not any(name == "RUN" and "pwned" in value for name, value in attacked)


@pytest.mark.parametrize("line", ["scikit-learn==1.9.1 \\", "numpy>=2", "--index-url http://evil.example/simple",
                                  "$(touch /pwned)"])
def test_an_unpinned_or_odd_requirement_is_refused(repo: Path, line: str) -> None:
    (repo / "models" / "diabetes" / "requirements.txt").write_text(f"skops==0.16.0\n{line}\n")
    result = run_cli("render", "models/diabetes", cwd=repo)
    assert result.code == 1
    assert result.err.startswith("models/diabetes/requirements.txt:2: requirements: ")
    assert "Traceback" not in result.err
    assert not (repo / "build" / "images" / "diabetes-1.0.0").exists()


def test_requirements_never_reach_the_dockerfile(repo: Path) -> None:
    first = (_render(repo, "diabetes")[0] / "Dockerfile").read_text()
    (repo / "models" / "diabetes" / "requirements.txt").write_text("skops==0.16.0 ; python_version >= '3'\n")
    assert (_render(repo, "diabetes")[0] / "Dockerfile").read_text() == first


@pytest.mark.parametrize("value", ["python:3.11\nRUN touch /pwned", "python 3.11", "python:3.11 AS x"])
def test_a_bad_base_image_setting_is_refused(repo: Path, value: str) -> None:
    result = run_cli("render", "models/diabetes", cwd=repo, env={"MODELOPS_BASE_IMAGE": value})
    assert result.code == 1 and "MODELOPS_BASE_IMAGE: tool.modelops.base_image: " in result.err
    assert "is not valid" in result.err and "Traceback" not in result.err


def test_a_model_folder_template_overrides_the_default(repo: Path) -> None:
    shutil.copyfile(repo / "templates" / "Dockerfile.j2", repo / "models" / "diabetes" / "Dockerfile.j2")
    with (repo / "models" / "diabetes" / "Dockerfile.j2").open("a") as handle:
        handle.write("# custom template of {{ model }}\n")
    text = (_render(repo, "diabetes")[0] / "Dockerfile").read_text()
    assert text.endswith("# custom template of diabetes\n")
    assert "Dockerfile.j2" not in {p.name for p in (repo / "build" / "images" / "diabetes-1.0.0" / "model").iterdir()}


def test_a_template_is_sandboxed_and_strict(repo: Path) -> None:
    template = repo / "models" / "diabetes" / "Dockerfile.j2"
    template.write_text("FROM {{ base_image }}\nRUN echo {{ ''.__class__.__mro__[1].__subclasses__() }}\n")
    ws = Workspace(repo)
    loaded = ws.manifest(repo / "models" / "diabetes")
    target = targets(loaded.manifest)[0]
    with pytest.raises(ModelopsError, match="template error"):
        context.render(ws, loaded, target, repo / "out")
    template.write_text("FROM {{ base_imag }}\n")
    result = run_cli("render", "models/diabetes", cwd=repo)
    assert result.code == 1 and "base_imag" in result.err and "Dockerfile.j2" in result.err
