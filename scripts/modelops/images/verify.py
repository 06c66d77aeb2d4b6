"""Verify a pushed image: its labels, SBOM and provenance agree with the registry and with one another.

From the image registry: the manifest digest the reference names, the image's labels (its config blob) and
every provenance artifact referring to it. Each provenance must name that digest as its subject and hold
the labels the image carries (model, version, artifact and compiled digests, git commit); the tag must be
the image's own (a re-tagged image is refused); the SBOM the image carries must list each package with the
sha256 of a wheel the provenance lists; and what MLflow records (`recorded`) must name the same image and
provenance digests. Each disagreement is one located problem.
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from packaging.utils import canonicalize_name

from modelops.errors import ModelopsError, Problem
from modelops.images import oci, provenance
from modelops.reporter import Reporter
from modelops.scan import sbom

COMMIT_SUFFIX = re.compile(r"-[0-9a-f]{12}$")
NAME, VERSION, KEY = "io.modelops.model.name", "io.modelops.model.version", "org.opencontainers.image.version"
ARTIFACT, REVISION = "io.modelops.model.artifact.sha256", "org.opencontainers.image.revision"
# (model, image key, environments) -> what MLflow records: {"image": ref@digest, "provenance": name@digest,
# "sha256": the primary version's artifact digest}, each "" when not recorded
Recorded = Callable[[str, str, list[str]], dict[str, str]]


@dataclass
class Verified:
    """What a passing verification saw."""

    ref: str
    digest: str
    provenance: list[str]
    packages: int

    def to_json(self) -> dict:
        return asdict(self)


def _labels(registry: oci.Distribution, ref: oci.Reference, digest: str) -> dict[str, str]:
    found = registry.manifest(ref.repository, digest)
    manifest = json.loads(found[0]) if found else {}
    if "config" not in manifest:
        raise ModelopsError(f"{ref.name}@{digest} is not a single image manifest (an index?)",
                            file=ref.name, hint="verify the runner image modelops build pushed")
    config = json.loads(registry.blob(ref.repository, manifest["config"]["digest"]))
    return dict((config.get("config") or {}).get("Labels") or {})


def _dependency(statement: dict, name: str) -> str:
    for entry in statement.get("predicate", {}).get("buildDefinition", {}).get("resolvedDependencies", []):
        if entry.get("name") == name:
            return str((entry.get("digest") or {}).get("sha256") or (entry.get("digest") or {}).get("gitCommit", ""))
    return ""


def _statement_problems(where: str, statement: dict, digest: str, labels: dict[str, str]) -> list[Problem]:
    """How one provenance statement disagrees with the image (its digest and labels)."""
    def problem(field: str, message: str) -> Problem:
        return Problem(file=where, field=field, message=message,
                       hint="the provenance was not made for this image: rebuild and push it with "
                            "modelops build --push, and find who pushed this one")

    manifest = statement.get("_manifest", {})
    if (manifest.get("subject") or {}).get("digest") != digest:
        return [problem("subject", f"the artifact refers to {(manifest.get('subject') or {}).get('digest')}, "
                                   f"not to the image {digest}")]
    if statement.get("_type") != provenance.STATEMENT or statement.get("predicateType") != provenance.PREDICATE:
        return [problem("predicateType", f"not an in-toto SLSA provenance v1 statement "
                                         f"({statement.get('predicateType')!r})")]
    problems = []
    subjects = [s.get("digest", {}).get("sha256") for s in statement.get("subject", [])]
    if subjects != [digest.removeprefix("sha256:")]:
        problems.append(problem("subject", f"names {', '.join(map(str, subjects)) or 'nothing'}, not {digest}"))
    definition = statement.get("predicate", {}).get("buildDefinition", {})
    built = definition.get("internalParameters", {}).get("labels", {})
    for key in sorted(set(built) | set(labels)):
        if built.get(key) != labels.get(key):
            problems.append(problem(f"labels.{key}", f"the image's label is {labels.get(key)!r}, the provenance "
                                                     f"says {built.get(key)!r}"))
    parameters = definition.get("externalParameters", {})
    primary = (parameters.get("versions") or [""])[0]
    for field, have, want in (("externalParameters.model", parameters.get("model"), labels.get(NAME)),
                              ("externalParameters.version", parameters.get("version"), labels.get(KEY)),
                              ("externalParameters.versions", primary, labels.get(VERSION)),
                              (f"resolvedDependencies[artifact {primary}]",
                               _dependency(statement, f"artifact {primary}"), labels.get(ARTIFACT)),
                              ("resolvedDependencies[repository]", _dependency(statement, "repository") or "unknown",
                               labels.get(REVISION))):
        if have != want:
            problems.append(problem(field, f"the provenance says {have!r}, the image's label {want!r}"))
    return problems


def _sbom_problems(where: str, found: dict[tuple[str, str], str], statements: list[dict]) -> list[Problem]:
    """How the image's SBOM disagrees with the wheels each provenance lists."""
    problems = []
    for statement in statements:
        wheels: dict[tuple[str, str], set[str]] = {}
        for entry in statement.get("predicate", {}).get("buildDefinition", {}).get("resolvedDependencies", []):
            uri = str(entry.get("uri", ""))
            if uri.startswith("pkg:pypi/"):
                name, _, number = uri.removeprefix("pkg:pypi/").partition("@")
                digest = (entry.get("digest") or {}).get("sha256")
                wheels.setdefault((canonicalize_name(name), number), set()).add(digest)
        for (name, number), digest in sorted(found.items()):
            listed = wheels.get((name, number))
            if not digest:
                message = "the SBOM gives no sha256 of its wheel (an image built before provenance?)"
            elif listed is None:
                message = "is in the image's SBOM, but no wheel of the provenance is"
            elif digest not in listed:
                message = f"the SBOM's wheel sha256 is {digest}, the provenance's {', '.join(sorted(map(str, listed)))}"
            else:
                continue
            problems.append(Problem(file=where, field=f"sbom.{name}=={number}", message=message,
                                    hint="the image does not hold what its provenance says was built into it: "
                                         "rebuild and push it"))
    return problems


def _recorded_problems(where: str, ref: oci.Reference, digest: str, labels: dict[str, str], artifacts: list[str],
                       recorded: Recorded) -> list[Problem]:
    """How MLflow's record of the image the reference names (by its tag, else by the image's labels) disagrees."""
    key = COMMIT_SUFFIX.sub("", ref.tag) if ref.tag else labels.get(KEY, "")
    envs = [e for e in labels.get("io.modelops.deployments", "").split(",") if e]
    record = recorded(labels.get(NAME, ""), key, envs)
    problems = []
    hint = "run modelops apply --build --push, which records the pushed images (or find who moved the tag)"
    if not record.get("image"):
        return [Problem(file=where, field="mlflow", message=f"MLflow records no image for {labels.get(NAME)} {key}",
                        hint=hint)]
    if record["image"] != f"{ref.name}:{key}@{digest}":
        problems.append(Problem(file=where, field="mlflow.image", message=f"MLflow records {record['image']}, "
                                f"the registry serves {ref.name}:{key}@{digest}", hint=hint))
    if record.get("provenance", "").rpartition("@")[2] not in artifacts:
        problems.append(Problem(file=where, field="mlflow.provenance",
                                message=f"MLflow records the provenance {record.get('provenance') or 'nothing'}, the "
                                        f"registry holds {', '.join(artifacts)}", hint=hint))
    if record.get("sha256") and record["sha256"] != labels.get(ARTIFACT) and key == labels.get(KEY):
        problems.append(Problem(file=where, field="mlflow.sha256", message=f"MLflow registers the artifact "
                                f"{record['sha256']}, the image holds {labels.get(ARTIFACT)}", hint=hint))
    return problems


def _local_sbom(engine, ref: oci.Reference, digest: str, out: Path, reporter: Reporter) -> Path:
    """The SBOM the image carries, from the engine (pulled by digest when it lacks the image)."""
    import docker.errors

    pinned = f"{ref.name}@{digest}"
    try:
        engine.images.get(pinned)
    except docker.errors.ImageNotFound:
        reporter.progress(f"pulling {pinned}")
        try:
            engine.images.pull(pinned)
        except docker.errors.APIError as exc:
            raise ModelopsError(f"cannot pull {pinned}: {exc.explanation or exc}", file=ref.name,
                                hint="docker login the registry, or check that the image is there") from None
    return sbom.from_image(pinned, out)


def verify(engine, subject: str, recorded: Recorded, reporter: Reporter) -> Verified:
    """Check one image reference (see the module); raises a ModelopsError listing every disagreement."""
    ref = oci.parse(subject)
    registry = oci.Distribution(ref.host)
    digest = registry.resolve(ref).digest
    if ref.digest and ref.digest != digest:
        raise ModelopsError(f"the registry's digest is {digest}", file=subject, field="digest")
    labels = _labels(registry, ref, digest)
    problems = []
    if ref.tag and COMMIT_SUFFIX.sub("", ref.tag) != labels.get(KEY):
        problems.append(Problem(file=subject, field="tag", message=f"the tag {ref.tag} names the image of "
                                f"{labels.get(NAME)} {labels.get(KEY)} (re-tagged?)",
                                hint="push the image modelops build made for this tag; find who moved it"))
    descriptors = [d for d in registry.referrers(ref.repository, digest)
                   if d.get("artifactType") == provenance.ARTIFACT_TYPE]
    if not descriptors:
        raise ModelopsError.of([*problems, Problem(file=subject, field="provenance",
                                message=f"no provenance refers to {ref.name}@{digest}",
                                hint="push it with modelops build --push (or apply --build --push)")])
    statements = [provenance.read(registry, ref.repository, d) for d in descriptors]
    artifacts = [d["digest"] for d in descriptors]
    for descriptor, statement in zip(descriptors, statements, strict=True):
        problems += _statement_problems(f"{subject} (provenance {descriptor['digest'][:19]})", statement, digest,
                                        labels)
    problems += _recorded_problems(subject, ref, digest, labels, artifacts, recorded)
    with tempfile.TemporaryDirectory(prefix="modelops-verify-") as tmp:
        path = _local_sbom(engine, ref, digest, Path(tmp) / "sbom.cdx.json", reporter)
        found = sbom.wheel_hashes(path, f"{subject}:{sbom.IMAGE_PATH}")
    problems += _sbom_problems(subject, found, statements)
    if problems:
        raise ModelopsError.of(problems)
    reporter.progress(f"verify {subject}@{digest}: labels, provenance ({len(artifacts)}), SBOM ({len(found)} "
                      "packages) and MLflow agree: ok")
    return Verified(ref=subject, digest=digest, provenance=artifacts, packages=len(found))
