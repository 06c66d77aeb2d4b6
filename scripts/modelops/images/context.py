"""Render a runner image's build context: Dockerfile, .dockerignore, requirements, runner, model.

Every value that reaches a template is validated here (names, versions, image references, digests
by pattern) or is free text that the templates quote (`| quote`); requirements never reach the
Dockerfile, they are files that pip reads, and each must be pinned with `==`.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

import modelops
from modelops import artifacts, settings, templates
from modelops.errors import ModelopsError
from modelops.files import check_folder
from modelops.images import wheel_strip
from modelops.manifest import requirements
from modelops.manifest.loading import LoadedManifest
from modelops.manifest.model import Manifest
from modelops.scan import sbom

PORT = 8080
UID = 10001
MODEL_DIR = "/model"
# The builder stage writes the image's SBOM with this tool, from a venv of its own (never in the image).
SBOM_TOOL = "cyclonedx-bom>=7,<8\n"


@dataclass(frozen=True)
class Target:
    """One image: a single version, or the versions that one or more deployments route to.

    A deployment image's tag is its versions joined by `_` (main, canary, shadows: `1.0.0_1.1.0_1.2.0`);
    it holds those environments' deployments and serves the first one unless MODELOPS_ENV says otherwise.
    """

    model: str
    versions: tuple[str, ...]     # every version the image serves, primary first
    envs: tuple[str, ...] = ()    # set for a deployment image

    @property
    def tag(self) -> str:
        return "_".join(self.versions)

    @property
    def primary(self) -> str:
        return self.versions[0]

    def serve_args(self) -> list[str]:
        return [] if self.envs else ["--version", self.primary]


def targets(m: Manifest, versions: tuple[str, ...] = (), envs: tuple[str, ...] = ()) -> list[Target]:
    """The images of a model: one per version, one per set of versions that deployments route to.

    With `versions` or `envs`, only those (an environment serving one version gets that version's image).
    """
    known = [v.version for v in m.versions]
    for number in versions:
        if number not in known:
            raise ModelopsError(f"{m.name} has no version {number}", hint=f"known versions are: {', '.join(known)}")
    for env in envs:
        if env not in m.deployments:
            raise ModelopsError(f"{m.name} has no deployment {env!r}",
                                hint=f"deployments are: {', '.join(m.deployments) or 'none'}")
    chosen: list[Target] = [Target(m.name, (v,)) for v in (versions or ([] if envs else known))]
    routed: dict[tuple[str, ...], list[str]] = {}
    for env, deployment in m.deployments.items():
        if (versions or envs) and env not in envs:
            continue
        routed.setdefault(served(deployment), []).append(env)
    for versions_served, names in routed.items():
        target = Target(m.name, versions_served, tuple(names) if len(versions_served) > 1 else ())
        if len(target.tag) > 110:
            raise ModelopsError(f"{m.name}: the image tag {target.tag!r} is too long",
                                hint="Docker tags hold 128 characters: route to fewer or shorter versions")
        if target not in chosen:
            chosen.append(target)
    return chosen


def served(deployment) -> tuple[str, ...]:
    """The versions a deployment routes to, main first (canary, then shadows), each once: its image's key."""
    return tuple(dict.fromkeys([deployment.version, *([deployment.canary.version] if deployment.canary else []),
                                *deployment.shadow]))


@dataclass
class Context:
    """A rendered build context and what the build needs to know about it."""

    path: Path
    target: Target
    labels: dict[str, str] = field(default_factory=dict)


def git_commit(root: Path) -> str:
    """HEAD's commit of the repository at `root`, or `unknown` outside git."""
    try:
        done = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                              check=False, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    commit = done.stdout.strip()
    return commit if done.returncode == 0 and re.fullmatch(r"[0-9a-f]{40,64}", commit) else "unknown"


def base_image(root: Path) -> str:
    """The base image from settings (checked there)."""
    return settings.load(root).base_image


def registry(root: Path) -> str:
    """The image registry (and path) from settings (checked there)."""
    return settings.load(root).image_registry


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


def _image_manifest(m: Manifest, target: Target, uris: dict[str, str]) -> dict:
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


def _fill(loaded: LoadedManifest, target: Target, root: Path, out: Path, wheels: Path | None,
          log: Callable[[str], None]) -> Context:
    m = loaded.manifest
    (out / "requirements").mkdir(parents=True)
    runner_txt, model_txt = out / "requirements" / "runner.txt", out / "requirements" / "model.txt"
    texts = requirement_texts(loaded)
    for path, text in zip((runner_txt, model_txt), texts, strict=True):
        path.write_text(text)
    (out / "requirements" / "sbom-tool.txt").write_text(SBOM_TOOL)
    (out / "wheels").mkdir()
    if wheels is not None:
        for wheel in wheel_strip.wheels(wheels, log):
            try:
                os.link(wheel, out / "wheels" / wheel.name)
            except OSError:
                shutil.copy2(wheel, out / "wheels" / wheel.name)
    _copy(Path(modelops.__file__).parent, out / "runner" / "modelops")

    model_out, uris, digests = out / "model", {}, {}
    for number in target.versions:
        entry = m.version(number)
        try:
            verified = artifacts.fetch(entry.artifact.uri, loaded.folder, entry.artifact.sha256)
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
        "org.opencontainers.image.revision": git_commit(root),
        "org.opencontainers.image.base.name": base_image(root),
        "io.modelops.model.name": m.name,
        "io.modelops.model.version": target.primary,
        "io.modelops.model.artifact.sha256": digests[target.primary],
        sbom.LABEL: sbom.IMAGE_PATH,
    }
    if target.envs:
        labels["io.modelops.deployments"] = ",".join(target.envs)
        labels["io.modelops.model.versions"] = ",".join(f"{v}={digests[v]}" for v in target.versions)
    command = ["python", "-m", "modelops", "serve", MODEL_DIR, *target.serve_args()]
    healthcheck = ["python", "-c", "import os, urllib.request; urllib.request.urlopen("
                   "'http://127.0.0.1:' + os.environ['PORT'] + '/health', timeout=4)"]
    values = {"model": m.name, "tag": target.tag, "base_image": base_image(root), "labels": labels,
              "command": command, "healthcheck": healthcheck, "port": PORT, "uid": UID, "sbom": sbom.IMAGE_PATH,
              "default_env": target.envs[0] if target.envs else ""}
    (out / "Dockerfile").write_text(templates.render("Dockerfile.j2", values, root, loaded.folder))
    (out / ".dockerignore").write_text(templates.render("dockerignore.j2", values, root, loaded.folder))
    return Context(path=out, target=target, labels=labels)


def render(loaded: LoadedManifest, target: Target, root: Path, out: Path, wheels: Path | None = None,
           log: Callable[[str], None] = print) -> Context:
    """Write the build context of `target` to `out` (replaced whole, never left half-written).

    The wheels of `wheels` go in with their shared libraries stripped (see `strip`); `log` tells when.
    """
    check_folder(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        context = _fill(loaded, target, root, staging, wheels, log)
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


def default_out(root: Path, target: Target) -> Path:
    """Where `render` writes a target's context by default: build/images/<model>-<tag>/."""
    return root / "build" / "images" / f"{target.model}-{target.tag}"
