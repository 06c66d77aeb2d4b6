"""The provenance of a pushed image: an in-toto Statement v1 with an SLSA Provenance v1 predicate.

What was built (the image's manifest digest) from what: the git commit, the manifest file, each served
version's artifact (and compiled graph), the base image and every wheel of the build context, each with
its sha256. `build --push` writes it beside the image's build context and attaches it to the image in the
registry (an OCI artifact whose subject is the image's manifest, see `oci`); `verify` reads it back.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from importlib.metadata import version as installed_version
from pathlib import Path

from packaging.utils import InvalidWheelFilename, parse_wheel_filename

from modelops.artifacts import file_sha256
from modelops.images import context as ctx
from modelops.images import oci
from modelops.manifest.loading import LoadedManifest
from modelops.reporter import Reporter
from modelops.workspace import Workspace

STATEMENT = "https://in-toto.io/Statement/v1"
PREDICATE = "https://slsa.dev/provenance/v1"
BUILD_TYPE = "urn:modelops:image-build:v1"
BUILDER = "urn:modelops:build"
ARTIFACT_TYPE = "application/vnd.in-toto+json"
PREDICATE_ANNOTATION = "in-toto.io/predicate-type"


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def wheels(folder: Path) -> list[dict]:
    """A resource descriptor (purl, file name, sha256) per wheel of a build context's `wheels/`."""
    found = []
    for wheel in sorted(folder.glob("*.whl")):
        try:
            name, number, _, _ = parse_wheel_filename(wheel.name)
        except InvalidWheelFilename:
            continue
        found.append({"name": wheel.name, "uri": f"pkg:pypi/{name}@{number}", "digest": {"sha256": file_sha256(wheel)}})
    return found


def _compiled(labels: dict[str, str]) -> dict[str, str]:
    """version -> compiled graph sha256, from a context's labels."""
    if ctx.COMPILED_VERSIONS_LABEL in labels:
        return dict(item.split("=", 1) for item in labels[ctx.COMPILED_VERSIONS_LABEL].split(","))
    if ctx.COMPILED_LABEL in labels:
        return {labels["io.modelops.model.version"]: labels[ctx.COMPILED_LABEL]}
    return {}


def _base(engine, image: str) -> dict:
    """The base image by its registry digest when it came from one, else by its local image id."""
    found = engine.api.inspect_image(image)
    pinned = [d for d in found.get("RepoDigests") or [] if "@sha256:" in d]
    digest = (pinned[0].rsplit("@", 1)[1] if pinned else found["Id"]).removeprefix("sha256:")
    return {"name": "base image", "uri": f"docker-image://{image}", "digest": {"sha256": digest},
            "annotations": {"digestOf": "manifest" if pinned else "image config (no registry digest)"}}


def statement(ws: Workspace, loaded: LoadedManifest, context: ctx.Context, engine, image_ref: str, digest: str,
              tags: list[str], started: str, finished: str) -> dict:
    """The provenance statement of the image `image_ref` pushed with manifest `digest` from `context`."""
    m, target = loaded.manifest, context.target
    dependencies = []
    if ws.commit != "unknown":
        dependencies.append({"name": "repository", "uri": f"git+{_repository_uri()}",
                             "digest": {"gitCommit": ws.commit}})
    dependencies.append({"name": "manifest", "uri": loaded.display,
                         "digest": {"sha256": file_sha256(loaded.folder / "model.yaml")}})
    graphs = _compiled(context.labels)
    for number in target.versions:
        entry = m.version(number)
        dependencies.append({"name": f"artifact {number}", "uri": entry.artifact.uri,
                             "digest": {"sha256": entry.artifact.sha256}})
        if number in graphs:
            dependencies.append({"name": f"compiled {number}", "uri": f"onnx:{number}",
                                 "digest": {"sha256": graphs[number]}})
    dependencies.append(_base(engine, ws.settings.base_image))
    dependencies += wheels(context.path / "wheels")
    metadata = {"startedOn": started, "finishedOn": finished}
    if os.environ.get("GITHUB_RUN_ID") and os.environ.get("GITHUB_REPOSITORY"):
        server = os.environ.get("GITHUB_SERVER_URL", "https://github.com")
        run = f"{os.environ['GITHUB_REPOSITORY']}/actions/runs/{os.environ['GITHUB_RUN_ID']}"
        metadata["invocationId"] = f"{server}/{run}"
    return {
        "_type": STATEMENT,
        "subject": [{"name": image_ref.rsplit(":", 1)[0], "digest": {"sha256": digest.removeprefix("sha256:")}}],
        "predicateType": PREDICATE,
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": {"model": m.name, "version": target.tag, "versions": list(target.versions),
                                       "environments": list(target.envs), "tags": tags},
                "internalParameters": {"baseImage": ws.settings.base_image, "labels": context.labels},
                "resolvedDependencies": dependencies,
            },
            "runDetails": {"builder": {"id": BUILDER, "version": {"modelops": installed_version("modelops")}},
                           "metadata": metadata},
        },
    }


def _repository_uri() -> str:
    """The repository's address in CI (GitHub's variables), else the checkout itself."""
    if os.environ.get("GITHUB_REPOSITORY"):
        return f"{os.environ.get('GITHUB_SERVER_URL', 'https://github.com')}/{os.environ['GITHUB_REPOSITORY']}"
    return "file:."


def same_build(a: dict, b: dict) -> bool:
    """True when two statements describe the same build (all but when and where it ran)."""
    return a.get("subject") == b.get("subject") and \
        a.get("predicate", {}).get("buildDefinition") == b.get("predicate", {}).get("buildDefinition")


def out_path(context_path: Path) -> Path:
    """Where a context's provenance is written: beside it, `<context>.provenance.json`."""
    return context_path.with_name(f"{context_path.name}.provenance.json")


def read(registry: oci.Distribution, repository: str, descriptor: dict) -> dict:
    """The statement an artifact manifest (one referrer `descriptor`) holds."""
    found = registry.manifest(repository, descriptor["digest"])
    manifest = json.loads(found[0]) if found else {}
    layers = [layer for layer in manifest.get("layers", []) if layer.get("mediaType") == ARTIFACT_TYPE]
    if len(layers) != 1:
        return {"_manifest": manifest}
    return {**json.loads(registry.blob(repository, layers[0]["digest"])), "_manifest": manifest}


def attach(statement_: dict, image_ref: str, digest: str, out: Path, reporter: Reporter) -> str:
    """Write the statement to `out` and attach it to the pushed image (kept when the registry already holds
    one of the same build: rebuilding an unchanged image pushes nothing); the artifact's manifest digest."""
    ref = oci.parse(image_ref)
    registry = oci.Distribution(ref.host)
    subject = registry.resolve(oci.Reference(ref.host, ref.repository, digest=digest))
    for descriptor in registry.referrers(ref.repository, digest):
        if descriptor.get("artifactType") == ARTIFACT_TYPE:
            held = read(registry, ref.repository, descriptor)
            if same_build(held, statement_):
                out.write_text(json.dumps({k: v for k, v in held.items() if k != "_manifest"}, indent=2) + "\n")
                reporter.progress(f"provenance of {image_ref}@{digest}: {descriptor['digest']} (unchanged)")
                return descriptor["digest"]
    payload = json.dumps(statement_, indent=2).encode() + b"\n"
    artifact = registry.attach(ref.repository, subject, payload, ARTIFACT_TYPE,
                               {PREDICATE_ANNOTATION: PREDICATE,
                                "org.opencontainers.image.created": statement_["predicate"]["runDetails"]
                                ["metadata"]["finishedOn"]})
    out.write_bytes(payload)
    reporter.progress(f"provenance of {image_ref}@{digest}: {artifact.digest}")
    return artifact.digest
