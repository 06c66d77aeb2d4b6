"""Runner images recorded in the registry: which image each version and each environment runs.

- model version tag `modelops.image` = `<image_registry>/<name>:<version>@sha256:…`, the version's image;
  a version served compiled also gets `modelops.compiled_sha256`, its image's ONNX graph (next to the
  artifact's `modelops.sha256`);
- registered model tag `modelops.image.<env>` = `<image_registry>/<name>:<key>@sha256:…`, the image that
  serves the environment (`key`: the versions it routes to joined by `_`; one version: that version's image);
- next to each image reference, `modelops.provenance` (a version's) and `modelops.provenance.<env>` =
  `<image_registry>/<name>@sha256:…`, the image's provenance artifact in the image registry (`build --push`).

A reference names its tag and its registry digest, so it pulls by digest and tells which versions it
holds: a reference whose tag no longer matches git's routing (a promotion) counts as missing. Pure: no I/O.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelops.images.targets import served
from modelops.registry.plan import Action
from modelops.registry.projection import SHA256, ActualModel, ActualVersion, DesiredModel

if TYPE_CHECKING:
    from modelops.images.build import Image

IMAGE = "modelops.image"
COMPILED_SHA256 = "modelops.compiled_sha256"
ENV_IMAGE = "modelops.image."
PROVENANCE = "modelops.provenance"
ENV_PROVENANCE = "modelops.provenance."

Slot = tuple[str, str]  # ("version", semantic version) or ("env", environment)


def slots(model: DesiredModel) -> dict[Slot, str]:
    """Every image tag the model should carry, and the key of the image it names."""
    m = model.manifest
    wanted: dict[Slot, str] = {("version", v.version): v.version for v in m.versions}
    wanted |= {("env", env): "_".join(served(d)) for env, d in m.deployments.items()}
    return wanted


def manages_images(actual: ActualModel | None) -> bool:
    """True when an image was ever recorded on the model (`apply --build --push` manages its images)."""
    return actual is not None and (any(k.startswith(ENV_IMAGE) for k in actual.tags)
                                   or any(IMAGE in v.tags for v in actual.versions))


def missing(model: DesiredModel, actual: ActualModel | None, registry: str) -> list[Action]:
    """A `build-image` action per image whose reference is not recorded (or names another tag)."""
    have = _recorded(actual)
    repository = f"{registry}/{model.name}"
    stale: dict[str, list[tuple[Slot, str]]] = {}
    for slot, key in slots(model).items():
        value = have.get(slot, "")
        if not value.startswith(f"{repository}:{key}@sha256:"):
            stale.setdefault(key, []).append((slot, value))
    return [Action("build-image", model.name, version=key, new=f"{repository}:{key}",
                   old=next((value for _, value in entries if value), ""),
                   envs=tuple(subject for (scope, subject), _ in entries if scope == "env"))
            for key, entries in stale.items()]


def record(model: DesiredModel, actual: ActualModel, images: list[Image]) -> list[Action]:
    """The tag updates that record the pushed `images` (those with a digest); none when already recorded."""
    refs = {image.version: f"{image.ref}@{image.digest}" for image in images if image.digest}
    compiled = {image.version: {COMPILED_SHA256: image.compiled_sha256} for image in images if image.compiled_sha256}
    attested = {image.version: f"{image.ref.rsplit(':', 1)[0]}@{image.provenance}" for image in images
                if image.digest and image.provenance}
    versions = _versions(actual)
    actions, model_tags = [], {}
    for (scope, subject), key in slots(model).items():
        ref = refs.get(key)
        if ref is None:
            continue
        if scope == "version" and subject in versions:
            wanted = {IMAGE: ref, **compiled.get(key, {}), **({PROVENANCE: attested[key]} if key in attested else {})}
            if any(versions[subject].tags.get(name) != value for name, value in wanted.items()):
                actions.append(Action("update-version", model.name, version=subject,
                                      number=versions[subject].number, tags=wanted))
        elif scope == "env":
            wanted = {ENV_IMAGE + subject: ref,
                      **({ENV_PROVENANCE + subject: attested[key]} if key in attested else {})}
            model_tags |= {name: value for name, value in wanted.items() if actual.tags.get(name) != value}
    if model_tags:
        actions.append(Action("update-model", model.name, tags=model_tags))
    return actions


def _versions(actual: ActualModel | None) -> dict[str, ActualVersion]:
    """semantic version -> its complete registered version (the lowest number, as the plan keeps)."""
    found = {}
    for version in sorted(actual.versions if actual else (), key=lambda v: int(v.number)):
        if version.complete and version.semver:
            found.setdefault(version.semver, version)
    return found


def _recorded(actual: ActualModel | None) -> dict[Slot, str]:
    have: dict[Slot, str] = {("version", semver): v.tags.get(IMAGE, "") for semver, v in _versions(actual).items()}
    if actual is not None:
        have |= {("env", key[len(ENV_IMAGE):]): value for key, value in actual.tags.items()
                 if key.startswith(ENV_IMAGE)}
    return have


def recorded(actual: ActualModel | None, key: str, envs: list[str]) -> dict[str, str]:
    """What the registry records of the image `key`: {"image", "provenance", "sha256" (its primary version's
    artifact)}, each "" when not recorded; a deployment image's through the first of `envs` naming it."""
    versions = _versions(actual)
    primary = versions.get(key.split("_", 1)[0])
    found = {"image": "", "provenance": "", "sha256": primary.tags.get(SHA256, "") if primary else ""}
    if actual is None:
        return found
    if not envs:
        if primary is not None and "_" not in key:
            found |= {"image": primary.tags.get(IMAGE, ""), "provenance": primary.tags.get(PROVENANCE, "")}
        return found
    for env in envs:
        if actual.tags.get(ENV_IMAGE + env, "").partition("@")[0].endswith(f":{key}"):
            return found | {"image": actual.tags[ENV_IMAGE + env],
                            "provenance": actual.tags.get(ENV_PROVENANCE + env, "")}
    return found
