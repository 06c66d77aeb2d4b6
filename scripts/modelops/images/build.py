"""Build runner images with the Docker SDK (no network inside the build), tag and push them."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from modelops.errors import ModelopsError
from modelops.images import context as ctx
from modelops.images import provenance, wheelhouse
from modelops.images.targets import ImageTarget
from modelops.manifest.loading import LoadedManifest
from modelops.reporter import Reporter
from modelops.workspace import Workspace

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


@dataclass
class Image:
    """A built (and maybe pushed) image; `to_json` is one item of `build --format json`.

    `version` is the image's key: the version, or the served versions joined by `_` (see Target).
    """

    model: str
    version: str
    ref: str
    tags: list[str]
    id: str
    size: int
    digest: str | None = None
    versions: list[str] = field(default_factory=list)
    deployments: list[str] = field(default_factory=list)
    compiled_sha256: str = ""  # a compiled image: the sha256 of its primary version's ONNX graph
    provenance: str | None = None  # after a push: the digest of its provenance artifact in the registry

    def to_json(self) -> dict:
        return asdict(self)


def client():  # -> docker.DockerClient
    """A Docker client for DOCKER_HOST (or the default socket), or a clear error when no engine answers."""
    import docker

    try:
        engine = docker.from_env(timeout=600)
        engine.ping()
        return engine
    except docker.errors.DockerException as exc:
        where = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
        raise ModelopsError(f"cannot reach the Docker engine at {where}: {str(exc)[:200]}",
                            hint="start dockerd, or set DOCKER_HOST to an engine that runs") from None


def ensure_base(engine, image: str, reporter: Reporter) -> None:
    """Pull the base image once when the engine does not have it (builds themselves never pull)."""
    import docker.errors

    try:
        engine.images.get(image)
        return
    except docker.errors.ImageNotFound:
        pass
    reporter.progress(f"pulling the base image {image}")
    try:
        engine.images.pull(image)
    except docker.errors.DockerException as exc:
        raise ModelopsError(f"base image {image} is not in the Docker engine and cannot be pulled: "
                            f"{str(exc)[:200]}",
                            hint="load it (docker load / docker import), or set MODELOPS_BASE_IMAGE to an image "
                                 "the engine has") from None


def tags(registry: str, target: ImageTarget, commit: str) -> list[str]:
    """`<registry>/<name>:<tag>` and, in git, `:<tag>-<short commit>`."""
    repository = f"{registry}/{target.model}"
    refs = [f"{repository}:{target.tag}"]
    if commit != "unknown":
        refs.append(f"{repository}:{target.tag}-{commit[:12]}")
    return refs


def _stream(events: Iterator[dict], reporter: Reporter) -> str:
    """Follow a build's events: one line per finished step (seconds, cached or not); the image id."""
    image_id, step, started, cached, output = "", "", time.monotonic(), False, []

    def close() -> None:
        if step:
            state = "from  " if " : FROM " in f" {step}" else "cached" if cached else "built "
            reporter.progress(f"  {time.monotonic() - started:6.1f}s {state} {step}")

    for event in events:
        if "errorDetail" in event or "error" in event:
            message = (event.get("errorDetail") or {}).get("message") or event.get("error", "")
            tail = "\n".join(f"    {line}" for line in output[-15:])
            raise ModelopsError(f"the image build failed at {step or 'the start'}: {message.strip()}"
                                + (f"\n  last output:\n{tail}" if tail else ""),
                                hint="fix the requirements or the template; the wheelhouse must hold a "
                                     "wheel for every package (the build has no network)")
        if "aux" in event and "ID" in event["aux"]:
            image_id = event["aux"]["ID"]
        text = event.get("stream", "")
        for line in text.splitlines():
            if line.startswith("Step "):
                close()
                step, started, cached, output = line[5:][:110], time.monotonic(), False, []
            elif "Using cache" in line:
                cached = True
            elif line.strip() and not line.startswith(" ---> "):
                output.append(_ANSI.sub("", line).rstrip())
    close()
    if not image_id:
        raise ModelopsError("the build ended without an image", hint="see the engine's log")
    return image_id


def build_context(engine, context: ctx.Context, refs: list[str], reporter: Reporter, nocache: bool = False) -> Image:
    """Build a rendered context with no network and tag it with `refs` (`nocache`: no layer from an earlier build)."""
    import docker.errors

    target = context.target
    reporter.progress(f"building {refs[0]}")
    try:
        events = engine.api.build(path=str(context.path), tag=refs[0], network_mode="none", rm=True,
                                  forcerm=True, pull=False, nocache=nocache, decode=True)
        image_id = _stream(events, reporter)
        for ref in refs[1:]:
            repository, tag = ref.rsplit(":", 1)
            engine.api.tag(image_id, repository, tag)
        size = engine.api.inspect_image(image_id)["Size"]
    except docker.errors.APIError as exc:
        raise ModelopsError(f"the Docker engine refused the build of {refs[0]}: {exc.explanation or exc}",
                            hint="is the base image present in the engine (no hub is pulled from)?") from None
    reporter.progress(f"built {refs[0]} ({size / 1e6:.0f} MB)")
    return Image(model=target.model, version=target.tag, ref=refs[0], tags=refs, id=image_id, size=size,
                 versions=list(target.versions), deployments=list(target.envs),
                 compiled_sha256=context.labels.get(ctx.COMPILED_LABEL, ""))


def auth_config() -> dict | None:
    """Registry credentials from MODELOPS_REGISTRY_USERNAME/PASSWORD; None lets Docker's config decide."""
    user, password = os.environ.get("MODELOPS_REGISTRY_USERNAME"), os.environ.get("MODELOPS_REGISTRY_PASSWORD")
    if user and password:
        return {"username": user, "password": password}
    return None


def push(engine, image: Image, reporter: Reporter) -> str:
    """Push every tag of `image`; returns the registry's manifest digest."""
    import docker.errors

    digest = None
    for ref in image.tags:
        repository, tag = ref.rsplit(":", 1)
        reporter.progress(f"pushing {ref}")
        try:
            for event in engine.api.push(repository, tag=tag, stream=True, decode=True, auth_config=auth_config()):
                if "errorDetail" in event or "error" in event:
                    message = (event.get("errorDetail") or {}).get("message") or event.get("error", "")
                    raise ModelopsError(f"push of {ref} refused: {message}",
                                        hint="set MODELOPS_REGISTRY_USERNAME and MODELOPS_REGISTRY_PASSWORD, "
                                             "or `docker login` the registry (never credentials in git)")
                digest = (event.get("aux") or {}).get("Digest", digest)
        except docker.errors.APIError as exc:
            raise ModelopsError(f"push of {ref} failed: {exc.explanation or exc}",
                                hint="check the registry address and that it is reachable") from None
    if not digest:
        raise ModelopsError(f"the registry gave no digest for {image.ref}")
    reporter.progress(f"pushed {image.ref}@{digest}")
    image.digest = digest
    return digest


def build(ws: Workspace, loaded: LoadedManifest, targets: list[ImageTarget], *, push_images: bool = False,
          wheels: Path | None = None) -> list[Image]:
    """Render, build (and push) each target of one model; every image is tagged, each digest recorded."""
    engine = client()
    base, registry, reporter = ws.settings.base_image, ws.settings.image_registry, ws.reporter
    ensure_base(engine, base, reporter)
    images = []
    for target in targets:
        started = provenance.now()
        house = wheels or wheelhouse.prepare(ctx.requirement_texts(loaded, target, ws.trust),
                                             wheelhouse.probe(engine, base), reporter,
                                             separately=(ctx.sbom_tool_requirements(),))
        context = ctx.render(ws, loaded, target, ctx.default_out(ws.root, target), wheels=house)
        image = build_context(engine, context, tags(registry, target, ws.commit), reporter)
        if push_images:
            digest = push(engine, image, reporter)
            statement = provenance.statement(ws, loaded, context, engine, image.ref, digest, image.tags, started,
                                             provenance.now())
            image.provenance = provenance.attach(statement, image.ref, digest, provenance.out_path(context.path),
                                                 reporter)
        images.append(image)
    return images
