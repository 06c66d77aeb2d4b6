"""Render a runner image's build context: Dockerfile, .dockerignore, requirements, runner, model.

Every value that reaches a template is validated here (names, versions, image references, digests
by pattern) or is free text that the templates quote (`| quote`); requirements never reach the
Dockerfile, they are files that pip reads, and each must be pinned with `==`.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import yaml

import modelops
from modelops import templates
from modelops.errors import ModelopsError
from modelops.files import check_folder
from modelops.images import wheel_strip
from modelops.images.targets import ImageTarget
from modelops.manifest import requirements
from modelops.manifest.loading import LoadedManifest
from modelops.manifest.model import Manifest
from modelops.scan import sbom
from modelops.workspace import Workspace

PORT = 8080
UID = 10001
MODEL_DIR = "/model"
# Healthy = ready: a runner still loading, that cannot load, or shutting down answers /ready 503 (no curl needed).
HEALTHCHECK = ["python", "-c", "import os, urllib.request; urllib.request.urlopen("
               "'http://127.0.0.1:' + os.environ['PORT'] + '/ready', timeout=4)"]
# The builder stage writes the image's SBOM with this tool, from a venv of its own (never in the image).
SBOM_TOOL = "cyclonedx-bom>=7,<8\n"


@dataclass
class Context:
    """A rendered build context and what the build needs to know about it."""

    path: Path
    target: ImageTarget
    labels: dict[str, str] = field(default_factory=dict)


def runner_requirements() -> str:
    """The runner's own requirements (modelops/runner/requirements.txt)."""
    return (Path(modelops.__file__).parent / "runner" / "requirements.txt").read_text()


def model_requirements(loaded: LoadedManifest) -> str:
    """The model's requirements file, refused unless every line is pinned with `==`."""
    text = loaded.read("requirements")
    _, problems = requirements.parse(loaded, text)
    if problems:
        raise ModelopsError.of(problems)
    return text


def requirement_texts(loaded: LoadedManifest) -> list[str]:
    """The requirements an image installs: the runner's, then the model's."""
    return [runner_requirements(), model_requirements(loaded)]


def _image_manifest(m: Manifest, target: ImageTarget, uris: dict[str, str]) -> dict:
    """The manifest as the image sees it: only the versions it serves, artifacts at their /model paths."""
    data = m.model_dump(mode="json", exclude_defaults=True)
    data["versions"] = [{**v, "artifact": {**v["artifact"], "uri": uris[v["version"]]}}
                        for v in data["versions"] if v["version"] in target.versions]
    data["deployments"] = {env: data["deployments"][env] for env in target.envs}
    if not data["deployments"]:
        del data["deployments"]
    return data


def _copy(source: Path, destination: Path) -> None:
    if source.is_dir():
        shutil.copytree(source, destination, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    else:
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, destination)


def _fill(ws: Workspace, loaded: LoadedManifest, target: ImageTarget, out: Path, wheels: Path | None) -> Context:
    m, root, base_image = loaded.manifest, ws.root, ws.settings.base_image
    (out / "requirements").mkdir(parents=True)
    runner_txt, model_txt = out / "requirements" / "runner.txt", out / "requirements" / "model.txt"
    texts = requirement_texts(loaded)
    for path, text in zip((runner_txt, model_txt), texts, strict=True):
        path.write_text(text)
    (out / "requirements" / "sbom-tool.txt").write_text(SBOM_TOOL)
    (out / "wheels").mkdir()
    if wheels is not None:
        for wheel in wheel_strip.wheels(wheels, ws.reporter):
            try:
                os.link(wheel, out / "wheels" / wheel.name)
            except OSError:
                shutil.copy2(wheel, out / "wheels" / wheel.name)
    _copy(Path(modelops.__file__).parent, out / "runner" / "modelops")

    model_out, uris, digests = out / "model", {}, {}
    for number in target.versions:
        entry = m.version(number)
        try:
            verified = ws.fetch(entry.artifact.uri, loaded.folder, entry.artifact.sha256)
        except ModelopsError as exc:
            index = [v.version for v in m.versions].index(number)
            raise ModelopsError(exc.problem.message, file=loaded.display,
                                line=loaded.line("versions", index, "artifact"),
                                field=f"versions[{index}].artifact", hint=exc.problem.hint) from None
        relative = f"artifacts/{number}/" + ("" if verified.is_dir() else verified.name)
        _copy(verified, model_out / relative)
        uris[number], digests[number] = relative, entry.artifact.sha256
    (model_out / m.requirements).write_text(texts[1])
    if m.example:
        (model_out / m.example).write_text(loaded.read("example"))
    (model_out / "model.yaml").write_text(
        "# The manifest as this image serves it (rendered by modelops).\n"
        + yaml.safe_dump(_image_manifest(m, target, uris), sort_keys=False))

    labels = {
        "org.opencontainers.image.title": f"{m.name} model runner",
        "org.opencontainers.image.description": m.description,
        "org.opencontainers.image.version": target.tag,
        "org.opencontainers.image.revision": ws.commit,
        "org.opencontainers.image.base.name": base_image,
        "io.modelops.model.name": m.name,
        "io.modelops.model.version": target.primary,
        "io.modelops.model.artifact.sha256": digests[target.primary],
        sbom.LABEL: sbom.IMAGE_PATH,
    }
    if target.envs:
        labels["io.modelops.deployments"] = ",".join(target.envs)
        labels["io.modelops.model.versions"] = ",".join(f"{v}={digests[v]}" for v in target.versions)
    command = ["python", "-m", "modelops", "serve", MODEL_DIR, *target.serve_args()]
    values = {"model": m.name, "tag": target.tag, "base_image": base_image, "labels": labels,
              "command": command, "healthcheck": HEALTHCHECK, "port": PORT, "uid": UID, "sbom": sbom.IMAGE_PATH,
              "default_env": target.envs[0] if target.envs else ""}
    (out / "Dockerfile").write_text(templates.render("Dockerfile.j2", values, root, loaded.folder))
    (out / ".dockerignore").write_text(templates.render("dockerignore.j2", values, root, loaded.folder))
    return Context(path=out, target=target, labels=labels)


def render(ws: Workspace, loaded: LoadedManifest, target: ImageTarget, out: Path, wheels: Path | None = None
           ) -> Context:
    """Write the build context of `target` to `out` (replaced whole, never left half-written).

    The wheels of `wheels` go in with their shared libraries stripped (see `wheel_strip`).
    """
    check_folder(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        context = _fill(ws, loaded, target, staging, wheels)
        old = out.with_name(f".{out.name}-old")
        shutil.rmtree(old, ignore_errors=True)
        if out.exists():
            out.rename(old)
        staging.rename(out)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    context.path = out
    return context


def default_out(root: Path, target: ImageTarget) -> Path:
    """Where `render` writes a target's context by default: build/images/<model>-<tag>/."""
    return root / "build" / "images" / f"{target.model}-{target.tag}"
